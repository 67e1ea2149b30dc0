"""Lifecycle: first snapshot before binding, serve UDP+TCP, reload on change, drain on exit."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from clusterdns.config.addresses import Address, parse_hostport
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.manifests.files import gc_paused
from clusterdns.manifests.hosts_file import describe as describe_hosts
from clusterdns.manifests.watch import Watcher
from clusterdns.ops import http
from clusterdns.ops.counters import ListenerStats
from clusterdns.ops.metrics import Counts, DNSCollector, counts
from clusterdns.pipeline import Pipeline
from clusterdns.serve import querylog, transfer
from clusterdns.serve.handler import Handler
from clusterdns.serve.ratelimit import RateLimiter
from clusterdns.serve.reports import Reports, announce
from clusterdns.serve.sockets import SocketPair, bind_pair, start
from clusterdns.serve.workers import Workers
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder
from clusterdns.upstream.loop import LOOP_CHECK_TIMEOUT, check_loop
from clusterdns.upstream.resolvconf import resolve_upstreams

log = logging.getLogger("clusterdns")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic GC while a reload builds ~10^5 objects (none in cycles); afterwards the
    long-lived snapshot is frozen out of future collections (gc.freeze, Python 3.7+)."""
    with gc_paused():
        try:
            yield
        finally:
            gc.freeze()


