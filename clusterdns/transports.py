"""asyncio UDP and TCP servers: framing and bytes only, no DNS logic."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Coroutine
from time import perf_counter
from typing import Any, Protocol

from clusterdns.metrics import Key, ListenerStats

log = logging.getLogger("clusterdns")

Pending = Coroutine[Any, Any, "tuple[bytes, Key]"]


class Responder(Protocol):
    """The handler as transports see it: bytes in; bytes, nothing, or a pending reply out.
    After a synchronous reply, `last` says what it was (for the counters)."""

    last: Key

    def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> bytes | list[bytes] | None | Pending: ...

TCP_IDLE_TIMEOUT = 10.0  # seconds without a complete query before we close (RFC 7766 6.2.3)
TCP_MAX_CONNECTIONS = 256


class UDPServer(asyncio.DatagramProtocol):
    """One UDP socket: each datagram is one query, answered to its sender."""

    def __init__(self, handler: Responder, stats: ListenerStats) -> None:
        self.handler = handler
        self.stats = stats
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        started = perf_counter()
        try:
            result = self.handler.respond(data, False, addr[0])
        except Exception:
            log.exception("handler failed on a UDP packet from %s", addr)
            return
        if result is None:
            return
        if result.__class__ is bytes:
            self.transport.sendto(result, addr)  # type: ignore[union-attr, arg-type]
            self.stats.record(self.handler.last, len(data), len(result), perf_counter() - started)  # type: ignore[arg-type]
            if self.stats.querylog:
                self.stats.querylog(addr, "udp", data, result, perf_counter() - started)
            return
        task = asyncio.get_running_loop().create_task(self._later(result, addr, data, started))  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _later(self, pending: Pending, addr: Any, query: bytes, started: float) -> None:
        size = len(query)
        try:
            reply, key = await pending
        except Exception:
            log.exception("handler failed on a UDP query from %s", addr)
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)
            self.stats.record(key, size, len(reply), perf_counter() - started)
            if self.stats.querylog:
                self.stats.querylog(addr, "udp", query, reply, perf_counter() - started)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for earlier replies: nothing to do


class TCPConnection(asyncio.Protocol):
    """One TCP client: 2-byte length-prefixed messages (RFC 1035 4.2.2), several per
    connection, answered as they complete; replies to one read go out in one write."""

    def __init__(self, server: TCPServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        if len(self.server.connections) > TCP_MAX_CONNECTIONS:
            transport.close()
            return
        self._arm()

    def _arm(self) -> None:
        if self.idle:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(TCP_IDLE_TIMEOUT, self._timeout)

    def _timeout(self) -> None:
        if self.transport and not self.tasks:
            self.transport.close()
        else:
            self._arm()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = bytearray()
        while len(self.buffer) >= 2:
            size = struct.unpack_from("!H", self.buffer)[0]
            if len(self.buffer) < 2 + size:
                break
            message = bytes(self.buffer[2 : 2 + size])
            del self.buffer[: 2 + size]
            started = perf_counter()
            result = self._answer(message)
            if result.__class__ is bytes:
                out += struct.pack("!H", len(result)) + result  # type: ignore[arg-type]
                self.server.stats.record(self.server.handler.last, size, len(result), perf_counter() - started)  # type: ignore[arg-type]
                if self.server.stats.querylog:
                    self.server.stats.querylog(self._peer(), "tcp", message, result, perf_counter() - started)
            elif isinstance(result, list):  # a zone transfer: several messages (RFC 5936 2.2)
                for message in result:
                    out += struct.pack("!H", len(message)) + message
                self.server.stats.record(self.server.handler.last, size, sum(map(len, result)), perf_counter() - started)
            elif result is not None:
                task = asyncio.get_running_loop().create_task(self._later(result, message, started))  # type: ignore[arg-type]
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        if out and self.transport:
            self.transport.write(bytes(out))
        self._arm()

    def _answer(self, message: bytes) -> bytes | list[bytes] | None | Pending:
        try:
            peer = self._peer()
            return self.server.handler.respond(message, True, peer[0] if peer else None)
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
                self.server.stats.querylog(self._peer(), "tcp", query, reply, perf_counter() - started)

    def _peer(self) -> Any:
        return self.transport.get_extra_info("peername") if self.transport else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.idle:
            self.idle.cancel()
        for task in self.tasks:
            task.cancel()


class TCPServer:
    """Accepts TCP connections for one address."""

    def __init__(self, handler: Responder, stats: ListenerStats) -> None:
        self.handler = handler
        self.stats = stats
        self.connections: set[TCPConnection] = set()
        self.server: asyncio.Server | None = None

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


async def start(udp_sock: socket.socket, tcp_sock: socket.socket, handler: Responder) -> tuple[UDPServer, TCPServer]:
    """Serve UDP and TCP on a bound socket pair, each with its own counters."""
    loop = asyncio.get_running_loop()
    host, port = udp_sock.getsockname()[:2]
    server = f"dns://[{host}]:{port}" if ":" in host else f"dns://{host}:{port}"
    family = 2 if udp_sock.family == socket.AF_INET6 else 1
    _, udp = await loop.create_datagram_endpoint(lambda: UDPServer(handler, ListenerStats(server, "udp", family)), sock=udp_sock)
    tcp = TCPServer(handler, ListenerStats(server, "tcp", family))
    tcp.server = await loop.create_server(lambda: TCPConnection(tcp), sock=tcp_sock)
    return udp, tcp
