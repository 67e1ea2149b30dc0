"""DNS wire format for the hot path: read a query's header and question, write answers.

Replies are built as a reusable *body* (everything after the question) whose names
point into the question with compression pointers (RFC 1035 4.1.4): the owner name is
0xC00C and in-zone names end in a pointer to where the zone starts in the question.
The body therefore fits every spelling of the same name, and a reply to a new query is
its ID, flags and counts, a copy of its question, the cached body and, if it sent one,
an OPT record (RFC 6891). dnslib and dnspython stay off this path (80-120 µs per packet each).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from clusterdns.codes import AA, AAAA, CD, CNAME, DO, IN, NS, OPCODE_MASK, OPT, PTR, QR, RCODE_MASK, RD, SOA, SRV, TC, TXT, A
from clusterdns.names import MAX_NAME
from clusterdns.records import RR, Name, SOAData

OUR_UDP_SIZE = 1232  # the EDNS0 UDP payload we advertise, in replies and our own queries (DNS Flag Day 2020)
MAX_UDP_SIZE = 65535


class FormErr(Exception):
    """A query we cannot read. `question_end` > 12 when the question itself was readable;
    `edns` when it carried an OPT whose fixed fields were readable: the FORMERR then carries
    our OPT, so the client can tell bad EDNS from no EDNS (RFC 6891 7)."""

    def __init__(self, reason: str, question_end: int = 0, edns: Edns | None = None) -> None:
        super().__init__(reason)
        self.question_end = question_end
        self.edns = edns


@dataclass(frozen=True, slots=True)
class Edns:
    udp_size: int
    version: int
    do: bool


@dataclass(frozen=True, slots=True)
class Query:
    """What the hot path needs from a query: the lookup key and where the question ends."""

    key: bytes  # lower-cased wire qname + qtype + qclass
    labels: tuple[str, ...]  # lower-cased, for the resolver (latin-1 keeps bytes 1:1)
    qtype: int
    qclass: int
    qname_end: int  # offset just past the qname's root label
    edns: Edns | None


def parse_query(wire: bytes) -> Query:
    """Read header, question and OPT. Raises FormErr for malformed queries.

    The caller has already checked QR = 0 and OPCODE = QUERY.
    """
    n = len(wire)
    if n < 12:
        raise FormErr("short header")
    qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", wire, 4)
    if qdcount != 1:
        raise FormErr(f"{qdcount} questions")  # RFC 9619: exactly one question
    pos, labels = _read_qname(wire, 12)
    if pos + 4 > n:
        raise FormErr("question cut short")
    qtype, qclass = struct.unpack_from("!HH", wire, pos)
    end = pos + 4
    try:
        edns = _read_additional(wire, end, ancount, nscount, arcount)
    except FormErr as e:
        raise FormErr(str(e), end, e.edns) from None
    key = wire[12:pos].lower() + wire[pos:end]
    return Query(key, labels, qtype, qclass, pos, edns)


def _read_qname(wire: bytes, pos: int) -> tuple[int, tuple[str, ...]]:
    """The question name: plain labels only (a pointer in the first name cannot point back)."""
    end = skip_name(wire, pos, pointers=False)
    if end - pos > MAX_NAME:
        raise FormErr("name longer than 255 octets")  # RFC 1035 2.3.4
    labels = []
    while length := wire[pos]:
        labels.append(wire[pos + 1 : pos + 1 + length].lower().decode("latin-1"))
        pos += 1 + length
    return end, tuple(labels)


def skip_name(wire: bytes, pos: int, pointers: bool = True) -> int:
    """Step over a possibly compressed name; pointers must point backwards (no loops).
    With `pointers=False` (a question's first name) a pointer is an error."""
    n = len(wire)
    while True:
        if pos >= n:
            raise FormErr("name runs past the end")
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0 and pointers:
            if pos + 2 > n or ((length & 0x3F) << 8 | wire[pos + 1]) >= pos:
                raise FormErr("bad compression pointer")
            return pos + 2
        if length > 63:
            raise FormErr("bad label length, or a pointer where none may be")  # RFC 1035 2.3.4, 4.1.4
        pos += 1 + length


def read_question(wire: bytes, pos: int = 12) -> tuple[bytes, bytes, int]:
    """(lower-cased wire name, type and class bytes, end) of the question entry at `pos`.
    No compression pointer can be in it (nothing precedes it to point at). Raises FormErr."""
    end = skip_name(wire, pos, pointers=False)
    if end + 4 > len(wire):
        raise FormErr("question cut short")
    return wire[pos:end].lower(), wire[end : end + 4], end + 4


def _read_additional(wire: bytes, pos: int, ancount: int, nscount: int, arcount: int) -> Edns | None:
    """Skip answer/authority records (IXFR carries an SOA) and find at most one OPT."""
    n = len(wire)
    edns = None
    for index in range(ancount + nscount + arcount):
        owner = pos
        pos = skip_name(wire, pos)
        if pos + 10 > n:
            raise FormErr("record cut short", edns=edns)
        rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", wire, pos)
        start, pos = pos + 10, pos + 10 + rdlen
        if pos > n:
            raise FormErr("rdata runs past the end", edns=edns)
        if rtype == OPT:
            this = Edns(max(rclass, 512), (ttl >> 16) & 0xFF, bool(ttl & DO))
            # RFC 6891 6.1.1: one OPT, in the additional section, owned by the root.
            if index < ancount + nscount or edns is not None or wire[owner] != 0:
                raise FormErr("misplaced or repeated OPT", edns=edns or this)
            if not _options_fit(wire, start, pos):
                raise FormErr("EDNS option runs past the OPT's data", edns=this)  # RFC 6891 7: FORMERR
            edns = this
    if pos != n:
        raise FormErr("trailing bytes", edns=edns)
    return edns


def _options_fit(wire: bytes, pos: int, end: int) -> bool:
    """Whether the OPT's data from `pos` to `end` is whole options: code, length, that many
    octets (RFC 6891 6.1.2), as miekg/dns must unpack it for CoreDNS to answer at all."""
    while pos < end:
        if pos + 4 > end:
            return False
        pos += 4 + (wire[pos + 2] << 8 | wire[pos + 3])
    return pos == end


@dataclass(frozen=True, slots=True)
class Body:
    """A reply body (sections after the question) and what the header needs."""

    rcode: int
    body: bytes
    counts: tuple[int, int, int]  # answer, authority, additional
    ends: tuple[int, ...]  # body length after each record, for truncation at RR boundaries
    aa: bool = True
    tc: bool = False
    zone_spelling: bytes | None = None  # set when the body holds the zone spelled as asked
    plugin: str = "kubernetes"  # the answer source that made it, for the metrics' plugin label


class _Encoder:
    """Writes names with compression, keyed case-sensitively on (in_zone, labels)."""

    def __init__(self, base: int, zone_ptr: int, zone_wire: bytes) -> None:
        self.buf = bytearray()
        self.base = base  # offset of the body inside the final message
        self.zone_ptr = zone_ptr
        self.zone_wire = zone_wire  # the zone as spelled in the question, with root label
        self.ptrs: dict[tuple[bool, tuple[str, ...]], int] = {}
        self.literal_zone = False

    def name(self, name: Name | None, compress: bool = True) -> None:
        buf = self.buf
        if name is None:
            buf += b"\xc0\x0c"  # the question name, spelled as asked (S1)
            return
        labels = name.labels
        for i in range(len(labels)):
            key = (name.in_zone, labels[i:])
            if compress and key in self.ptrs:
                buf += struct.pack("!H", 0xC000 | self.ptrs[key])
                return
            here = self.base + len(buf)
            if here < 0x3FFF:
                self.ptrs.setdefault(key, here)
            raw = labels[i].encode("latin-1")
            buf.append(len(raw))
            buf += raw
        if not name.in_zone:
            buf.append(0)
        elif compress:
            buf += struct.pack("!H", 0xC000 | self.zone_ptr)
        else:
            buf += self.zone_wire
            self.literal_zone = True

    def rr(self, rr: RR) -> None:
        self.name(rr.owner)
        buf = self.buf
        buf += struct.pack("!HHI", rr.rtype, IN, rr.ttl)
        at = len(buf)
        buf += b"\0\0"
        self.rdata(rr.rtype, rr.rdata)
        struct.pack_into("!H", buf, at, len(buf) - at - 2)

    def rdata(self, rtype: int, data: object) -> None:
        buf = self.buf
        if rtype in (A, AAAA) or isinstance(data, bytes):
            buf += data  # type: ignore[operator]
        elif rtype in (CNAME, PTR, NS):
            self.name(data)  # type: ignore[arg-type]
        elif rtype == SRV:
            prio, weight, port, target = data  # type: ignore[misc]
            buf += struct.pack("!HHH", prio, weight, port)
            self.name(target, compress=False)  # RFC 2782: no compression in the SRV target
        elif rtype == TXT:
            for s in data:  # type: ignore[attr-defined]
                buf.append(len(s))
                buf += s
        elif rtype == SOA:
            soa: SOAData = data  # type: ignore[assignment]
            self.name(soa.mname)
            self.name(soa.rname)
            buf += struct.pack("!IIIII", soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
        else:
            raise ValueError(f"cannot encode rdata of type {rtype}")


def encode(rcode: int, sections: tuple[tuple[RR, ...], ...], wire: bytes, query: Query, zone_labels: int, aa: bool = True, tc: bool = False,
           plugin: str = "kubernetes") -> Body:
    """Encode an answer for this query's question; reusable for any spelling of it."""
    qname_end = query.qname_end
    # Where the zone starts inside the question name: skip the labels before it.
    pos = 12
    for _ in range(len(query.labels) - zone_labels):
        pos += 1 + wire[pos]
    enc = _Encoder(qname_end + 4, pos, wire[pos:qname_end])
    ends = []
    for section in sections:
        for rr in section:
            enc.rr(rr)
            ends.append(len(enc.buf))
    counts = (len(sections[0]), len(sections[1]), len(sections[2]))
    return Body(rcode, bytes(enc.buf), counts, tuple(ends), aa, tc, wire[pos:qname_end] if enc.literal_zone else None, plugin)


def opt_record(edns: Edns, ext_rcode: int = 0) -> bytes:
    """Our OPT: version 0, our UDP size, the DO bit echoed (RFC 3225 3), no options."""
    ttl = (ext_rcode << 24) | (DO if edns.do else 0)
    return b"\0" + struct.pack("!HHIH", OPT, OUR_UDP_SIZE, ttl, 0)


def udp_limit(edns: Edns | None) -> int:
    """512 without EDNS, else the client's buffer, never below 512 (RFC 6891 6.2.5, C13)."""
    return 512 if edns is None else max(512, min(edns.udp_size, MAX_UDP_SIZE))


def assemble(reply: Body, wire: bytes, query: Query, limit: int) -> bytes:
    """Header + the query's own question + body (+ OPT), truncated at an RR boundary to `limit`."""
    question = wire[12 : query.qname_end + 4]
    opt = opt_record(query.edns, reply.rcode >> 4) if query.edns else b""
    body, (an, ns, ar), tc = reply.body, reply.counts, reply.tc
    room = limit - 12 - len(question) - len(opt)
    if len(body) > room:
        # RFC 2181 9 / miekg Truncate: keep whole records that fit, set TC.
        keep = 0
        while keep < len(reply.ends) and reply.ends[keep] <= room:
            keep += 1
        body = body[: reply.ends[keep - 1]] if keep else b""
        an, ns, ar = min(an, keep), min(ns, max(0, keep - an)), min(ar, max(0, keep - an - ns))
        tc = True
    flags = QR | (AA if reply.aa else 0) | (TC if tc else 0) | (reply.rcode & RCODE_MASK)
    flags |= (wire[2] << 8 | wire[3]) & (RD | CD)  # RD and CD are copied (RFC 1035 4.1.1, RFC 4035 3.1.6)
    return wire[:2] + struct.pack("!HHHHH", flags, 1, an, ns, ar + (1 if opt else 0)) + question + body + opt


def error_reply(wire: bytes, rcode: int, question_end: int = 0, edns: Edns | None = None) -> bytes:
    """A bare reply (FORMERR, NOTIMP, REFUSED, SERVFAIL): ID, opcode, RD/CD, the question if readable."""
    flags = QR | ((wire[2] << 8 | wire[3]) & (OPCODE_MASK | RD | CD)) | (rcode & RCODE_MASK)
    question = wire[12:question_end] if question_end > 12 else b""
    opt = opt_record(edns, rcode >> 4) if edns else b""
    return wire[:2] + struct.pack("!HHHHH", flags, 1 if question else 0, 0, 0, 1 if opt else 0) + question + opt


def truncate_forwarded(reply: bytes, wire: bytes, query: Query, limit: int) -> bytes:
    """An upstream reply too big for the client's UDP buffer: TC and the question only."""
    if len(reply) <= limit:
        return reply
    flags = (reply[2] << 8 | reply[3]) | TC
    question = wire[12 : query.qname_end + 4]
    opt = opt_record(query.edns) if query.edns else b""
    return wire[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 1 if opt else 0) + question + opt
