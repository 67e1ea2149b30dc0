"""TCP: 2-byte length-prefixed messages (RFC 1035 4.2.2), several per connection (RFC 7766),
with hostile clients bounded."""

from __future__ import annotations

import asyncio
import logging
import struct
from time import perf_counter
from typing import Any

from clusterdns.ops.counters import ListenerStats, count
from clusterdns.serve.loadbalance import balanced, runs, shuffled
from clusterdns.serve.replies import ReplyCache
from clusterdns.serve.timed import timed_entry
from clusterdns.serve.udp import LOG_EVERY, Pending, Responder

try:  # the extension's look-up of kept replies (udp.py loads it and sets its histogram's buckets)
    from clusterdns.serve._udpbatch import reply as reply_in_c
except ImportError:  # not built: the same look-up in Python (ReplyCache.kept)
    reply_in_c = None

log = logging.getLogger("clusterdns")

TCP_IDLE_TIMEOUT = 10.0  # seconds without a complete query before we close (RFC 7766 6.2.3)
TCP_MAX_CONNECTIONS = 256  # more are accepted and closed at once
TCP_WRITE_HIGH = 256 * 1024  # replies queued for a client that does not read: stop reading it
TCP_WRITE_LOW = 64 * 1024  # ... and read again once the queue has drained to this
TCP_FLUSH = 64 * 1024  # write replies out in pieces of about this size


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
            result = self.server.answer(message, self.peer)
            if result.__class__ is bytes:
                out += struct.pack("!H", len(result)) + result  # type: ignore[arg-type]
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

    async def _later(self, pending: Pending, query: bytes, started: float) -> None:
        try:
            reply, key = await pending
        except Exception:
            log.exception("handler failed on a TCP query")
            return
        if self.server.balance:
            reply = balanced(reply)
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

    def __init__(self, handler: Responder, stats: ListenerStats, max_queries: int = 0, balance: bool = False) -> None:
        self.handler = handler
        self.stats = stats
        self.balance = balance  # --loadbalance round_robin (loadbalance.py), as UDPServer
        self.connections: set[TCPConnection] = set()
        self.server: asyncio.Server | None = None
        self.refused = 0  # connections closed at once because of the cap
        self.max_queries = max_queries  # --tcp-max-queries; 0: no limit
        self.replies = ReplyCache()  # fixed replies for the current snapshot, as UDPServer keeps them
        self.reply_in_c = reply_in_c  # None: kept replies are looked up, and timed ones patched, in Python
        self._logged = -LOG_EVERY

    def answer(self, message: bytes, peer: Any) -> bytes | list[bytes] | None | Pending:
        """The handler's reply to one message (a repeat from `replies`), counted when it is bytes."""
        started = perf_counter()
        handler = self.handler
        answers_from = handler.current
        # A kept reply, counted in its cell: in C as in a UDP batch, where a forwarded one's
        # TTLs are patched: 0.36 µs a reply rather than 1.2 in Python (timed.py).
        if self.reply_in_c is not None:
            tail = self.reply_in_c(self.replies.of(answers_from), message)
            if tail is not None:
                return message[:2] + tail
        else:
            known, tail = self.replies.kept(answers_from, message)
            if tail is not None:
                count(known[1], perf_counter() - started)
                return message[:2] + tail
        try:
            result = handler.respond(message, True, peer[0] if peer else None)
        except Exception:
            log.exception("handler failed on a TCP query")
            return None
        if result.__class__ is bytes:
            cell = self.stats.record(handler.last, len(message), len(result), perf_counter() - started)  # type: ignore[arg-type]
            spec = runs(result) if self.balance else None  # type: ignore[arg-type]
            if handler.fixed and handler.current is answers_from:
                entry = (result[2:], cell) if spec is None else (result[2:], cell, spec)  # type: ignore[index]
                self.replies.put(answers_from, message[2:], entry)
            elif handler.hit is not None and handler.current is answers_from:
                # A fresh cache hit: kept with its TTLs counting down, as UDPServer keeps it (timed.py).
                self.replies.put(answers_from, message[2:], timed_entry(*handler.hit, message, cell, spec))
            if spec is not None:
                return result[:2] + shuffled(result[2:], spec)  # type: ignore[index]
        return result

    def use(self, handler: Responder, max_queries: int, balance: bool, querylog: Any) -> None:
        """Answer the next messages, on open connections too, with a reloaded configuration's handler."""
        self.handler, self.max_queries, self.balance, self.stats.querylog = handler, max_queries, balance, querylog
        self.replies = ReplyCache()

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
