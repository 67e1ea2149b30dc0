"""UDP and TCP servers on the asyncio loop: framing and bytes only, no DNS logic (UDP in batches)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import struct
import weakref
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any, Protocol

from clusterdns.config.addresses import hostport_text
from clusterdns.metrics import DURATION_BUCKETS, Key, ListenerStats
from clusterdns.ratelimit import RateLimiter

try:
    from clusterdns import _udpbatch  # recvmmsg/sendmmsg, built at install where a compiler is
    _udpbatch.buckets(DURATION_BUCKETS)  # known answers are counted in C, in the same histogram
except ImportError:  # not built (no compiler, not Linux): one system call per datagram
    _udpbatch = None  # type: ignore[assignment]

log = logging.getLogger("clusterdns")

Pending = Coroutine[Any, Any, "tuple[bytes, Key]"]


class Responder(Protocol):
    """The handler as transports see it: bytes in; bytes, nothing, or a pending reply out.
    After a synchronous reply, `last` says what it was (for the counters). `current` is
    what answers come from (a new object whenever they change); `fixed_reply` says whether
    a UDP query's reply is fixed while `current` stays that object."""

    last: Key
    current: Any

    def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> bytes | list[bytes] | None | Pending: ...

    def fixed_reply(self, answers_from: Any, wire: bytes) -> bytes | None: ...

TCP_IDLE_TIMEOUT = 10.0  # seconds without a complete query before we close (RFC 7766 6.2.3)
TCP_MAX_CONNECTIONS = 256  # more are accepted and closed at once
TCP_WRITE_HIGH = 256 * 1024  # replies queued for a client that does not read: stop reading it
TCP_WRITE_LOW = 64 * 1024  # ... and read again once the queue has drained to this
TCP_FLUSH = 64 * 1024  # write replies out in pieces of about this size
KNOWN_LIMIT = 100_000  # known UDP answers kept per listener; cleared when full
LOG_EVERY = 60.0  # seconds between two lines about the same trouble (connection cap, loop failures)


class UDPServer:
    """One UDP socket: each datagram is one query, answered to its sender.

    The socket is read when the event loop says it is readable, draining what is queued:
    with the _udpbatch extension, 64 datagrams per recvmmsg and their replies in one
    sendmmsg; without it, recvfrom/sendto one at a time. A reply the socket's send
    buffer cannot take is dropped, as the network might drop it; the client retries.

    With the extension, a query seen before is answered without Python: `known` maps
    exact query bytes less the ID to (reply less the ID, metrics cell) for the handler's
    snapshot `known_for`, and the extension uses it only while that is still the
    handler's current one. It is filled as the handler's fixed replies go out, and is off
    while --rate-limit or --log-queries must see every reply.
    """

    def __init__(self, sock: socket.socket, handler: Responder, stats: ListenerStats, limiter: RateLimiter | None = None) -> None:
        self.sock = sock
        self.handler = handler
        self.stats = stats
        self.limiter = limiter  # --rate-limit; None when off, so it costs one check
        self.tasks: set[asyncio.Task[None]] = set()
        # Known answers need the extension, and no limiter or query log that must see every reply.
        self.learning = serve is _serve_batched and limiter is None and not stats.querylog
        self.known: dict[bytes, tuple[bytes, list[Any]]] = {}
        self.known_for: Any = None  # the snapshot `known` answers from
        self.failures = 0  # receive loops ended by an exception
        self._logged = -LOG_EVERY
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _readable(self) -> None:
        try:
            if self.learning:
                _udpbatch.serve(self.sock.fileno(), self.answer, self.handler, self.known, self.known_for)
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
        answers_from = self.handler.current
        try:
            result = self.handler.respond(data, False, addr[0])
        except Exception:
            log.exception("handler failed on a UDP packet from %s", addr)
            return None
        if result.__class__ is bytes:
            if self.limiter is not None:
                result = self.limiter.gate(addr[0], result)  # type: ignore[arg-type]
                if result is None:
                    return None
            cell = self.stats.record(self.handler.last, len(data), len(result), perf_counter() - started)  # type: ignore[arg-type]
            if self.stats.querylog:
                self.stats.querylog(addr, "udp", data, result, perf_counter() - started)
            elif self.learning and self.handler.current is answers_from:
                self._learn(answers_from, data, cell)
            return result  # type: ignore[return-value]
        if result is None or result.__class__ is list:  # a zone transfer is never answered over UDP
            return None
        task = self.loop.create_task(self._later(result, addr, data, started))  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return None

    def _learn(self, answers_from: Any, data: bytes, cell: list[Any]) -> None:
        """Keep the reply to `data` for the extension, if it is fixed for this snapshot.

        The snapshot was current before and after the handler answered, so the reply came
        from it (snapshots are only ever replaced by new ones).
        """
        tail = self.handler.fixed_reply(answers_from, data)
        if tail is None:
            return
        if answers_from is not self.known_for:
            self.known, self.known_for = {}, answers_from  # a new dict: a running serve() keeps the old one
        elif len(self.known) >= KNOWN_LIMIT:
            self.known.clear()
        self.known[data[2:]] = (tail, cell)

    async def _later(self, pending: Pending, addr: Any, query: bytes, started: float) -> None:
        size = len(query)
        try:
            reply, key = await pending
        except Exception:
            log.exception("handler failed on a UDP query from %s", addr)
            return
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


