"""One query to the upstreams: UDP first, TCP on TC, one deadline for the whole call, and only
replies that match what was asked (RFC 5452 9, RFC 1035 7.3)."""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import Callable, Sequence
from contextlib import suppress

import dns.exception
import dns.message
import dns.rdatatype

from clusterdns.codes import FORMERR, NOTIMP, OPCODE_MASK, QR, REFUSED, SERVFAIL, TC, rcode_of
from clusterdns.config.addresses import Address
from clusterdns.upstream.pool import Connection, TCPPool
from clusterdns.wire import OUR_UDP_SIZE, FormErr, read_question

MAX_ATTEMPT = 2.0  # per-upstream read timeout, as CoreDNS forward's `read_timeout`
MIN_ATTEMPT = 0.5  # never slice an attempt thinner than this (unless less time is left)

# RFC 1035 4.1.1 header bits in byte 2 (QR, Opcode, AA, TC, RD).
_QR = QR >> 8
_TC = TC >> 8
_TRY_NEXT = frozenset({SERVFAIL, REFUSED})
# Error replies that may legitimately come back without a question section (as dnspython allows).
_NO_QUESTION_OK = frozenset({FORMERR, SERVFAIL, NOTIMP, REFUSED})

Question = tuple[tuple[bytes, bytes], ...]  # ((lower-cased wire qname, qtype+qclass), ...)


async def in_order(query: bytes, question: Question, upstreams: Sequence[Address], deadline: float, attempt: float,
                   tcp: bool, report: Callable[[Address, bytes | None], None] | None = None, pool: TCPPool | None = None) -> bytes | None:
    """Send the client's raw query to `upstreams` in order; the first usable reply, with the client's ID.

    Until `deadline` (loop time), each upstream gets an attempt of min(`attempt`, max(time
    left / upstreams left, MIN_ATTEMPT), time left) seconds, so a silent upstream cannot eat
    the time of the ones after it, and a refused port (ICMP unreachable) moves on at once. A
    TC reply is retried over TCP on the same upstream within what is left of the deadline; if
    that fails, the truncated reply is returned as is (the client may retry over TCP).
    REFUSED and SERVFAIL move on to the next upstream; if nothing better comes, the last of
    them is returned. None means no upstream answered in time (the caller answers SERVFAIL).
    Never raises on network errors. `report(upstream, reply or None)` hears every attempt;
    `pool` keeps TCP connections for the next exchange.
    """
    loop = asyncio.get_running_loop()
    fallback: bytes | None = None
    for index, upstream in enumerate(upstreams):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        budget = min(attempt, max(remaining / (len(upstreams) - index), MIN_ATTEMPT), remaining)
        reply = await exchange(query, question, upstream, budget, deadline, tcp, attempt, pool)
        if report is not None:
            report(upstream, reply)
        if reply is None:
            continue
        if rcode_of(reply) in _TRY_NEXT:
            fallback = reply
            continue
        return query[:2] + reply[2:]
    return query[:2] + fallback[2:] if fallback is not None else None


def lookup_query(name: str, rdtype: int) -> bytes:
    rrtype = dns.rdatatype.RdataType.make(rdtype)
    return dns.message.make_query(name, rrtype, use_edns=0, payload=OUR_UDP_SIZE).to_wire()  # RD is set by default


def parsed(reply: bytes | None) -> dns.message.Message | None:
    if reply is None:
        return None
    try:
        return dns.message.from_wire(reply)
    except dns.exception.DNSException:
        return None


async def exchange(query: bytes, question: Question, upstream: Address, budget: float, deadline: float, tcp: bool,
                    attempt: float, pool: TCPPool | None = None) -> bytes | None:
    """One attempt on one upstream: UDP (or TCP if asked), then TCP if the UDP reply has TC."""
    if tcp:
        return await tcp_exchange(query, question, upstream, budget, pool)
    reply = await udp_exchange(query, question, upstream, budget)
    if reply is None or not reply[2] & _TC:
        return reply
    # RFC 1035 4.2.1 / RFC 7766 5: a truncated UDP reply means "ask again over TCP". The retry
    # stays inside the call's deadline, so it cannot overrun what the client was promised.
    remaining = min(attempt, deadline - asyncio.get_running_loop().time())
    full = await tcp_exchange(query, question, upstream, remaining, pool) if remaining > 0 else None
    return full if full is not None else reply


