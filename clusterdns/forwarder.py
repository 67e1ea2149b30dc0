"""Forward raw DNS queries to upstream resolvers: UDP first, TCP on TC, one deadline per call."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import struct
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress

import dns.exception
import dns.message
import dns.rdatatype

from clusterdns.config import Address, parse_hostport

DNS_PORT = 53
MAX_ATTEMPT = 2.0  # per-upstream read timeout, as CoreDNS forward's `read_timeout`
MIN_ATTEMPT = 0.5  # never slice an attempt thinner than this (unless less time is left)
EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 UDP payload size, for our own lookups

# RFC 1035 4.1.1 header bits, byte 2 (QR, Opcode, AA, TC, RD) and byte 3 (RA, Z, RCODE).
_QR = 0x80
_TC = 0x02
_SERVFAIL = 2
_REFUSED = 5
_TRY_NEXT = frozenset({_SERVFAIL, _REFUSED})
# Error replies that may legitimately come back without a question section (as dnspython allows).
_NO_QUESTION_OK = frozenset({1, _SERVFAIL, 4, _REFUSED})  # FORMERR, SERVFAIL, NOTIMP, REFUSED

# systemd-resolved's stub listener: inside a container or Pod it is not the host's resolver,
# and CoreDNS's loop plugin README tells users to point at the real upstreams instead.
SYSTEMD_RESOLVED_STUB = "127.0.0.53"

Question = tuple[tuple[bytes, bytes], ...]  # ((lower-cased wire qname, qtype+qclass), ...)


async def forward(query: bytes, upstreams: Sequence[Address], timeout: float = 2.5, *, tcp: bool = False) -> bytes | None:
    """Send the client's raw query to `upstreams` in order; the first usable reply, with the client's ID.

    The whole call has one deadline, `timeout` seconds from now. Each upstream gets an attempt of
    min(MAX_ATTEMPT, max(time left / upstreams left, MIN_ATTEMPT), time left) seconds, so a silent
    upstream cannot eat the time of the ones after it, and a refused port (ICMP unreachable) moves
    on at once. A TC reply is retried over TCP on the same upstream within what is left of the
    deadline; if that fails, the truncated reply is returned as is (the client may retry over TCP).
    REFUSED and SERVFAIL move on to the next upstream; if nothing better comes, the last of them is
    returned. None means no upstream answered in time (the caller answers SERVFAIL). Never raises
    on network errors.
    """
    question = _question(query)
    if question is None or not upstreams or timeout <= 0:
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    fallback: bytes | None = None
    for index, upstream in enumerate(upstreams):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        budget = min(MAX_ATTEMPT, max(remaining / (len(upstreams) - index), MIN_ATTEMPT), remaining)
        reply = await _exchange(query, question, upstream, budget, deadline, tcp)
        if reply is None:
            continue
        if reply[3] & 0x0F in _TRY_NEXT:
            fallback = reply
            continue
        return query[:2] + reply[2:]
    return query[:2] + fallback[2:] if fallback is not None else None


async def lookup(name: str, rdtype: int, upstreams: Sequence[Address], timeout: float = 2.5) -> dns.message.Message | None:
    """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232); the parsed reply, or None."""
    rrtype = dns.rdatatype.RdataType.make(rdtype)
    query = dns.message.make_query(name, rrtype, use_edns=0, payload=EDNS_PAYLOAD)  # RD is set by default
    reply = await forward(query.to_wire(), upstreams, timeout)
    if reply is None:
        return None
    try:
        return dns.message.from_wire(reply)
    except dns.exception.DNSException:
        return None


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf", exclude: Iterable[Address] = ()) -> list[Address]:
    """The `nameserver` addresses of a resolv.conf (port 53), in order, without duplicates.

    Dropped, so that we never forward to ourselves:
    - exact matches of `exclude` (our own listen addresses; 0.0.0.0 is not expanded);
    - 127.0.0.53, systemd-resolved's stub, which is not reachable the same way from a container
      (use /run/systemd/resolve/resolv.conf, which lists the real upstreams, on such hosts).
    127.0.0.11 is kept: it is Docker's embedded DNS, the right upstream inside a container.
    Scoped IPv6 (fe80::1%eth0) is skipped: we do not carry the zone index to the socket.
    A missing or unreadable file gives an empty list.
    """
    excluded = {(_canonical(host), port) for host, port in exclude}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    found: list[Address] = []
    for line in lines:
        # resolv.conf(5): "#" or ";" in the first column starts a comment; be lenient anywhere.
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2 or words[0] != "nameserver" or "%" in words[1]:
            continue
        host = _canonical(words[1])
        if not host or host == SYSTEMD_RESOLVED_STUB:
            continue
        address = (host, DNS_PORT)
        if address not in excluded and address not in found:
            found.append(address)
    return found


def parse_upstream(text: str) -> Address:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:53` -> (host, port); port 53 by default.

    Raises ConfigError on anything else.
    """
    return parse_hostport(text, default_port=DNS_PORT)


