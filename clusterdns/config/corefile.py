"""CoreDNS's Corefile (`--corefile`) mapped onto the settings, as the plugins mean it.

A plugin that is absent is off (no `health` line, no health endpoint; no `forward`, no
upstream), and the `kubernetes` plugin's own defaults apply (`pods disabled`, `ttl 5`, no
`fallthrough`), not kubeadm's. docs/corefile.md has the whole mapping; the plugins'
own handlers are in plugins/.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clusterdns.config.addresses import DEFAULT_PORT, hostport_text
from clusterdns.config.convert import convert_value
from clusterdns.config.corefile_syntax import ServerBlock, decimal, parse_corefile, zone
from clusterdns.config.plugins import ACCEPTED, HANDLERS
from clusterdns.config.plugins.context import Block, Context, Forward
from clusterdns.errors import ConfigError, shown

# Plugins a server block that only forwards a zone (a stub domain) may also hold: the
# server-wide ones, and the cache (each upstream group has its own).
STUB_PLUGINS = frozenset({"forward", "cache", "errors", "log", "loadbalance", "health", "ready", "prometheus", "reload", "loop", "bind"})


class _Mapper(Context):
    """Walks the server blocks and collects raw setting values, each with where it came from."""

    def run(self, blocks: list[ServerBlock]) -> dict[str, tuple[Any, str]]:
        parsed = [self.block(sb) for sb in blocks]
        self.listen(parsed)
        if self.kubernetes_at is None:
            raise ConfigError(f"{self.path}: no server block has the kubernetes plugin; clusterdns serves a cluster zone:"
                              " add `kubernetes cluster.local { manifests DIR }`")
        self.route(parsed)
        # What the Corefile leaves out is off, as in CoreDNS.
        for name, value in (("health", "none"), ("ready", "none"), ("metrics", "none"), ("lameduck", "0"), ("log_queries", False),
                            ("transfer_to", []), ("notify", []), ("cache", "0"), ("loop_detect", "off"),
                            ("loadbalance", "off")):
            self.raw.setdefault(name, (value, ""))
        self.disabled()
        return self.raw

    def block(self, sb: ServerBlock) -> Block:
        zones, ports = [], set()
        for key in sb.keys:
            name, port = self.key(key, sb)
            zones.append(name)
            ports.add(port)
        explicit = {p for p in ports if p is not None}
        if len(explicit) > 1:
            raise self.error(sb, f"server block {' '.join(sb.keys)}: ports {', '.join(map(str, sorted(explicit)))} conflict;"
                             " clusterdns serves every zone on the same port(s)")
        block = Block(zones, explicit.pop() if explicit else None, sb)
        for e in sb.entries:
            handler = HANDLERS.get(e.name)
            if handler is not None:
                handler(self, e, block)
            elif e.name in ACCEPTED:
                message = ACCEPTED[e.name]
                if message:
                    self.warn(e, f"{e.name}: {message}")
                elif e.block:
                    raise self.error(e, f"{e.name}: clusterdns takes no options for it")
            else:
                raise self.unknown(e, "plugin", e.name, [*HANDLERS, *ACCEPTED])
            block.plugins.append(e)
        return block

    def route(self, blocks: list[Block]) -> None:
        """Which blocks make the cluster's chain (--serve-zone, --upstream) and which only
        forward their zones (--stub-domain), as CoreDNS picks a block per name."""
        serve: list[str] = []
        stubs: list[tuple[str, str]] = []
        uncached: list[str] = []
        default: Forward | None = None
        for block in blocks:
            names = {p.name for p in block.plugins}
            if "k8s_external" in names and "kubernetes" not in names:
                at = next(p for p in block.plugins if p.name == "k8s_external")
                raise self.error(at, "k8s_external: kubernetes plugin not loaded (it must be in the same server block)")
            stub = self.stub(block)
            if not stub:
                serve += block.zones
                if "cache" in names:  # cache is before hosts and kubernetes: it caps their TTLs (cache.go WriteMsg)
                    self.raw["cache_caps_own"] = (True, self.where(block.at))
            elif "cache" not in names:
                uncached += block.zones  # each block has its own plugins: no cache here
            for fwd in block.forwards:
                if fwd.zone != "." or stub:
                    if fwd.resolv_conf:
                        raise self.error(fwd.at, "forward /etc/resolv.conf: clusterdns takes it only for `forward .` of the cluster's block;"
                                         " give a stub domain its addresses")
                    for z in [fwd.zone] if fwd.zone != "." else block.zones:
                        stubs += [(z, t) for t in fwd.targets if (z, t) not in stubs]
                elif default is None:
                    default = fwd
                elif (default.targets, default.resolv_conf) != (fwd.targets, fwd.resolv_conf):
                    raise self.error(fwd.at, f"forward conflicts with {self.where(default.at)}: names outside every stub domain"
                                     " have one upstream list in clusterdns")
        self.raw["serve_zones"] = (["."] if "." in serve else list(dict.fromkeys(serve)), "")
        if stubs:
            self.raw["stub_domains"] = ([f"{z}={t}" for z, t in stubs], "")
        if uncached:
            self.raw["uncached_stubs"] = (uncached, "")
        if default is None:
            self.raw.setdefault("upstream", (["none"], ""))
        elif default.targets:  # /etc/resolv.conf is the default: upstream stays unset
            self.raw["upstream"] = (default.targets, self.where(default.at))

    def stub(self, block: Block) -> bool:
        """Does the block only forward its zones (no kubernetes, a `forward .`, not the root)?"""
        if "." in block.zones or not any(f.zone == "." for f in block.forwards) or any(p.name == "kubernetes" for p in block.plugins):
            return False
        for p in block.plugins:
            if p.name not in STUB_PLUGINS:
                raise self.error(p, f"{p.name} in server block {' '.join(block.zones)}: clusterdns serves a block without kubernetes"
                                 f" as a stub domain, which only forwards (and caches)")
        return True

    def disabled(self) -> None:
        """`cache { disable success|denial ZONES }`: quiet for our own zones (never cached),
        a setting for the others."""
        ours = self.raw["zones"][0]
        for at, kind, zones in self.cache_disabled:
            outside = [z for z in zones if z != "." and not any(z == o or z.endswith("." + o) for o in ours)]
            if "." in zones:
                outside = ["."]
            if outside:
                name = f"cache_disable_{kind}"
                previous = self.raw.get(name, ([], ""))[0]
                self.raw[name] = (previous + outside, self.where(at))

    def key(self, key: str, sb: ServerBlock) -> tuple[str, int | None]:
        """`[dns://]ZONE[:PORT]` -> (zone, port or None)."""
        text = key
        if "://" in text:
            scheme, _, text = text.partition("://")
            if scheme.lower() != "dns":
                raise self.error(sb, f"server block {shown(key)}: {scheme}:// is not supported by clusterdns (plain DNS over UDP and TCP only)")
        port = None
        host = text
        if text.count(":") == 1:
            host, _, p = text.partition(":")
            if not decimal(p) or not 0 < int(p) <= 65535:
                raise self.error(sb, f"server block {shown(key)}: bad port {shown(p)}")
            port = int(p)
        try:
            return zone(host), port
        except ConfigError as e:
            raise self.error(sb, f"server block {shown(key)}: {e}") from None

    def listen(self, blocks: list[Block]) -> None:
        ports = {b.port for b in blocks if b.port is not None}
        if len(ports) > 1:
            lines = ", ".join(f"{self.where(b.at)} :{b.port}" for b in blocks if b.port is not None)
            raise self.error(blocks[0].at, f"server blocks on different ports ({lines}): clusterdns serves every zone on the same port(s)")
        port = ports.pop() if ports else None
        if port is None and not any(b.binds for b in blocks):
            return  # the default --listen
        hosts: list[str] = []
        for b in blocks:
            for host in b.binds or ["127.0.0.1"]:
                if host not in hosts:
                    hosts.append(host)
        self.raw["listen"] = ([hostport_text(h, port or DEFAULT_PORT) for h in hosts], self.where(blocks[0].at))



def load_corefile(path: str, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """A Corefile's settings, converted, and the warnings to print at start-up."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read Corefile {path}: {e.strerror or e}") from None
    return corefile_values(text, path, environ)


def corefile_values(text: str, path: str = "Corefile", environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    blocks, warnings = parse_corefile(text, path, environ)
    if not blocks:
        raise ConfigError(f"{path}: no server block (like `cluster.local:53 {{ kubernetes }}`)")
    raw = _Mapper(path, warnings).run(blocks)
    warnings.sort(key=lambda w: _place(w, path))  # in file order, the Corefile's own first
    values = {}
    for name, (value, where) in raw.items():
        values[name] = convert_value(name, value, where or path)
    return values, warnings


_PLACE = re.compile(r"^(.*?):(\d+): ")


def _place(warning: str, main: str) -> tuple[bool, str, int]:
    """(not the main file, file, line) of a `FILE:LINE: message` warning."""
    m = _PLACE.match(warning)
    if m is None:
        return (True, warning, 0)
    return (m.group(1) != main, m.group(1), int(m.group(2)))