class TCPConnection(asyncio.Protocol):
    """One TCP client: 2-byte length-prefixed messages (RFC 1035 4.2.2), several per
    connection, answered as they complete; replies to one read go out together, in
    writes of about TCP_FLUSH bytes.

    Hostile clients are bounded: the idle timer runs from the last complete query, so a
    client that sends part of a length prefix or of a message and stalls (slowloris) is
    closed after TCP_IDLE_TIMEOUT like an idle one; after --tcp-max-queries (when set)
    the connection is answered and closed; and a client that does not read its replies
    is no longer read from once TCP_WRITE_HIGH bytes are queued for it, and is cut off
    (aborted) if it still has not read them when the idle timer runs out.
    """

    def __init__(self, server: TCPServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.idle: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.queries = 0
        self.paused = False  # our replies are not being read: we stopped reading too
        self.finished = False  # --tcp-max-queries reached: close once the replies are out

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.server.connections) >= TCP_MAX_CONNECTIONS:
            self.finished = True
            self.server.refuse()
            transport.close()
            return
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        self.server.connections.add(self)
        transport.set_write_buffer_limits(high=TCP_WRITE_HIGH, low=TCP_WRITE_LOW)  # type: ignore[attr-defined]
        self._arm()

    def _arm(self) -> None:
        if self.idle:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(TCP_IDLE_TIMEOUT, self._timeout)

    def _timeout(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.paused or transport.is_closing():
            transport.abort()  # its replies have sat unread for the whole idle time
        elif self.tasks:
            self._arm()  # a forwarded answer is still coming (bounded by the forwarder)
        else:
            transport.close()  # flushes first: if the client does not read, the next timeout aborts
            self._arm()

    def pause_writing(self) -> None:
        self.paused = True
        if self.transport and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.transport and not self.transport.is_closing():
            self.transport.resume_reading()
            self._process()  # what it sent while we were not looking

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        self.buffer += data
        self._process()

    def _process(self) -> None:
        buffer = self.buffer
        out = bytearray()
        done = 0  # bytes of the buffer consumed
        answered = 0
        while not self.paused and not self.finished and len(buffer) - done >= 2:
            size = buffer[done] << 8 | buffer[done + 1]
            if len(buffer) - done < 2 + size:
                break
            message = bytes(buffer[done + 2 : done + 2 + size])
            done += 2 + size
            answered += 1
            self.queries += 1
            if self.queries == self.server.max_queries:
                self.finished = True
            started = perf_counter()
            result = self._answer(message)
            if result.__class__ is bytes:
                out += struct.pack("!H", len(result)) + result  # type: ignore[arg-type]
                self.server.stats.record(self.server.handler.last, size, len(result), perf_counter() - started)  # type: ignore[arg-type]
                if self.server.stats.querylog:
                    self.server.stats.querylog(self.peer, "tcp", message, result, perf_counter() - started)
            elif isinstance(result, list):  # a zone transfer: several messages (RFC 5936 2.2)
                for part in result:
                    out += struct.pack("!H", len(part)) + part
                self.server.stats.record(self.server.handler.last, size, sum(map(len, result)), perf_counter() - started)
            elif result is not None:
                task = asyncio.get_running_loop().create_task(self._later(result, message, started))  # type: ignore[arg-type]
                self.tasks.add(task)
                task.add_done_callback(self._task_done)
            if len(out) >= TCP_FLUSH:
                self._write(out)  # may pause us: the loop stops until the client reads
                out = bytearray()
        if done:
            del buffer[:done]
        if out:
            self._write(out)
        if self.finished:
            buffer.clear()
            self._close_when_answered()
        elif answered:
            self._arm()  # only a complete query restarts the idle clock (slowloris)

    def _write(self, out: bytearray) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(bytes(out))

    def _close_when_answered(self) -> None:
        if self.transport and not self.tasks and not self.transport.is_closing():
            self.transport.close()  # sends what is queued first; the idle timer aborts it if unread
            self._arm()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self.finished and not self.tasks:
            self._close_when_answered()

    def _answer(self, message: bytes) -> bytes | list[bytes] | None | Pending:
        try:
            return self.server.handler.respond(message, True, self.peer[0] if self.peer else None)
        except Exception:
            log.exception("handler failed on a TCP query")
            return None

    async def _later(self, pending: Pending, query: bytes, started: float) -> None:
        try:
            reply, key = await pending
        except Exception:
            log.exception("handler failed on a TCP query")
            return
        if self.transport and not self.transport.is_closing():
            self.transport.write(struct.pack("!H", len(reply)) + reply)
            self.server.stats.record(key, len(query), len(reply), perf_counter() - started)
            if self.server.stats.querylog:
                self.server.stats.querylog(self.peer, "tcp", query, reply, perf_counter() - started)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # refused at the door
        self.server.connections.discard(self)
        self.transport = None
        if self.idle:
            self.idle.cancel()
        for task in self.tasks:
            task.cancel()


class TCPServer:
    """Accepts TCP connections for one address, at most TCP_MAX_CONNECTIONS at a time."""

    def __init__(self, handler: Responder, stats: ListenerStats) -> None:
        self.handler = handler
        self.stats = stats
        self.connections: set[TCPConnection] = set()
        self.server: asyncio.Server | None = None
        self.refused = 0  # connections closed at once because of the cap
        self.max_queries = getattr(getattr(handler, "config", None), "tcp_max_queries", 0)  # 0: no limit
        self._logged = -LOG_EVERY

    def refuse(self) -> None:
        """One connection over the cap: closed unread; one log line a minute at most."""
        self.refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._logged >= LOG_EVERY:
            self._logged = now
            log.warning("%s: %d TCP connections open, the limit: refusing new ones until some close (%d refused so far)",
                        self.stats.server, len(self.connections), self.refused)

    def close(self) -> None:
        if self.server:
            self.server.close()
        for conn in list(self.connections):
            if conn.transport:
                conn.transport.close()


SocketPair = tuple[socket.socket, socket.socket]


def bind_pair(host: str, port: int, attempts: int = 20, reuse_port: bool = False) -> SocketPair:
    """A UDP and a TCP socket on the same address and port; port 0 picks a free one for both."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last: OSError | None = None
    for _ in range(attempts if port == 0 else 1):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            _bind_udp(udp, host, port)
            tcp.bind((host, udp.getsockname()[1]))
            tcp.listen(128)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        except OSError as e:
            udp.close()
            tcp.close()
            last = e
    assert last is not None
    raise last


def _bind_udp(sock: socket.socket, host: str, port: int) -> None:
    """Bind, sharing a specific address with a wildcard mDNS responder when we must.

    avahi and mDNSResponder hold 0.0.0.0:5353 with SO_REUSEADDR; a second UDP socket can
    bind 127.0.0.1:5353 only with SO_REUSEADDR as well. We first try without it, so two
    clusterdns instances on one address still fail clearly instead of splitting traffic.
    """
    try:
        sock.bind((host, port))
    except OSError as e:
        if e.errno != errno.EADDRINUSE or port == 0:
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        log.warning("UDP %s:%d is shared with another program (an mDNS responder on the wildcard address?)", host, port)


async def start(udp_sock: socket.socket, tcp_sock: socket.socket, handler: Responder,
                querylog: Callable[..., None] | None = None) -> tuple[UDPServer, TCPServer]:
    """Serve UDP and TCP on a bound socket pair, each with its own counters; `querylog`
    (--log-queries) is given every query and reply."""
    loop = asyncio.get_running_loop()
    host, port = udp_sock.getsockname()[:2]
    server = "dns://" + hostport_text(host, port)
    family = 2 if udp_sock.family == socket.AF_INET6 else 1
    limiter = _limiter(handler)
    udp = UDPServer(udp_sock, handler, ListenerStats(server, "udp", family, querylog), limiter)
    tcp = TCPServer(handler, ListenerStats(server, "tcp", family, querylog))
    tcp.server = await loop.create_server(lambda: TCPConnection(tcp), sock=tcp_sock)
    return udp, tcp


_LIMITERS: weakref.WeakKeyDictionary[Any, RateLimiter] = weakref.WeakKeyDictionary()


def _limiter(handler: Responder) -> RateLimiter | None:
    """The handler's --rate-limit buckets, one set shared by every UDP listener of the process."""
    rate = getattr(getattr(handler, "config", None), "rate_limit", 0)
    if not rate:
        return None
    limiter = _LIMITERS.get(handler)
    if limiter is None:
        limiter = _LIMITERS[handler] = RateLimiter(rate)
    return limiter