class _UDPReply(asyncio.DatagramProtocol):
    """Waits for the first datagram `accept` likes; None in the future means the upstream failed."""

    def __init__(self, accept: Callable[[bytes], bool]) -> None:
        self.accept = accept
        self.result: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        # Garbage, stale or spoofed replies are ignored; we keep waiting for the real one.
        if not self.result.done() and self.accept(data):
            self.result.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP port/host unreachable arrives as ConnectionRefusedError
        # (or another OSError): that upstream is down, stop waiting for it.
        if not self.result.done():
            self.result.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.result.done():
            self.result.set_result(None)


async def udp_exchange(query: bytes, question: Question, upstream: Address, budget: float) -> bytes | None:
    """Send over a fresh connected UDP socket (ephemeral port, random ID); the matching reply or None."""
    # RFC 5452 9.2: a fresh unpredictable ID and source port per attempt. Connecting the socket
    # makes the kernel drop datagrams from any other address and port (RFC 5452 9.1).
    qid = secrets.randbelow(0x10000)
    loop = asyncio.get_running_loop()
    transport: asyncio.DatagramTransport | None = None
    try:
        async with asyncio.timeout(budget):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _UDPReply(lambda data: matches(data, qid, question)), remote_addr=upstream
            )
            transport.sendto(struct.pack("!H", qid) + query[2:])
            return await protocol.result
    except (OSError, TimeoutError):
        return None
    finally:
        if transport is not None:
            transport.close()


async def tcp_exchange(query: bytes, question: Question, upstream: Address, budget: float, pool: TCPPool | None = None) -> bytes | None:
    """Send over TCP with RFC 1035 4.2.2 length framing; the matching reply or None. A pooled
    connection the upstream has closed meanwhile is replaced by a new one (CoreDNS's
    ErrCachedClosed retry)."""
    qid = secrets.randbelow(0x10000)
    message = struct.pack("!H", qid) + query[2:]
    loop = asyncio.get_running_loop()
    end = loop.time() + budget
    for _ in range(2):
        connection = pool.take(upstream) if pool is not None else None
        reused = connection is not None
        reply = await _tcp_attempt(message, qid, question, upstream, end - loop.time(), connection, pool)
        if reply is not None or not reused or loop.time() >= end:
            return reply
    return None


async def _tcp_attempt(message: bytes, qid: int, question: Question, upstream: Address, budget: float, connection: Connection | None,
                       pool: TCPPool | None) -> bytes | None:
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(budget):
            reader, writer = connection or await asyncio.open_connection(*upstream)
            writer.write(struct.pack("!H", len(message)) + message)
            await writer.drain()
            while True:  # RFC 7766 7: replies may come out of order; skip ones not for us
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await reader.readexactly(length)
                if matches(reply, qid, question):
                    if pool is not None:
                        pool.give(upstream, (reader, writer))
                        writer = None  # kept open for the next exchange
                    return reply
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


def matches(reply: bytes, qid: int, question: Question) -> bool:
    """RFC 5452 9.1 / RFC 1035 7.3: same ID, QR set, same opcode, same question (name ignoring case)."""
    if len(reply) < 12 or struct.unpack_from("!H", reply)[0] != qid or not reply[2] & _QR:
        return False
    theirs = question_of(reply)  # None unless opcode 0 (QUERY), the only one we forward
    if theirs == question:
        return True
    # Some servers drop the question from error replies; take those rather than time out.
    return theirs == () and rcode_of(reply) in _NO_QUESTION_OK


def question_of(message: bytes) -> Question | None:
    """The question section as comparable values, or None if it cannot be read.

    Names are compared as lower-cased wire labels (RFC 4343: ASCII case-insensitive); length
    octets are at most 63 and so unaffected by bytes.lower(). Compression pointers are refused:
    the question follows the header directly, so there is nothing earlier to point at (RFC 1035
    4.1.4), and RFC 9619 says a query carries exactly one question.
    """
    if len(message) < 12 or message[2] & (OPCODE_MASK >> 8):
        return None
    (count,) = struct.unpack_from("!H", message, 4)
    offset, out = 12, []
    for _ in range(count):
        try:
            name, type_class, offset = read_question(message, offset)
        except FormErr:
            return None
        out.append((name, type_class))
    return tuple(out)
