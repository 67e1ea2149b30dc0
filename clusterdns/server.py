"""Lifecycle: first snapshot before binding, serve UDP+TCP, reload on change, drain on exit."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from prometheus_client import CollectorRegistry

from clusterdns import forwarder, metrics, ops, querylog, transfer, transports
from clusterdns.config.addresses import Address, hostport_text
from clusterdns.config.settings import Config
from clusterdns.transports import SocketPair
from clusterdns.errors import ConfigError
from clusterdns.handler import Handler
from clusterdns.manifests.files import gc_paused
from clusterdns.manifests.watch import Watcher
from clusterdns.metrics import DNSCollector, ListenerStats
from clusterdns.ops import Endpoints
from clusterdns.snapshot import Snapshot
from clusterdns.objects.store import Change
from clusterdns.pipeline import Pipeline

log = logging.getLogger("clusterdns")

REPORT_TIMEOUT = 2.0  # seconds a --workers child has to send its counts for a /metrics scrape


def resolve_upstreams(config: Config) -> tuple[Address, ...]:
    """--upstream as given; 'none' for no forwarding; default: /etc/resolv.conf minus ourselves."""
    if "none" in config.upstream:
        return ()
    if config.upstream:
        return tuple(forwarder.parse_upstream(u) for u in config.upstream)
    return tuple(forwarder.upstreams_from_resolv_conf(exclude=config.listen))


def _object_changes(old: Any, new: Any) -> str:
    """'+added -removed ~changed' over Services and Pods (derived ones included)."""
    before = {("svc",) + s.key: s for s in old.services} | {("pod", p.namespace, p.name): p for p in old.pods}
    after = {("svc",) + s.key: s for s in new.services} | {("pod", p.namespace, p.name): p for p in new.pods}
    added = sum(1 for k in after if k not in before)
    removed = sum(1 for k in before if k not in after)
    changed = sum(1 for k, v in after.items() if k in before and before[k] is not v and before[k] != v)
    return f"+{added} -{removed} ~{changed}"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic GC while a reload builds ~10^5 objects (none in cycles); afterwards the
    long-lived snapshot is frozen out of future collections (gc.freeze, Python 3.7+)."""
    with gc_paused():
        try:
            yield
        finally:
            gc.freeze()


@dataclass
class Worker:
    """A --workers child as the first process sees it: its channel, and what it last reported."""

    pid: int
    channel: socket.socket | None  # None once it stopped answering
    last: metrics.Counts | None = None