class Server:
    """Owns the pipeline, the handler (and through it the current snapshot) and the sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.upstreams = resolve_upstreams(config)
        self.forwarder = Forwarder(self.upstreams, config)
        # --stub-domain: each zone's own upstreams, with their own health, cache and counters.
        self.stubs = {zone: Forwarder([parse_hostport(a, 53) for a in addresses], config, zone) for zone, addresses in config.stubs.items()}
        self.handler = Handler(None, config, self.forwarder, self.stubs)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None  # one set of buckets for every UDP listener
        self.bound: list[Address] = []
        self.stopping: asyncio.Event | None = None
        root = Path(config.manifests)
        if not root.is_dir():
            raise ConfigError(f"--manifests {root}: no such directory")
        self.pipeline = Pipeline(root, config)
        self.reload_lock = threading.Lock()
        self.reports = Reports(config.manifests)
        self.watcher: Watcher | None = None
        self.listeners: list[ListenerStats] = []
        self.draining = False
        self.workers = Workers()  # --workers: the children, or in a child its channel back
        self.reload_failures = 0

    @property
    def current(self) -> Snapshot | None:
        """The snapshot being served; the handler holds the one reference."""
        return self.handler.current

    @property
    def reloads(self) -> int:
        return self.reports.reloads

    @property
    def last_reload(self) -> dict[str, Any]:
        return self.reports.last_reload

    def load(self, full: bool = False) -> Snapshot:
        """Rescan the manifests (re-reading changed files) and swap in a new snapshot.

        Runs in the watcher's thread or at start-up; the swap is one assignment, so a
        query sees all of a change or none of it.
        """
        with self.reload_lock, _collector_paused():
            started = time.monotonic()
            update = self.pipeline.refresh(full=full)
            if not update.rebuilt:
                return update.snapshot
            old, new = update.previous, update.snapshot
            self.handler.current = new  # the swap: one assignment
            self.reports.loaded(update.change, old, new, time.monotonic() - started)
            if self.watcher is not None and self.watcher.watch_outside(self.pipeline.store.outside_dirs()):
                self.watcher.poke()  # catch what changed there before the new watch existed
            if old is not None and new.serial != old.serial and self.config.notify:
                transfer.send_notify(self.config.notify, self.config.cluster_domain, new.serial)
            return new

    # --- what ops/ reads (ops.metrics.MetricsSource, ops.http.OpsSource) ---------------------------

    def counts(self) -> Counts:
        """This process's counters, as plain data."""
        return counts(self.listeners, [self.forwarder, *self.stubs.values()], self.handler.panics)

    async def worker_counts(self) -> list[Counts]:
        return await self.workers.counts()

    def not_ready(self) -> str:
        """Why /ready is 503, or "" when ready (CoreDNS ready plugin: lists what is not)."""
        if self.current is None:
            return "manifests not loaded yet"
        if self.draining:
            return "shutting down (lameduck)"
        return ""

    def status(self) -> dict[str, Any]:
        """The last reload's figures and problems, for /status and `clusterdns status`."""
        return {"ready": not self.not_ready(), "manifests": str(self.config.manifests), "listen": [f"{h}:{p}" for h, p in self.bound],
                "reloads": self.reloads, "reload_failures": self.reload_failures, "last_reload": self.last_reload}

    async def start_ops(self) -> list[asyncio.Server]:
        """/health, /ready and /metrics, each on its own address (CoreDNS's ports)."""
        registry = CollectorRegistry()
        collector = DNSCollector(self)
        registry.register(collector)
        routes = http.Routes(self, registry, collector)
        wanted = [("health", self.config.health, {"/health": routes.health, "/status": routes.status}),
                  ("ready", self.config.ready, {"/ready": routes.ready}),
                  ("metrics", self.config.metrics, {"/metrics": routes.metrics})]
        started = []
        for what, address, paths in wanted:
            if address is None:
                continue
            try:
                server, port = await http.start(address, paths)
            except OSError as e:
                raise ConfigError(f"cannot listen on {address[0]}:{address[1]} for /{what}: {e.strerror or e}") from None
            started.append(server)
            log.info("%s on http://%s:%d%s", what, address[0], port, "/" + what)
        return started

    # --- serving ---------------------------------------------------------------------------------

    def bind(self, reuse_port: bool = False) -> list[SocketPair]:
        """A UDP and a TCP socket per --listen address; port 0 is resolved once, so
        workers bind the same ports later (SO_REUSEPORT spreads queries over them)."""
        pairs = []
        addresses = self.bound or list(self.config.listen)
        for host, port in addresses:
            try:
                pair = bind_pair(host, port, reuse_port=reuse_port)
            except OSError as e:
                raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
            pairs.append(pair)
        self.bound = [(host, pair[0].getsockname()[1]) for (host, _), pair in zip(addresses, pairs)]
        return pairs

    async def serve(self, sockets: list[SocketPair], announce: bool = True) -> None:
        """Serve on bound sockets until SIGTERM/SIGINT. SIGHUP re-reads the manifests."""
        if self.current is None:
            self.load(full=True)
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        # SIGHUP: a full re-read, off the event loop so queries keep flowing. One that came
        # during start-up was held (run() blocks it) and is delivered now.
        loop.add_signal_handler(signal.SIGHUP, self._hangup)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        log_query = querylog.record if self.config.log_queries else None
        balance = self.config.loadbalance == "round_robin"
        servers = [await start(udp, tcp, self.handler, self.limiter, log_query, self.config.tcp_max_queries, balance) for udp, tcp in sockets]
        self.listeners += [ls for udp, tcp in servers for ls in (udp.stats, tcp.stats)]
        self.workers.report(self.counts)
        ops = await self.start_ops() if announce else []  # the first process serves the HTTP endpoints
        watcher = self._watch()
        hosts_task = loop.create_task(self._watch_hosts()) if self.config.hosts_file and self.config.hosts_reload > 0 else None
        if announce:
            self._announce()  # last: "serving DNS on" means everything is in place
        await self.stopping.wait()
        self.draining = True
        if self.config.lameduck > 0:
            # Lameduck (CoreDNS health): /ready says 503 so load balancers move away, while
            # DNS and /health keep answering for the drain period.
            log.info("lameduck: answering for %.1f s more before shutting down", self.config.lameduck)
            await asyncio.sleep(self.config.lameduck)
        log.info("shutting down")
        for server in ops:
            server.close()
        if watcher:
            watcher.stop()
        if hosts_task is not None:
            hosts_task.cancel()
        for udp, tcp in servers:
            udp.close()
            tcp.close()
            pending = list(udp.tasks) + [t for c in tcp.connections for t in c.tasks]
            if pending:
                await asyncio.wait(pending, timeout=3)

    def _watch(self) -> Watcher | None:
        """Watch the manifests (unless --watch off); a change reloads them."""
        if self.config.watch == "off":
            return None
        watcher = Watcher(self.config.manifests, self._reload, self.config.watch, self.config.poll_interval)
        try:
            watcher.start()
        except OSError as e:  # e.g. the inotify watch limit, or the directory just vanished
            log.error("cannot watch %s (%s): serving without live reload; SIGHUP still re-reads", self.config.manifests, e)
            return None
        self.watcher = watcher
        watcher.watch_outside(self.pipeline.store.outside_dirs())
        watcher.poke()  # a change between the first load and the watch start is picked up now
        return watcher

    async def _watch_hosts(self) -> None:
        """--hosts-reload: look at the hosts file that often (CoreDNS's hosts `reload`), off the loop."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.hosts_reload)
            await loop.run_in_executor(None, self._reload_hosts)

    def _reload_hosts(self) -> None:
        try:
            with self.reload_lock:
                update = self.pipeline.refresh_hosts()
                if update.rebuilt:
                    self.handler.current = update.snapshot  # the swap: one assignment
                    log.info("hosts %s re-read: %s", self.config.hosts_file, describe_hosts(update.snapshot.hosts))
        except Exception as e:  # never lose what is serving
            self.reload_failures += 1
            log.exception("re-reading %s failed, still serving the previous entries: %s", self.config.hosts_file, e)

    def _announce(self) -> None:
        stubs = {zone: stub.upstreams for zone, stub in self.stubs.items()}
        announce(self.config, self.bound, self.upstreams, stubs, self.current)

    def _hangup(self) -> None:
        """SIGHUP: a full re-read here, off the event loop so queries keep flowing, and in every worker."""
        self.workers.signal(signal.SIGHUP)
        asyncio.get_running_loop().run_in_executor(None, self._reload, True)

    def _reload(self, full: bool = False) -> None:
        try:
            self.load(full)
        except Exception as e:  # never lose what is serving (DESIGN: errors become answers)
            self.reload_failures += 1
            log.exception("reload failed, still serving the previous data: %s", e)


def _close(sockets: list[SocketPair]) -> None:
    for udp, tcp in sockets:
        udp.close()
        tcp.close()


def run(config: Config, runner: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    """Load, bind, fork --workers - 1 children (each serving its own SO_REUSEPORT sockets
    and watching the manifests itself), serve, and stop the children on the way out."""
    # Until serve() handles SIGHUP, its default action would kill the process: a reload
    # asked for while loading, or a parent forwarding one to a worker still starting,
    # waits instead (the mask is inherited across fork, and by threads started meanwhile).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    server = Server(config)
    server.load(full=True)  # before binding: a broken start fails before any port is taken
    sockets = server.bind(reuse_port=config.workers > 1)
    # Bound but not yet served: a probe sent through the upstreams that reaches our own UDP
    # sockets means a forwarding loop (CoreDNS's loop plugin); exit 2.
    every_upstream = list(dict.fromkeys([*server.upstreams, *(u for stub in server.stubs.values() for u in stub.upstreams)]))
    if config.loop_detect == "on" and every_upstream:
        try:
            check_loop([udp for udp, _ in sockets], every_upstream, min(config.upstream_timeout, LOOP_CHECK_TIMEOUT))
        except ConfigError:
            _close(sockets)
            raise
    # Each child: its own sockets on the same ports, its own event loop.
    server.workers.fork(config.workers - 1, child=lambda: runner(server.serve(server.bind(reuse_port=True), announce=False)),
                        before=lambda: _close(sockets))
    try:
        runner(server.serve(sockets))
    finally:
        server.workers.stop()
