"""Walking a forwarded message's bytes: its records, its OPT record, its per-client options."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from clusterdns.codes import DO, OPT
from clusterdns.wire import OUR_UDP_SIZE, read_question, skip_name

_PER_CLIENT_OPTIONS = frozenset({8, 10, 12})  # Client Subnet (RFC 7871), COOKIE (RFC 7873), Padding (RFC 7830)

Record = tuple[int, int, int, int, int]  # (type, offset of the TTL field, TTL, rdata start, rdata end)


class Malformed(Exception):
    """A message we cannot walk; it is neither cached nor used as a key."""


def records(wire: bytes, pos: int, count: int) -> Iterator[Record]:
    """(type, offset of the TTL field, TTL, rdata start, rdata end) for `count` records from `pos`."""
    for _ in range(count):
        pos = skip_name(wire, pos)
        if pos + 10 > len(wire):
            raise Malformed("truncated record")
        rtype, _, ttl, rdlength = struct.unpack_from("!HHIH", wire, pos)
        start = pos + 10
        end = start + rdlength
        if end > len(wire):
            raise Malformed("truncated rdata")
        yield rtype, pos + 4, ttl, start, end
        pos = end


def find_opt(query: bytes, pos: int) -> int | None:
    """The OPT record's TTL field (extended RCODE, version, DO and Z) in a query, or None."""
    ancount, nscount, arcount = struct.unpack_from("!HHH", query, 6)
    if not arcount:
        return None
    for rtype, _, ttl, _, _ in records(query, pos, ancount + nscount + arcount):
        if rtype == OPT:
            return ttl
    return None


def strip_opt_options(reply: bytes, last: Record | None) -> bytes:
    """The reply without per-client EDNS options, when the OPT record is its `last` record."""
    if last is None or last[0] != OPT or last[3] == last[4] or last[4] != len(reply):
        return reply
    start, end = last[3], last[4]
    kept = bytearray()
    at = start
    while at + 4 <= end:
        code, length = struct.unpack_from("!HH", reply, at)
        if code not in _PER_CLIENT_OPTIONS:
            kept += reply[at : at + 4 + length]
        at += 4 + length
    if len(kept) == end - start:
        return reply
    return reply[: start - 2] + struct.pack("!H", len(kept)) + bytes(kept)


def with_our_opt(reply: bytes, query: bytes) -> bytes:
    """The upstream's reply with the OPT record our client gets: one exactly when its query had
    one (RFC 6891 6.1.1, 7), advertising our UDP size (6.2.3) with the query's DO bit (RFC
    3225 3), as our own answers carry it; the upstream's options (Extended DNS Errors) stay.
    An upstream that answered an EDNS query without an OPT gets ours added; a reply we cannot
    walk goes on as it is."""
    try:
        wanted = find_opt(query, read_question(query)[2])
        ancount, nscount, arcount = struct.unpack_from("!HHH", reply, 6)
        found = list(records(reply, read_question(reply)[2], ancount + nscount + arcount))
    except Exception:  # noqa: BLE001 - a Malformed or FormErr message: not ours to mend
        return reply
    opt = next((r for r in found if r[0] == OPT), None)
    if wanted is None:
        if opt is None or opt[4] != len(reply):
            return reply
        # An OPT the query did not ask for (RFC 6891 7: MUST NOT): cut, when it is the last record.
        start = opt[1] - 5  # its owner (the root, one octet), TYPE and CLASS come before the TTL field
        return reply[:10] + struct.pack("!H", arcount - 1) + reply[12:start] if reply[start] == 0 else reply
    do = wanted & DO
    if opt is None:
        return reply[:10] + struct.pack("!H", arcount + 1) + reply[12:] + b"\0" + struct.pack("!HHIH", OPT, OUR_UDP_SIZE, do, 0)
    ttl_at = opt[1]
    out = bytearray(reply)
    struct.pack_into("!HI", out, ttl_at - 2, OUR_UDP_SIZE, (opt[2] & ~DO & 0xFFFFFFFF) | do)
    return bytes(out)
