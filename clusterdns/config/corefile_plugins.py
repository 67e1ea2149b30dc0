"""The Corefile plugins clusterdns maps onto settings, one handler each (plugin/*/README.md)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterdns.config.addresses import HEALTH_PORT, METRICS_PORT, READY_PORT, hostport_text, parse_hostport
from clusterdns.config.corefile_syntax import Directive, parse_duration, zone
from clusterdns.errors import ConfigError

# Plugins clusterdns accepts without acting on them: the warning printed at start-up (None: quietly).
ACCEPTED = {
    "errors": None,  # errors are always logged
    "loadbalance": "accepted, but answers are not shuffled (records come in a fixed order)",
    "reload": "accepted: clusterdns watches the manifests, but does not re-read the Corefile (restart to apply Corefile changes)",
}
# forward's options (plugin/forward/README.md) -> clusterdns setting, or None: accepted with a warning.
FORWARD_OPTIONS: dict[str, str | None] = {
    "policy": "upstream_policy", "max_fails": "max_fails", "max_concurrent": "max_concurrent",
    "except": None, "force_tcp": None, "prefer_udp": None, "expire": None, "tls": None, "tls_servername": None,
    "health_check": None, "next": None, "failfast_all_unhealthy_upstreams": None, "max_idle_conns": None,
}
# cache's options that clusterdns does not implement (plugin/cache/README.md).
CACHE_UNIMPLEMENTED = ("denial", "prefetch", "serve_stale", "servfail", "keepttl")
# kubernetes options about reaching an API server: clusterdns has none, it reads --manifests.
KUBERNETES_API_OPTIONS = ("endpoint", "tls", "kubeconfig", "startup_timeout", "apiserver_qps", "apiserver_burst", "apiserver_max_inflight")


@dataclass
class Block:
    """One server block: its zones, its port, its first line, the addresses `bind` gave it."""

    zones: list[str]
    port: int | None
    line: int
    binds: list[str] = field(default_factory=list)


class Context:
    """What a handler writes to: raw setting values with the line each came from, and warnings."""

    def __init__(self, path: str, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings
        self.raw: dict[str, tuple[Any, int]] = {}
        self.kubernetes_line = 0
        self.forward_line = 0
        self.forward_to: list[str] | None = None
        self.cache_disabled: list[tuple[int, list[str]]] = []  # (line, zones) of `disable success|denial ZONES`

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}: {message}")

    def set(self, name: str, value: Any, line: int, what: str) -> None:
        if name in self.raw and self.raw[name][0] != value:
            raise self.error(line, f"{what} conflicts with line {self.raw[name][1]} (clusterdns has one {name} for the whole server)")
        self.raw[name] = (value, line)

    def arity(self, e: Directive, low: int, high: int | None, what: str) -> None:
        n = len(e.args)
        if n < low or (high is not None and n > high):
            if high == low:
                want = f"{low} argument{'s' if low != 1 else ''}"
            elif high is None:
                want = f"at least {low} argument{'s' if low != 1 else ''}"
            else:
                want = f"{low} to {high} arguments" if low else f"at most {high} argument{'s' if high != 1 else ''}"
            raise self.error(e.line, f"{what} takes {want}, not {n}")

    def no_block(self, e: Directive, what: str) -> None:
        if e.block is not None:
            raise self.error(e.line, f"{what} takes no {{ }} block in clusterdns")

    # ---- server blocks ----


Handler = Callable[[Context, Directive, Block], None]


def bind(m: Context, e: Directive, block: Block) -> None:
    m.no_block(e, "bind")
    m.arity(e, 1, None, "bind")
    for addr in e.args:
        try:
            block.binds.append(ipaddress.ip_address(addr).compressed)
        except ValueError:
            raise m.error(e.line, f"bind {addr}: clusterdns binds IP addresses only (no interface names, no `except`)") from None


def kubernetes(m: Context, e: Directive, block: Block) -> None:
    if m.kubernetes_line:
        raise m.error(e.line, f"kubernetes: only one server block may contain kubernetes (it is already at line {m.kubernetes_line})")
    m.kubernetes_line = e.line
    try:
        zones = [zone(z) for z in e.args] or list(block.zones)
    except ConfigError as err:
        raise m.error(e.line, f"kubernetes: {err}") from None
    if "." in zones:
        raise m.error(e.line, "kubernetes: clusterdns cannot serve the root zone '.': name the cluster domain,"
                         " like `kubernetes cluster.local in-addr.arpa ip6.arpa`")
    line = e.line
    # The plugin's defaults, not kubeadm's: the Corefile says what it wants.
    values: dict[str, Any] = {
        "zones": zones, "pods": "disabled", "ttl": "5", "fallthrough": ["none"], "namespaces": [],
        "endpoint_pod_names": False, "noendpoints": False, "ignore_empty_service": False,
    }
    lines = dict.fromkeys(values, line)
    seen: dict[str, int] = {}
    for opt in e.block or []:
        what = f'kubernetes option "{opt.name}"'
        if opt.block is not None:
            raise m.error(opt.line, f"{what} takes no {{ }} block")
        if opt.name in seen and opt.name not in KUBERNETES_API_OPTIONS:
            raise m.error(opt.line, f"{what} is given twice (also at line {seen[opt.name]})")
        seen[opt.name] = opt.line
        name, value = kubernetes_option(m, opt, what, zones)
        if name:
            values[name], lines[name] = value, opt.line
    for name, value in values.items():
        m.set(name, value, lines[name], "kubernetes")


def kubernetes_option(m: Context, opt: Directive, what: str, zones: list[str]) -> tuple[str | None, Any]:
    n = opt.name
    if n == "pods":
        m.arity(opt, 1, 1, what)
        return "pods", opt.args[0]
    if n == "ttl":
        m.arity(opt, 1, 1, what)
        if not opt.args[0].isdigit() or not 0 <= int(opt.args[0]) <= 3600:
            raise m.error(opt.line, f"{what}: {opt.args[0]!r} must be a whole number of seconds, 0-3600")
        return "ttl", opt.args[0]
    if n == "namespaces":
        m.arity(opt, 1, None, what)
        return "namespaces", list(opt.args)
    if n in ("endpoint_pod_names", "noendpoints"):
        m.arity(opt, 0, 0, what)
        return n, True
    if n == "fallthrough":
        try:
            return "fallthrough", [zone(z) for z in opt.args] or ["."]
        except ConfigError as err:
            raise m.error(opt.line, f"{what}: {err}") from None
    if n == "ignore":
        m.arity(opt, 1, 1, what)
        if opt.args[0] != "empty_service":
            raise m.error(opt.line, f"{what}: only `ignore empty_service` exists, not {opt.args[0]!r}")
        return "ignore_empty_service", True
    if n == "manifests":
        m.arity(opt, 1, 1, what)
        return "manifests", opt.args[0]
    if n in KUBERNETES_API_OPTIONS:
        m.warn(opt.line, f"kubernetes {n}: ignored: clusterdns talks to no API server, it reads the manifests directory")
        return None, None
    raise m.error(opt.line, f"{what} is not supported")


def forward(m: Context, e: Directive, block: Block) -> None:
    m.arity(e, 2, None, "forward")
    src, targets = e.args[0], e.args[1:]
    if src.removeprefix("dns://").rstrip(".") != "":
        raise m.error(e.line, f"forward {src}: clusterdns forwards every name outside its zones to one upstream list: write `forward . TO...`")
    if "." not in block.zones:
        m.warn(e.line, f"forward in server block {' '.join(block.zones)}: clusterdns forwards every name outside its zones there, not only these")
    if len(targets) > 15:
        raise m.error(e.line, f"forward: at most 15 upstreams, not {len(targets)}")
    upstream: list[str] = []
    resolv = False
    for to in targets:
        if "://" in to:
            scheme, _, rest = to.partition("://")
            if scheme.lower() != "dns":
                raise m.error(e.line, f"forward {to}: {scheme}:// is not supported by clusterdns (plain DNS only)")
            to = rest
        if to.startswith("/") or to.startswith("."):
            if to != "/etc/resolv.conf":
                raise m.error(e.line, f"forward {to}: the only file clusterdns reads upstreams from is /etc/resolv.conf")
            resolv = True
            continue
        try:
            parse_hostport(to, 53)
        except ConfigError as err:
            raise m.error(e.line, f"forward: {err}") from None
        upstream.append(to)
    if resolv and upstream:
        raise m.error(e.line, "forward: give either /etc/resolv.conf or addresses, not both")
    if m.forward_to is not None and m.forward_to != upstream:
        raise m.error(e.line, f"forward conflicts with line {m.forward_line}: clusterdns has one upstream list for every name")
    m.forward_to, m.forward_line = upstream, e.line
    if upstream:  # /etc/resolv.conf is the default: upstream stays unset
        m.set("upstream", upstream, e.line, "forward")
    for opt in e.block or []:
        if opt.name not in FORWARD_OPTIONS:
            raise m.error(opt.line, f'forward option "{opt.name}" is not supported')
        setting = FORWARD_OPTIONS[opt.name]
        if setting is None:
            m.warn(opt.line, f"forward {opt.name}: accepted, not implemented")
            continue
        m.arity(opt, 1, 1, f"forward {opt.name}")
        m.set(setting, opt.args[0], opt.line, f"forward {opt.name}")


def health(m: Context, e: Directive, block: Block) -> None:
    m.arity(e, 0, 1, "health")
    m.set("health", e.args[0] if e.args else f":{HEALTH_PORT}", e.line, "health")
    for opt in e.block or []:
        if opt.name != "lameduck":
            raise m.error(opt.line, f'health option "{opt.name}" is not supported')
        m.arity(opt, 1, 1, "health lameduck")
        try:
            seconds = parse_duration(opt.args[0])
        except ValueError as err:
            raise m.error(opt.line, f"health lameduck: {err}") from None
        m.set("lameduck", repr(seconds), opt.line, "health lameduck")


def endpoint(setting: str, default: str) -> Handler:
    """`ready`/`prometheus [ADDRESS]`: an HTTP endpoint setting, `default` when no address is given."""

    def handle(m: Context, e: Directive, block: Block) -> None:
        m.no_block(e, e.name)
        m.arity(e, 0, 1, e.name)
        m.set(setting, e.args[0] if e.args else default, e.line, e.name)

    return handle


def log(m: Context, e: Directive, block: Block) -> None:
    if e.args or e.block:
        m.warn(e.line, "log: options ignored: clusterdns logs every query in the common format")
    m.set("log_queries", True, e.line, "log")


def cache(m: Context, e: Directive, block: Block) -> None:
    """`cache [TTL] [ZONES...] { success CAPACITY; disable success|denial ZONES; ... }`: forwarded
    answers only (clusterdns never caches its own zones, which is what kubeadm's `disable` lines ask)."""
    ttl, zones = "3600", e.args  # 3600: CoreDNS's cap for positive answers when no TTL is given
    if e.args and e.args[0].isdigit():
        ttl, zones = e.args[0], e.args[1:]
    if zones:
        m.warn(e.line, "cache ZONES: clusterdns caches every forwarded name")
    m.set("cache", ttl, e.line, "cache")
    for opt in e.block or []:
        if opt.name == "success":
            m.arity(opt, 1, 3, "cache success")
            m.set("cache_size", opt.args[0], opt.line, "cache success")
            if len(opt.args) > 1:
                m.warn(opt.line, "cache success TTL: ignored: the cache TTL is the one after `cache`")
        elif opt.name == "disable":
            m.arity(opt, 1, None, "cache disable")
            if opt.args[0] not in ("success", "denial"):
                raise m.error(opt.line, f"cache disable {opt.args[0]}: expected success or denial")
            try:
                zones = [zone(z) for z in opt.args[1:]]
            except ConfigError as err:
                raise m.error(opt.line, f"cache disable: {err}") from None
            m.cache_disabled.append((opt.line, zones or block.zones))
        elif opt.name in CACHE_UNIMPLEMENTED:
            m.warn(opt.line, f"cache {opt.name}: accepted, not implemented")
        else:
            raise m.error(opt.line, f'cache option "{opt.name}" is not supported')


def loop(m: Context, e: Directive, block: Block) -> None:
    m.no_block(e, "loop")
    m.arity(e, 0, 0, "loop")
    m.set("loop_detect", "on", e.line, "loop")


def transfer(m: Context, e: Directive, block: Block) -> None:
    if e.args:
        m.warn(e.line, "transfer: clusterdns transfers the cluster domain only (the first kubernetes zone)")
    if not e.block:
        raise m.error(e.line, "transfer needs a block: `transfer { to ADDRESS... }`")
    allow: list[str] = []
    notify: list[str] = []
    for opt in e.block:
        if opt.name != "to":
            raise m.error(opt.line, f'transfer option "{opt.name}" is not supported')
        m.arity(opt, 1, None, "transfer to")
        for addr in opt.args:
            if addr == "*" or "/" in addr:
                allow.append(addr)
                continue
            try:  # an address (and port): allowed, and sent NOTIFY, as CoreDNS does
                host, port = parse_hostport(addr, 53)
            except ConfigError as err:
                raise m.error(opt.line, f"transfer to: {err}") from None
            allow.append(host)
            notify.append(hostport_text(host, port))
    m.set("transfer_to", allow, e.line, "transfer")
    m.set("notify", notify, e.line, "transfer")


HANDLERS: dict[str, Handler] = {
    "kubernetes": kubernetes,
    "forward": forward,
    "health": health,
    "ready": endpoint("ready", f":{READY_PORT}"),
    "prometheus": endpoint("metrics", f"localhost:{METRICS_PORT}"),
    "log": log,
    "transfer": transfer,
    "bind": bind,
    "cache": cache,
    "loop": loop,
}
