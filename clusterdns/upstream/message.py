"""Walking a forwarded message's bytes: its records, its OPT record, its per-client options."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from clusterdns.codes import OPT
from clusterdns.wire import skip_name

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
