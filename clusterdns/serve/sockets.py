"""Listening sockets: a UDP and a TCP socket per address, and the listeners on them."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from clusterdns.config.addresses import hostport_text
from clusterdns.ops.counters import ListenerStats
from clusterdns.serve.ratelimit import RateLimiter
from clusterdns.serve.tcp import TCPConnection, TCPServer
from clusterdns.serve.udp import Responder, UDPServer

log = logging.getLogger("clusterdns")

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


async def start(udp_sock: socket.socket, tcp_sock: socket.socket, handler: Responder, limiter: RateLimiter | None = None,
                querylog: Callable[..., None] | None = None, tcp_max_queries: int = 0, balance: bool = False) -> tuple[UDPServer, TCPServer]:
    """Serve UDP and TCP on a bound socket pair, each with its own counters; `limiter`
    (--rate-limit) gates every UDP reply, `querylog` (--log-queries) is given every query
    and reply, `balance` (--loadbalance round_robin) shuffles each reply's addresses."""
    loop = asyncio.get_running_loop()
    host, port = udp_sock.getsockname()[:2]
    server = "dns://" + hostport_text(host, port)
    family = 2 if udp_sock.family == socket.AF_INET6 else 1
    udp = UDPServer(udp_sock, handler, ListenerStats(server, "udp", family, querylog), limiter, balance)
    tcp = TCPServer(handler, ListenerStats(server, "tcp", family, querylog), tcp_max_queries, balance)
    tcp.server = await loop.create_server(lambda: TCPConnection(tcp), sock=tcp_sock)
    return udp, tcp
