"""CoreDNS's Corefile (`--corefile`) mapped onto the settings, as the plugins mean it.

A plugin that is absent is off (no `health` line, no health endpoint; no `forward`, no
upstream), and the `kubernetes` plugin's own defaults apply (`pods disabled`, `ttl 5`, no
`fallthrough`), not kubeadm's. docs/corefile.md has the whole mapping; the plugins'
own handlers are in plugins/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clusterdns.config.addresses import DEFAULT_PORT, hostport_text
from clusterdns.config.convert import convert_value
from clusterdns.config.corefile_syntax import ServerBlock, parse_corefile, zone
from clusterdns.config.plugins import ACCEPTED, HANDLERS
from clusterdns.config.plugins.context import Block, Context
from clusterdns.errors import ConfigError


class _Mapper(Context):
    """Walks the server blocks and collects raw setting values, each with the line it came from."""

    def run(self, blocks: list[ServerBlock]) -> dict[str, tuple[Any, int]]:
        parsed = []
        for sb in blocks:
            zones, ports = [], set()
            for key in sb.keys:
                name, port = self.key(key, sb.line)
                zones.append(name)
                ports.add(port)
            explicit = {p for p in ports if p is not None}
            if len(explicit) > 1:
                raise self.error(sb.line, f"server block {' '.join(sb.keys)}: ports {', '.join(map(str, sorted(explicit)))} conflict;"
                                 " clusterdns serves every zone on the same port(s)")
            block = Block(zones, explicit.pop() if explicit else None, sb.line)
            for e in sb.entries:
                handler = HANDLERS.get(e.name)
                if handler is not None:
                    handler(self, e, block)
                elif e.name in ACCEPTED:
                    message = ACCEPTED[e.name]
                    if message:
                        self.warn(e.line, f"{e.name}: {message}")
                    elif e.block:
                        self.warn(e.line, f"{e.name}: options accepted, not implemented")
                else:
                    raise self.error(e.line, f'plugin "{e.name}" is not supported by clusterdns')
            parsed.append(block)
        self.listen(parsed)
        if not self.kubernetes_line:
            raise ConfigError(f"{self.path}: no server block has the kubernetes plugin; clusterdns serves a cluster zone:"
                              " add `kubernetes cluster.local { manifests DIR }`")
        # What the Corefile leaves out is off, as in CoreDNS.
        for name, value in (("health", "none"), ("ready", "none"), ("metrics", "none"), ("lameduck", "0"), ("log_queries", False),
                            ("transfer_to", []), ("notify", []), ("cache", "0"), ("loop_detect", "off"),
                            ("loadbalance", "off")):
            self.raw.setdefault(name, (value, 0))
        ours = self.raw["zones"][0]
        for line, zones in self.cache_disabled:
            outside = [z for z in zones if not any(z == o or z.endswith("." + o) for o in ours)]
            if outside:
                self.warn(line, f"cache disable {' '.join(outside)}: accepted, not implemented (clusterdns caches every forwarded name)")
        if not self.forward_line:
            self.raw.setdefault("upstream", (["none"], 0))
        return self.raw

    def key(self, key: str, line: int) -> tuple[str, int | None]:
        """`[dns://]ZONE[:PORT]` -> (zone, port or None)."""
        text = key
        if "://" in text:
            scheme, _, text = text.partition("://")
            if scheme.lower() != "dns":
                raise self.error(line, f"server block {key!r}: {scheme}:// is not supported by clusterdns (plain DNS over UDP and TCP only)")
        port = None
        host = text
        if text.count(":") == 1:
            host, _, p = text.partition(":")
            if not p.isdigit() or not 0 < int(p) <= 65535:
                raise self.error(line, f"server block {key!r}: bad port {p!r}")
            port = int(p)
        try:
            return zone(host), port
        except ConfigError as e:
            raise self.error(line, f"server block {key!r}: {e}") from None

    def listen(self, blocks: list[Block]) -> None:
        ports = {b.port for b in blocks if b.port is not None}
        if len(ports) > 1:
            lines = ", ".join(f"line {b.line} :{b.port}" for b in blocks if b.port is not None)
            raise self.error(blocks[0].line, f"server blocks on different ports ({lines}): clusterdns serves every zone on the same port(s)")
        port = ports.pop() if ports else None
        if port is None and not any(b.binds for b in blocks):
            return  # the default --listen
        hosts: list[str] = []
        for b in blocks:
            for host in b.binds or ["127.0.0.1"]:
                if host not in hosts:
                    hosts.append(host)
        line = min(b.line for b in blocks)
        self.raw["listen"] = ([hostport_text(h, port or DEFAULT_PORT) for h in hosts], line)



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
    warnings.sort(key=lambda w: int(w[len(path) + 1 :].split(":", 1)[0]))  # in file order (all are PATH:LINE: ...)
    values = {}
    for name, (value, line) in raw.items():
        values[name] = convert_value(name, value, f"{path}:{line}" if line else path)
    return values, warnings
