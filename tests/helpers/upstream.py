"""A small real upstream DNS server on 127.0.0.1 (UDP and TCP, same port) for forwarding tests."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import heapq
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from typing import Any, Self, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from clusterdns.config.settings import Config
from clusterdns.upstream.forwarder import Forwarder

T = TypeVar("T")

MODES = ("normal", "drop", "garbage", "wrong_id", "refused", "servfail", "noisy")


class Upstream:
    """Answers from zone-file lines in a background thread.

    mode: "normal"; "drop" (never answer); "garbage" (random bytes); "wrong_id" (the right answer
    with another ID); "refused"/"servfail"; "noisy" (garbage, a wrong-ID and a wrong-question reply,
    then the right answer). Names in `truncate_udp` get TC=1 over UDP, answer records kept (as
    CoreDNS's test stub does). `delay` seconds pass before each reply. With `udp_only` the TCP port
    is held but not listening, so connects are refused. The first SOA among the records goes in the
    authority section of NXDOMAIN and NODATA replies. `queries` lists (transport, qname, qtype) and
    `received` the raw query bytes, in arrival order.
    """

    def __init__(self, records: Iterable[str] = (), *, mode: str = "normal", udp_only: bool = False,
                 truncate_udp: Iterable[str] = (), delay: float = 0.0) -> None:
        assert mode in MODES, mode
        self.mode, self.udp_only, self.delay = mode, udp_only, delay
        self.truncate_udp = {dns.name.from_text(n) for n in truncate_udp}
        self.rrsets: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}
        self.soa: dns.rrset.RRset | None = None
        for line in records:
            name, ttl, rdclass, rdtype, rdata = line.split(None, 4)  # "name ttl class type rdata"
            rrset = dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)
            key = (rrset.name, rrset.rdtype)
            self.rrsets.setdefault(key, dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)).update(rrset)
            if rrset.rdtype == dns.rdatatype.SOA and self.soa is None:
                self.soa = rrset
        self.names = {name for name, _ in self.rrsets}
        self.queries: list[tuple[str, str, int]] = []
        self.received: list[bytes] = []
        self._udp, self._tcp = _bind_pair()
        if not udp_only:
            self._tcp.listen(16)
        self.address: tuple[str, int] = self._udp.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._pending: list[tuple[float, int, Callable[[], Any]]] = []  # (due, seq, send)
        self._seq = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"upstream-{self.address[1]}", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, transport: str) -> int:
        return sum(1 for t, _, _ in self.queries if t == transport)

    def asked(self, qname: str) -> int:
        """How many queries for `qname` arrived (names compare case-insensitively, RFC 4343)."""
        return sum(1 for _, name, _ in self.queries if name.lower() == qname.lower())

    def close(self) -> None:
        # The thread may see _stopping and close its sockets before the wake-up byte is sent,
        # so the writing end is only closed here, after the join.
        self._stopping = True
        if self._thread.is_alive():
            with suppress(OSError):  # BrokenPipe if the thread already closed the reading end
                self._wake_w.send(b"x")
            self._thread.join(5)
        self._wake_w.close()

    # --- the server thread ---------------------------------------------------------------------

    def _serve(self) -> None:
        sel = self._selector
        sel.register(self._udp, selectors.EVENT_READ, self._read_udp)
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        if not self.udp_only:
            sel.register(self._tcp, selectors.EVENT_READ, self._accept)
        try:
            while not self._stopping:
                wait = max(0.0, self._pending[0][0] - time.monotonic()) if self._pending else None
                for key, _ in sel.select(wait):
                    if key.data is not None:
                        key.data(key.fileobj)
                while self._pending and self._pending[0][0] <= time.monotonic():
                    _, _, send = heapq.heappop(self._pending)
                    with suppress(OSError):  # the client went away
                        send()
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            sel.close()
            self._tcp.close()

    def _later(self, send: Callable[[], Any]) -> None:
        self._seq += 1
        heapq.heappush(self._pending, (time.monotonic() + self.delay, self._seq, send))

    def _read_udp(self, sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(65535)
        except OSError:
            return
        for reply in self._replies(data, "udp"):
            self._later(functools.partial(sock.sendto, reply, peer))

    def _accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        conn.settimeout(2.0)  # sendall may wait; reads only happen when the selector says so
        self._selector.register(conn, selectors.EVENT_READ, _TCPReader(self).read)

    def _replies(self, query: bytes, transport: str) -> list[bytes]:
        """What to send back for one query, according to the mode."""
        try:
            q = dns.message.from_wire(query)
        except (dns.exception.DNSException, ValueError):
            return []
        if not q.question:
            return []
        question = q.question[0]
        self.queries.append((transport, question.name.to_text(), question.rdtype))
        self.received.append(query)
        if self.mode == "drop":
            return []
        if self.mode == "garbage":
            return [os.urandom(48)]
        reply = self._answer(q, transport).to_wire()
        if self.mode == "wrong_id":
            return [_with_id(reply, q.id ^ 0x5A5A)]
        if self.mode == "noisy":
            other = dns.message.make_response(dns.message.make_query("other.test.", question.rdtype, id=q.id))
            return [os.urandom(48), _with_id(reply, q.id ^ 1), other.to_wire(), reply]
        return [reply]

    def _answer(self, q: dns.message.Message, transport: str) -> dns.message.Message:
        r = dns.message.make_response(q, our_payload=1232)  # echoes EDNS when the query had it
        r.flags |= dns.flags.RA
        if self.mode in ("refused", "servfail"):
            r.set_rcode(dns.rcode.REFUSED if self.mode == "refused" else dns.rcode.SERVFAIL)
            return r
        name, rdtype = q.question[0].name, q.question[0].rdtype
        for _ in range(8):  # follow CNAMEs inside our own data (RFC 1034 4.3.2)
            cname = self.rrsets.get((name, dns.rdatatype.CNAME))
            if cname is None or rdtype == dns.rdatatype.CNAME:
                break
            r.answer.append(cname)
            name = cname[0].target
        if (name, rdtype) in self.rrsets:
            r.answer.append(self.rrsets[(name, rdtype)])
        else:
            if name not in self.names:  # RFC 6604: the rcode is about the last name in the chain
                r.set_rcode(dns.rcode.NXDOMAIN)
            if self.soa is not None:
                r.authority.append(self.soa)  # RFC 2308 3: negative answers carry the SOA
        if transport == "udp" and q.question[0].name in self.truncate_udp:
            r.flags |= dns.flags.TC
        return r


class _TCPReader:
    """Collects RFC 1035 4.2.2 length-prefixed queries from one connection."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream, self.buffer = upstream, b""

    def read(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65535)
        except OSError:
            data = b""
        if not data:
            self.upstream._selector.unregister(conn)
            conn.close()
            return
        self.buffer += data
        while len(self.buffer) >= 2 and len(self.buffer) >= 2 + struct.unpack_from("!H", self.buffer)[0]:
            size = struct.unpack_from("!H", self.buffer)[0]
            query, self.buffer = self.buffer[2 : 2 + size], self.buffer[2 + size :]
            for reply in self.upstream._replies(query, "tcp"):
                self.upstream._later(functools.partial(conn.sendall, struct.pack("!H", len(reply)) + reply))


def _with_id(wire: bytes, qid: int) -> bytes:
    return struct.pack("!H", qid & 0xFFFF) + wire[2:]


def _bind_pair(attempts: int = 20) -> tuple[socket.socket, socket.socket]:
    """A UDP socket on a kernel-chosen port of 127.0.0.1 and a TCP socket bound to the same port."""
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(udp.getsockname())
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
    raise OSError("could not bind UDP and TCP to the same port")


class Clock:
    """A clock the test moves by hand (`clock.now += 1`), for caches and rate limiters."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_forwarder(upstreams: list[tuple[str, int]], body: Callable[[Forwarder], Awaitable[T]], clock: Clock | None = None, **settings: Any) -> T:
    """body(Forwarder(upstreams, Config with `settings`)) in a fresh event loop; closed after
    (health probes cancelled). `clock` drives its cache's clock."""

    async def main() -> T:
        fwd = Forwarder(upstreams, dataclasses.replace(Config(), **settings))
        if clock is not None and fwd.cache is not None:
            fwd.cache.clock = clock
        try:
            return await body(fwd)
        finally:
            await fwd.close()

    return asyncio.run(main())