class Server:
    """Owns the current snapshot and the listening sockets."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.upstreams = resolve_upstreams(config)
        self.forwarder = forwarder.Forwarder(self.upstreams, config)
        self.handler = Handler(None, config, self.forwarder)
        self.bound: list[Address] = []
        self.stopping: asyncio.Event | None = None
        root = Path(config.manifests)
        if not root.is_dir():
            raise ConfigError(f"--manifests {root}: no such directory")
        self.pipeline = Pipeline(root, config)
        self.reload_lock = threading.Lock()
        self.reported: set[tuple[str, int, str]] = set()
        self.last_reload: dict[str, Any] = {}
        self.watcher: Watcher | None = None
        self.listeners: list[ListenerStats] = []
        self.draining = False
        # --workers: the first process holds one Worker per child (signals, and its channel
        # to ask for counts when /metrics is scraped); a child holds its end in `report_to`.
        self.workers: list[Worker] = []
        self.report_to: socket.socket | None = None
        self._asking = asyncio.Lock()
        self._sends: set[asyncio.Task[None]] = set()
        self.reloads = 0
        self.reload_failures = 0

    @property
    def current(self) -> Snapshot | None:
        """The snapshot being served; the handler holds the one reference."""
        return self.handler.current

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
            change, new, old = update.change, update.snapshot, update.previous
            self.handler.current = new  # the swap: one assignment
            self._report(change, old, new, time.monotonic() - started)
            if self.watcher is not None and self.watcher.watch_outside(self.pipeline.store.outside_dirs()):
                self.watcher.poke()  # catch what changed there before the new watch existed
            if old is not None and new.serial != old.serial and self.config.notify:
                transfer.send_notify(self.config.notify, self.config.cluster_domain, new.serial)
            return new

    def _report(self, change: Change, old: Snapshot | None, new: Snapshot, seconds: float) -> None:
        state = new.state
        assert state is not None
        fresh = {(p.file, p.line, p.message) for p in new.problems}
        for problem in new.problems:
            if (problem.file, problem.line, problem.message) not in self.reported:
                (log.error if problem.level == "error" else log.warning)("%s", problem)
        self.reported = fresh
        errors = sum(p.level == "error" for p in new.problems)
        before = f"{old.names()} → " if old else ""
        objects = f"; objects {_object_changes(old.state, state)}" if old is not None and old.state is not None else ""
        log.info(
            "%s %s: %s%s; %d services, %d pods, %d namespaces; %s%d names; serial %d%s; %.0f ms",
            "reloaded" if old else "loaded", self.config.manifests, change, objects, len(state.services), len(state.pods),
            len(state.namespaces), before, new.names(), new.serial,
            f"; {errors} errors" if errors else "", seconds * 1000,
        )
        self.reloads += 1
        self.last_reload = {
            "time": time.time(), "seconds": seconds, "change": str(change), "serial": new.serial,
            "services": len(state.services), "pods": len(state.pods), "names": new.names(),
            "errors": [str(p) for p in new.problems if p.level == "error"],
            "warnings": [str(p) for p in new.problems if p.level == "warning"],
        }

    @property
    def panics(self) -> int:
        return self.handler.panics

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
        collector = DNSCollector(self.listeners, self)
        registry.register(collector)
        endpoints = Endpoints(self, registry, collector)
        wanted = [("health", self.config.health, {"/health": endpoints.health, "/status": endpoints.status}),
                  ("ready", self.config.ready, {"/ready": endpoints.ready}),
                  ("metrics", self.config.metrics, {"/metrics": endpoints.metrics})]
        started = []
        for what, address, routes in wanted:
            if address is None:
                continue
            try:
                http, port = await ops.start(address, routes)
            except OSError as e:
                raise ConfigError(f"cannot listen on {address[0]}:{address[1]} for /{what}: {e.strerror or e}") from None
            started.append(http)
            log.info("%s on http://%s:%d%s", what, address[0], port, "/" + what)
        return started

    def bind(self, reuse_port: bool = False) -> list[SocketPair]:
        """A UDP and a TCP socket per --listen address; port 0 is resolved once, so
        workers bind the same ports later (SO_REUSEPORT spreads queries over them)."""
        pairs = []
        addresses = self.bound or list(self.config.listen)
        for host, port in addresses:
            try:
                pair = transports.bind_pair(host, port, reuse_port=reuse_port)
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
        servers = [await transports.start(udp, tcp, self.handler, log_query) for udp, tcp in sockets]
        self.listeners += [ls for udp, tcp in servers for ls in (udp.stats, tcp.stats)]
        if self.report_to is not None:
            loop.add_reader(self.report_to.fileno(), self._report_counts)
        http = await self.start_ops() if announce else []  # the first process serves the HTTP endpoints
        watcher = None
        if self.config.watch != "off":
            watcher = Watcher(self.config.manifests, self._reload, self.config.watch, self.config.poll_interval)
            try:
                watcher.start()
            except OSError as e:  # e.g. the inotify watch limit, or the directory just vanished
                log.error("cannot watch %s (%s): serving without live reload; SIGHUP still re-reads", self.config.manifests, e)
                watcher = None
            else:
                self.watcher = watcher
                watcher.watch_outside(self.pipeline.store.outside_dirs())
                # A change between the first load and the watch start is picked up now.
                watcher.poke()
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
        for h in http:
            h.close()
        if watcher:
            watcher.stop()
        for udp, tcp in servers:
            udp.close()
            tcp.close()
            pending = list(udp.tasks) + [t for c in tcp.connections for t in c.tasks]
            if pending:
                await asyncio.wait(pending, timeout=3)

    def _announce(self) -> None:
        for host, port in self.bound:
            log.info("serving DNS on %s (udp, tcp)", hostport_text(host, port))
        if self.upstreams:
            log.info("forwarding other names to %s", ", ".join(f"{h}:{p}" for h, p in self.upstreams))
        else:
            log.info("no upstream: names outside %s get REFUSED", ", ".join(self.config.zones))
        if self.config.watch != "off":
            log.info("watching %s (%s)", self.config.manifests, "polling" if self.config.watch == "poll" else "inotify")
        if self.config.workers > 1:
            log.info("%d worker processes share each port (SO_REUSEPORT)", self.config.workers)

    def _hangup(self) -> None:
        """SIGHUP: a full re-read here, off the event loop so queries keep flowing, and in every worker."""
        for worker in self.workers:
            with suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGHUP)
        asyncio.get_running_loop().run_in_executor(None, self._reload, True)

    async def worker_counts(self) -> list[metrics.Counts]:
        """Every --workers child's counts, asked for now.

        A child that does not answer within REPORT_TIMEOUT, or has exited, is not asked
        again (with a warning), but its last counts stay in the sums: Prometheus counters
        must not go down, or rate() would read a reset.
        """
        async with self._asking:  # one scrape at a time talks to the children
            live = [w for w in self.workers if w.channel is not None]
            replies = await asyncio.gather(*(asyncio.wait_for(_ask(w.channel), REPORT_TIMEOUT) for w in live), return_exceptions=True)  # type: ignore[arg-type]
            for worker, reply in zip(live, replies):
                if isinstance(reply, BaseException):
                    log.warning("worker %d did not report its counts (%s): /metrics keeps its last counts and stops asking it",
                                worker.pid, str(reply) or type(reply).__name__)
                    worker.channel.close()  # type: ignore[union-attr]
                    worker.channel = None  # a late reply is never read as the next one
                else:
                    worker.last = reply
            return [w.last for w in self.workers if w.last is not None]

    def _report_counts(self) -> None:
        """A --workers child: the first process asks (one byte per scrape) for this process's counts."""
        channel = self.report_to
        assert channel is not None
        try:
            request = channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            request = b""
        if not request:  # the first process has gone, or closed this channel after a timeout
            asyncio.get_running_loop().remove_reader(channel.fileno())
            channel.close()
            self.report_to = None
            return
        try:
            payload = pickle.dumps(metrics.counts(self.listeners, self))
        except Exception:  # a bug here must not stop this worker from answering DNS
            log.exception("worker could not gather its counts for /metrics")
            return
        # Sent from a task: a large reply never blocks this worker's DNS while the first process reads it.
        task = asyncio.get_running_loop().create_task(_send(channel, struct.pack("!I", len(payload)) + payload))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _reload(self, full: bool = False) -> None:
        try:
            self.load(full)
        except Exception as e:  # never lose what is serving (DESIGN: errors become answers)
            self.reload_failures += 1
            log.exception("reload failed, still serving the previous data: %s", e)


