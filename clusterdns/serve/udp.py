"""UDP: each datagram one query, answered to its sender; read in batches of 64 with the
_udpbatch extension (recvmmsg/sendmmsg), one at a time without it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any, Protocol

from clusterdns.ops.counters import DURATION_BUCKETS, CounterKey, ListenerStats, count
from clusterdns.serve.loadbalance import balanced, runs, shuffled
from clusterdns.serve.ratelimit import RateLimiter
from clusterdns.serve.replies import ReplyCache
from clusterdns.serve.timed import timed_entry

try:
    from clusterdns.serve import _udpbatch  # recvmmsg/sendmmsg, built at install where a compiler is
    _udpbatch.buckets(DURATION_BUCKETS)  # replies from the cache are counted in C, in the same histogram
except ImportError:  # not built (no compiler, not Linux): one system call per datagram
    _udpbatch = None  # type: ignore[assignment]

log = logging.getLogger("clusterdns")

Pending = Coroutine[Any, Any, "tuple[bytes, CounterKey]"]
LOG_EVERY = 60.0  # seconds between two lines about the same trouble


class Responder(Protocol):
    """The handler as listeners see it: bytes in; bytes, nothing, or a pending reply out.
    After a synchronous reply, `last` says what it was (for the counters) and `fixed`
    whether it is a fixed function of the query bytes while `current` (what answers come
    from, a new object whenever they change) stays the same object."""

    last: CounterKey
    fixed: bool
    current: Any

    def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> bytes | list[bytes] | None | Pending: ...


class UDPServer:
    """One UDP socket: each datagram is one query, answered to its sender.

    The socket is read when the event loop says it is readable, draining what is queued:
    with the _udpbatch extension, 64 datagrams per recvmmsg and their replies in one
    sendmmsg; without it, recvfrom/sendto one at a time. A reply the socket's send
    buffer cannot take is dropped, as the network might drop it; the client retries.

    `replies` keeps this listener's replies that are fixed for the handler's current
    snapshot: exact query bytes less the ID -> (reply less the ID, metrics cell). A repeat
    is its ID and that tail, counted in its cell. With the extension this happens in C,
    without calling Python, while the snapshot is still the handler's current one; not
    while --rate-limit or --log-queries must see every reply (they see it here).

    `balance` (--loadbalance round_robin): every reply leaves with its address and MX
    records in a fresh order (loadbalance.py); a kept reply keeps its runs beside it.
    """

    def __init__(self, sock: socket.socket, handler: Responder, stats: ListenerStats, limiter: RateLimiter | None = None,
                 balance: bool = False) -> None:
        self.sock = sock
        self.handler = handler
        self.stats = stats
        self.limiter = limiter  # --rate-limit; None when off, so it costs one check
        self.balance = balance
        self.tasks: set[asyncio.Task[None]] = set()
        self.replies = ReplyCache()
        # Repeats answered in C need the extension, and no limiter or query log that must see every reply.
        self.in_c = serve is _serve_batched and limiter is None and not stats.querylog
        self.failures = 0  # receive loops ended by an exception
        self._logged = -LOG_EVERY
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.fileno(), self._readable)

    def use(self, handler: Responder, limiter: RateLimiter | None, balance: bool, querylog: Any) -> None:
        """Answer from now on with a reloaded configuration's handler and options; the kept
        replies were the old handler's, so they go. Plain assignments: a batch already running
        finishes with what it started with."""
        self.in_c = False
        self.handler, self.limiter, self.balance, self.stats.querylog = handler, limiter, balance, querylog
        self.replies = ReplyCache()
        self.in_c = serve is _serve_batched and limiter is None and not querylog

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self) -> None:
        try:
            if self.in_c:
                replies = self.replies
                _udpbatch.serve(self.sock.fileno(), self.answer, self.handler, replies.table, replies.snapshot)
            else:
                serve(self.sock, self.answer)
        except Exception:
            # A bug outside the handler (which answers SERVFAIL for its own): the rest of
            # that batch is lost. Logged at most once a minute, or a flood of queries
            # would become a flood of tracebacks.
            self.failures += 1
            now = self.loop.time()
            if now - self._logged >= LOG_EVERY:
                self._logged = now
                log.exception("UDP receive loop failed (%d times so far)", self.failures)

    def answer(self, data: bytes, addr: Any) -> bytes | None:
        """The reply to send back to `addr` now, or None (dropped, or answered later)."""
        started = perf_counter()
        handler = self.handler
        answers_from = handler.current
        known, tail = self.replies.kept(answers_from, data)
        if tail is not None:
            return self._deliver(addr, data, data[:2] + tail, started, known[1])
        try:
            result = handler.respond(data, False, addr[0])
        except Exception:
            log.exception("handler failed on a UDP packet from %s", addr)
            return None
        if result.__class__ is bytes:
            if handler.fixed and self.limiter is None and handler.current is answers_from:
                # The snapshot was current before and after the handler answered, so the reply
                # came from it (snapshots are only ever replaced by new ones). Not under a rate
                # limiter, whose slips (TC replies) must never be kept.
                cell = self.stats.record(handler.last, len(data), len(result), perf_counter() - started)  # type: ignore[arg-type]
                spec = runs(result) if self.balance else None  # type: ignore[arg-type]
                if spec is None:
                    self.replies.put(answers_from, data[2:], (result[2:], cell))  # type: ignore[index]
                else:
                    self.replies.put(answers_from, data[2:], (result[2:], cell, spec))  # type: ignore[index]
                    result = result[:2] + shuffled(result[2:], spec)  # type: ignore[index]
                return self._deliver(addr, data, result, started, cell, counted=True)  # type: ignore[arg-type]
            if handler.hit is not None and self.limiter is None and handler.current is answers_from:
                # A fresh cache hit, whole: kept with its TTLs counting down (timed.py).
                cell = self.stats.record(handler.last, len(data), len(result), perf_counter() - started)  # type: ignore[arg-type]
                spec = runs(result) if self.balance else None  # type: ignore[arg-type]
                self.replies.put(answers_from, data[2:], timed_entry(*handler.hit, data, cell, spec))
                if spec is not None:
                    result = result[:2] + shuffled(result[2:], spec)  # type: ignore[index]
                return self._deliver(addr, data, result, started, cell, counted=True)  # type: ignore[arg-type]
            return self._deliver(addr, data, balanced(result) if self.balance else result, started)  # type: ignore[arg-type]
        if result is None or result.__class__ is list:  # a zone transfer is never answered over UDP
            return None
        task = self.loop.create_task(self._later(result, addr, data, started))  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return None

    def _deliver(self, addr: Any, query: bytes, reply: bytes, started: float, cell: list[Any] | None = None, counted: bool = False) -> bytes | None:
        """`reply` as it goes out (None: the rate limiter dropped it), counted in `cell` (or the
        handler's `last`) and logged."""
        if self.limiter is not None:
            gated = self.limiter.gate(addr[0], reply)
            if gated is None:
                return None
            reply = gated
        if cell is None:
            self.stats.record(self.handler.last, len(query), len(reply), perf_counter() - started)
        elif not counted:
            count(cell, perf_counter() - started)
        if self.stats.querylog:
            self.stats.querylog(addr, "udp", query, reply, perf_counter() - started)
        return reply

    async def _later(self, pending: Pending, addr: Any, query: bytes, started: float) -> None:
        size = len(query)
        try:
            reply, key = await pending
        except Exception:
            log.exception("handler failed on a UDP query from %s", addr)
            return
        if self.balance:
            reply = balanced(reply)
        if self.limiter is not None:
            reply = self.limiter.gate(addr[0], reply)  # type: ignore[assignment]
            if reply is None:
                return
        if self.sock.fileno() < 0:
            return
        try:
            self.sock.sendto(reply, addr)
        except OSError:
            return  # the send buffer is full: dropped, as the network might (the client retries)
        self.stats.record(key, size, len(reply), perf_counter() - started)
        if self.stats.querylog:
            self.stats.querylog(addr, "udp", query, reply, perf_counter() - started)


def _serve_batched(sock: socket.socket, answer: Callable[[bytes, Any], bytes | None]) -> None:
    """Drain `sock` with recvmmsg/sendmmsg, at most 8 batches of 64 before the loop runs again."""
    _udpbatch.serve(sock.fileno(), answer)


def _serve_plain(sock: socket.socket, answer: Callable[[bytes, Any], bytes | None]) -> None:
    """Drain `sock` with recvfrom/sendto, at most 512 datagrams before the loop runs again."""
    for _ in range(512):
        try:
            data, addr = sock.recvfrom(65536)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            continue  # an ICMP error for an earlier reply, reported on this socket
        reply = answer(data, addr)
        if reply is not None:
            try:
                sock.sendto(reply, addr)
            except OSError:
                pass  # the send buffer is full: dropped, as the network might (the client retries)


# CLUSTERDNS_NO_MMSG=1 takes the plain path even when the extension is built (tests, A/B).
serve = _serve_batched if _udpbatch is not None and not os.environ.get("CLUSTERDNS_NO_MMSG") else _serve_plain
