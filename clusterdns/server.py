"""Lifecycle: first snapshot before binding, serve UDP+TCP, reload on change, drain on exit."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

from clusterdns import cluster, forwarder, snapshot, transports
from clusterdns.config import Address, Config
from clusterdns.errors import ClusterDNSError, ConfigError
from clusterdns.handler import Handler
from clusterdns.snapshot import Snapshot

log = logging.getLogger("clusterdns")


def resolve_upstreams(config: Config) -> tuple[Address, ...]:
    """--upstream as given; 'none' for no forwarding; default: /etc/resolv.conf minus ourselves."""
    if config.upstream == ("none",) or "none" in config.upstream:
        return ()
    if config.upstream:
        return tuple(forwarder.parse_upstream(u) for u in config.upstream)
    return tuple(forwarder.upstreams_from_resolv_conf(exclude=config.listen))


class Server:
    """Owns the current snapshot and the listening sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.current: Snapshot | None = None
        self.upstreams = resolve_upstreams(config)
        self.handler = Handler(self.snapshot, self.upstreams, config.fallthrough_zones)
        self.bound: list[Address] = []
        self.stopping: asyncio.Event | None = None

    def snapshot(self) -> Snapshot:
        assert self.current is not None
        return self.current

    def load(self) -> Snapshot:
        """Read the manifests and compile a new snapshot; swap it in one assignment."""
        root = Path(self.config.manifests)
        if not root.is_dir():
            raise ConfigError(f"--manifests {root}: no such directory")
        started = time.monotonic()
        state = cluster.load(root, self.config)
        for problem in state.problems:
            (log.error if problem.level == "error" else log.warning)("%s", problem)
        new = snapshot.build(state, self.config, self.current)
        before = len(self.current.records) if self.current else 0
        self.current = new
        log.info(
            "loaded %s: %d services, %d pods, %d namespaces, %d record sets (was %d), serial %d, %d errors, in %.0f ms",
            root, len(state.services), len(state.pods), len(state.namespaces), len(new.records), before, new.serial,
            sum(p.level == "error" for p in state.problems), (time.monotonic() - started) * 1000,
        )
        return new

    async def serve(self) -> None:
        """Serve until SIGTERM/SIGINT. SIGHUP reloads the manifests."""
        self.load()
        loop = asyncio.get_running_loop()
        servers = []
        for host, port in self.config.listen:
            try:
                udp, tcp, bound = await transports.start(host, port, self.handler.respond)
            except OSError as e:
                raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
            servers.append((udp, tcp))
            self.bound.append((host, bound))
            shown = f"[{host}]" if ":" in host else host
            log.info("serving DNS on %s:%d (udp, tcp)", shown, bound)
        if self.upstreams:
            log.info("forwarding other names to %s", ", ".join(f"{h}:{p}" for h, p in self.upstreams))
        else:
            log.info("no upstream: names outside %s get REFUSED", ", ".join(self.config.zones))
        self.stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload)
        await self.stopping.wait()
        log.info("shutting down")
        for udp, tcp in servers:
            if udp.transport:
                udp.transport.close()
            tcp.close()
            pending = list(udp.tasks) + [t for c in tcp.connections for t in c.tasks]
            if pending:
                await asyncio.wait(pending, timeout=3)

    def _reload(self) -> None:
        try:
            self.load()
        except ClusterDNSError as e:
            log.error("reload failed, still serving the previous data: %s", e)