async def _send(channel: socket.socket, data: bytes) -> None:
    with suppress(OSError):  # the first process gave up on this reply: it closed its end
        await asyncio.get_running_loop().sock_sendall(channel, data)


async def _ask(channel: socket.socket) -> metrics.Counts:
    """One child's counts over its channel: a byte out, a length-prefixed pickle back.
    (pickle is safe here: the other end is our own forked process.)"""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(channel, b"?")
    size = struct.unpack("!I", await _read_exactly(channel, 4))[0]
    return pickle.loads(await _read_exactly(channel, size))  # type: ignore[no-any-return]


async def _read_exactly(channel: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < n:
        chunk = await loop.sock_recv(channel, n - len(data))
        if not chunk:
            raise EOFError("the worker exited")
        data += chunk
    return bytes(data)


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
    reuse = config.workers > 1
    sockets = server.bind(reuse_port=reuse)
    # --- forwarding loop check (issue 8): bound but not yet served, so a probe sent through the
    # upstreams that reaches our own UDP sockets means a loop (CoreDNS's loop plugin); exit 2.
    if config.loop_detect == "on" and server.upstreams:
        try:
            forwarder.check_loop([udp for udp, _ in sockets], server.upstreams, min(config.upstream_timeout, forwarder.LOOP_CHECK_TIMEOUT))
        except ConfigError:
            _close(sockets)
            raise
    # --- end of the loop check
    for worker in range(1, config.workers):
        mine, theirs = socket.socketpair()  # for /metrics: the first process asks, the worker reports
        pid = os.fork()
        if pid == 0:  # a worker: its own sockets on the same ports, its own event loop
            _close(sockets)
            for channel in [w.channel for w in server.workers] + [mine]:
                channel.close()  # type: ignore[union-attr]
            server.workers = []
            theirs.setblocking(False)
            server.report_to = theirs
            code = 0
            try:
                runner(server.serve(server.bind(reuse_port=True), announce=False))
            except BaseException:
                log.exception("worker %d failed", worker)
                code = 1
            os._exit(code)
        theirs.close()
        mine.setblocking(False)
        server.workers.append(Worker(pid, mine))
    try:
        runner(server.serve(sockets))
    finally:
        for w in server.workers:
            with suppress(ProcessLookupError):
                os.kill(w.pid, signal.SIGTERM)
        for w in server.workers:
            with suppress(ChildProcessError):
                os.waitpid(w.pid, 0)
