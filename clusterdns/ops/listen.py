"""Where /health, /ready and /metrics listen: started at start-up, moved by a configuration reload."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from clusterdns.config.addresses import Address
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.ops import http
from clusterdns.ops.metrics import DNSCollector, MetricsSource

log = logging.getLogger("clusterdns")

Open = dict[str, tuple[Address, asyncio.Server]]  # "health", "ready", "metrics" -> address, server


class OpsListeners:
    """The HTTP servers of the ops routes, each on its own address (CoreDNS's ports); `none` is off."""

    def __init__(self, source: MetricsSource) -> None:
        registry = CollectorRegistry()
        collector = DNSCollector(source)
        registry.register(collector)
        self.routes = http.Routes(source, registry, collector)  # type: ignore[arg-type]
        self.open: Open = {}

    def wanted(self, config: Config) -> list[tuple[str, Address | None, dict[str, http.Route]]]:
        routes = self.routes
        return [("health", config.health, {"/health": routes.health, "/status": routes.status}),
                ("ready", config.ready, {"/ready": routes.ready}),
                ("metrics", config.metrics, {"/metrics": routes.metrics})]

    async def start(self, config: Config) -> Open:
        """Listen where `config` says and nothing listens yet; all or none (ConfigError naming the
        address). Returns what the new ones replace or `config` turns off, for close()."""
        started: Open = {}
        wanted = self.wanted(config)
        for what, address, paths in wanted:
            if address is None or (what in self.open and self.open[what][0] == address):
                continue
            try:
                server, port = await http.start(address, paths)
            except OSError as e:
                self.close(started)
                raise ConfigError(f"cannot listen on {address[0]}:{address[1]} for /{what}: {e.strerror or e}") from None
            started[what] = (address, server)
            log.info("%s on http://%s:%d%s", what, address[0], port, "/" + what)
        addresses = {what: address for what, address, _ in wanted}
        replaced = {what: up for what, up in self.open.items() if what in started or addresses[what] is None}
        for what in replaced:
            del self.open[what]
        self.open.update(started)
        return replaced

    @staticmethod
    def close(servers: Open) -> None:
        for _, server in servers.values():
            server.close()
