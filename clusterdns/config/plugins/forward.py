"""`forward FROM TO... { ... }` (plugin/forward/README.md) and `cache [TTL] { ... }`
(plugin/cache/README.md) onto the upstream settings."""

from __future__ import annotations

from clusterdns.config.addresses import parse_hostport
from clusterdns.config.corefile_syntax import Directive, zone
from clusterdns.config.plugins.context import Block, Context
from clusterdns.errors import ConfigError

# forward's options (plugin/forward/README.md) -> clusterdns setting, or None: accepted with a warning.
FORWARD_OPTIONS: dict[str, str | None] = {
    "policy": "upstream_policy", "max_fails": "max_fails", "max_concurrent": "max_concurrent",
    "except": None, "force_tcp": None, "prefer_udp": None, "expire": None, "tls": None, "tls_servername": None,
    "health_check": None, "next": None, "failfast_all_unhealthy_upstreams": None, "max_idle_conns": None,
}
# cache's options that clusterdns does not implement (plugin/cache/README.md).
CACHE_UNIMPLEMENTED = ("denial", "prefetch", "serve_stale", "servfail", "keepttl")


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