def _canonical(host: str) -> str:
    """The compressed form of an IP address ("" if it is not one), so "::1" matches "0::1"."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return ""


# --- one upstream ------------------------------------------------------------------------------


async def _exchange(query: bytes, question: Question, upstream: Address, budget: float, deadline: float, tcp: bool) -> bytes | None:
    """One attempt on one upstream: UDP (or TCP if asked), then TCP if the UDP reply has TC."""
    if tcp:
        return await _tcp(query, question, upstream, budget)
    reply = await _udp(query, question, upstream, budget)
    if reply is None or not reply[2] & _TC:
        return reply
    # RFC 1035 4.2.1 / RFC 7766 5: a truncated UDP reply means "ask again over TCP". The retry
    # stays inside the call's deadline, so it cannot overrun what the client was promised.
    remaining = min(MAX_ATTEMPT, deadline - asyncio.get_running_loop().time())
    full = await _tcp(query, question, upstream, remaining) if remaining > 0 else None
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


async def _udp(query: bytes, question: Question, upstream: Address, budget: float) -> bytes | None:
    """Send over a fresh connected UDP socket (ephemeral port, random ID); the matching reply or None."""
    # RFC 5452 9.2: a fresh unpredictable ID and source port per attempt. Connecting the socket
    # makes the kernel drop datagrams from any other address and port (RFC 5452 9.1).
    qid = secrets.randbelow(0x10000)
    loop = asyncio.get_running_loop()
    transport: asyncio.DatagramTransport | None = None
    try:
        async with asyncio.timeout(budget):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _UDPReply(lambda data: _matches(data, qid, question)), remote_addr=upstream
            )
            transport.sendto(struct.pack("!H", qid) + query[2:])
            return await protocol.result
    except (OSError, TimeoutError):
        return None
    finally:
        if transport is not None:
            transport.close()


async def _tcp(query: bytes, question: Question, upstream: Address, budget: float) -> bytes | None:
    """Send over a fresh TCP connection with RFC 1035 4.2.2 length framing; the matching reply or None."""
    qid = secrets.randbelow(0x10000)
    message = struct.pack("!H", qid) + query[2:]
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(budget):
            reader, writer = await asyncio.open_connection(*upstream)
            writer.write(struct.pack("!H", len(message)) + message)
            await writer.drain()
            while True:  # RFC 7766 7: replies may come out of order; skip ones not for us
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await reader.readexactly(length)
                if _matches(reply, qid, question):
                    return reply
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


# --- wire checks -------------------------------------------------------------------------------


def _matches(reply: bytes, qid: int, question: Question) -> bool:
    """RFC 5452 9.1 / RFC 1035 7.3: same ID, QR set, same opcode, same question (name ignoring case)."""
    if len(reply) < 12 or struct.unpack_from("!H", reply)[0] != qid or not reply[2] & _QR:
        return False
    theirs = _question(reply)  # None unless opcode 0 (QUERY), the only one we forward
    if theirs == question:
        return True
    # Some servers drop the question from error replies; take those rather than time out.
    return theirs == () and reply[3] & 0x0F in _NO_QUESTION_OK


def _question(message: bytes) -> Question | None:
    """The question section as comparable values, or None if it cannot be read.

    Names are compared as lower-cased wire labels (RFC 4343: ASCII case-insensitive); length
    octets are at most 63 and so unaffected by bytes.lower(). Compression pointers are refused:
    the question follows the header directly, so there is nothing earlier to point at (RFC 1035
    4.1.4), and RFC 9619 says a query carries exactly one question.
    """
    if len(message) < 12 or (message[2] >> 3) & 0x0F != 0:
        return None
    (count,) = struct.unpack_from("!H", message, 4)
    offset, out = 12, []
    for _ in range(count):
        start = offset
        while offset < len(message) and message[offset] != 0:
            if message[offset] & 0xC0:  # pointer or reserved label type
                return None
            offset += 1 + message[offset]
        offset += 1  # the root label
        if offset + 4 > len(message):
            return None
        out.append((message[start:offset].lower(), message[offset : offset + 4]))
        offset += 4
    return tuple(out)


class Forwarder:
    """The upstreams of one server: what the handler forwards through.

    Keeps per-server state (for upstream health, policy, concurrency and the answer
    cache of forwarded names); the module functions above do one exchange.
    """

    def __init__(self, upstreams: Sequence[Address], timeout: float = 2.5) -> None:
        self.upstreams = tuple(upstreams)
        self.timeout = timeout

    async def forward(self, query: bytes, tcp: bool = False) -> bytes | None:
        return await forward(query, self.upstreams, self.timeout, tcp=tcp)

    async def lookup(self, name: str, rdtype: int) -> dns.message.Message | None:
        return await lookup(name, rdtype, self.upstreams, self.timeout)
