"""Lifecycle: first snapshot before binding, serve UDP+TCP, reload on change, drain on exit."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any

from clusterdns.config.addresses import Address
from clusterdns.config.reread import ConfigSources
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.manifests.hosts_file import describe as describe_hosts
from clusterdns.manifests.watch import Watcher
from clusterdns.ops.counters import ListenerStats
from clusterdns.ops.listen import OpsListeners
from clusterdns.ops.metrics import Counts, counts
from clusterdns.pipeline import Pipeline
from clusterdns.serve import transfer
from clusterdns.serve.answering import Answering
from clusterdns.serve.handler import Handler
from clusterdns.serve.listeners import Listeners
from clusterdns.serve.memory import collector_paused, trim
from clusterdns.serve.ratelimit import RateLimiter
from clusterdns.serve.reconfigure import Reloader
from clusterdns.serve.reports import Reports, announce
from clusterdns.serve.sockets import SocketPair, bind_pair
from clusterdns.serve.workers import Workers
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder

log = logging.getLogger("clusterdns")

# Held from start-up until serve() handles them: SIGHUP re-reads the manifests, SIGUSR1 the configuration.
HELD_SIGNALS = {signal.SIGHUP, signal.SIGUSR1}


class Server:
    """Owns the pipeline, what answers (and through its handler the current snapshot) and the sockets.

    `sources`: where the configuration came from, for --reload and SIGUSR1 (reconfigure.py).
    """

    def __init__(self, config: Config, sources: ConfigSources | None = None) -> None:
        self.config = config
        self.answering = Answering.of(config)
        self.bound: list[Address] = []  # the --listen addresses, port 0 resolved
        self.dns = Listeners()
        self.ops = OpsListeners(self)
        self.sources = sources
        self.reloader: Reloader | None = None
        self.serves_ops = False
        self.stopping: asyncio.Event | None = None
        self.pipeline = Pipeline(config.manifests, config)
        self.reload_lock = threading.Lock()
        self.reports = Reports(config.manifests)
        self.watcher: Watcher | None = None
        self.hosts_task: asyncio.Task[None] | None = None
        self.draining = False
        self.workers = Workers()  # --workers: the children, or in a child its channel back
        self.reload_failures = 0

    # What answers now: replaced as a whole by a configuration reload (swap()).
    @property
    def handler(self) -> Handler:
        return self.answering.handler

    @property
    def forwarder(self) -> Forwarder:
        return self.answering.forwarder

    @property
    def stubs(self) -> dict[str, Forwarder]:
        return self.answering.stubs

    @property
    def upstreams(self) -> tuple[Address, ...]:
        return self.answering.upstreams

    @property
    def limiter(self) -> RateLimiter | None:
        return self.answering.limiter

    @property
    def listeners(self) -> list[ListenerStats]:
        return self.dns.stats

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
        query sees all of a change or none of it. Once the previous snapshot and the read
        files are garbage, their memory goes back to the system (trim).
        """
        try:
            return self._load(full)
        finally:
            trim()

    def _load(self, full: bool) -> Snapshot:
        with self.reload_lock, collector_paused():
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

    def swap(self, config: Config, pipeline: Pipeline, answering: Answering) -> None:
        """A reloaded configuration takes over (reconfigure.apply): under the reload lock, so no
        manifests reload is between pipelines; every listener answers with it from its next query."""
        with self.reload_lock:
            self.pipeline, self.config, self.answering = pipeline, config, answering
            self.dns.use(config, answering)

    def after_swap(self, old: Config, same_manifests: bool) -> None:
        """What follows a reloaded configuration: the watches it changes, and a look at the manifests."""
        if not same_manifests or old.watch != self.config.watch or old.poll_interval != self.config.poll_interval:
            if self.watcher is not None:
                self.watcher.stop()
                self.watcher = None
            self._watch()
        if self.hosts_task is not None:
            self.hosts_task.cancel()
        self.hosts_task = self._start_hosts_watch()
        asyncio.get_running_loop().run_in_executor(None, self._reload)  # what changed while the new pipeline read

    def _start_hosts_watch(self) -> asyncio.Task[None] | None:
        if self.config.hosts_file and self.config.hosts_reload > 0:
            return asyncio.get_running_loop().create_task(self._watch_hosts())
        return None

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
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS)
        for address, pair in zip(self.config.listen, sockets):
            await self.dns.serve(address, pair, self.config, self.answering)
        self.workers.report(self.counts)
        self.serves_ops = announce  # the first process serves the HTTP routes
        if announce:
            await self.ops.start(self.config)
        self._watch()
        self.hosts_task = self._start_hosts_watch()
        if self.sources is not None:  # every process looks at the configuration itself, as at the manifests
            self.reloader = Reloader(self, self.sources)
            self.reloader.start()  # SIGUSR1, and --reload
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
        if self.reloader is not None:
            self.reloader.stop()
        self.ops.close(self.ops.open)
        if self.watcher:
            self.watcher.stop()
        if self.hosts_task is not None:
            self.hosts_task.cancel()
        await self.dns.drain()

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
