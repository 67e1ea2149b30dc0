"""CoreDNS's `loadbalance round_robin`: A, AAAA and MX records leave in a fresh random order.

CoreDNS (plugin/loadbalance/loadbalance.go) wraps the reply writer: every NOERROR reply
that is not a zone transfer has each section shuffled, address records (A and AAAA
together) among themselves and MX among themselves (a Fisher-Yates permutation per reply,
roundRobinShuffle), whatever plugin wrote it, cached replies included.

Here the shuffle works on the reply's bytes, so it costs no parsing per reply: `runs()`
walks a reply once and finds, per section, the runs of consecutive A/AAAA records and of
consecutive MX records that may be permuted; `shuffled()` permutes them. A listener keeps
the runs beside a reply it caches, and the C extension applies them to every repeat
(_udpbatch.c), so repeated answers stay on the fast path.

A run is only permuted when moving its records cannot break name compression (RFC 1035
4.1.4): no compression pointer in the message may point into it. Our own replies always
qualify (their address owners are pointers to names written before them). CoreDNS also
moves the other records of a section ahead of the addresses (cname + rest + address +
mx); our encoder already writes sections in that order, and a forwarded reply keeps its
records where the upstream put them, with each run shuffled in place.
"""

from __future__ import annotations

import random
import struct
from array import array

from clusterdns.codes import AAAA, AXFR, CNAME, IXFR, MX, NOERROR, NS, PTR, SOA, SRV, A, rcode_of

_ADDRESS, _MX = 1, 2
_KIND = {A: _ADDRESS, AAAA: _ADDRESS, MX: _MX}
# Types whose rdata holds names that may be compressed (RFC 3597 4: only the RFC 1035 types;
# SRV targets are compressed by some servers in practice), and where the names start.
_NAME_RDATA = {CNAME: 0, NS: 0, PTR: 0, 39: 0, MX: 2, SRV: 6, SOA: 0}  # 39: DNAME


class Unreadable(Exception):
    """A reply this module cannot walk: it is sent as it is."""


def runs(reply: bytes) -> bytes | None:
    """The permutable runs of `reply`, packed for shuffled() (offsets from byte 2, after the
    ID), or None when nothing in it is shuffled (not NOERROR, a transfer, a single address)."""
    if len(reply) < 12 or rcode_of(reply) != NOERROR:
        return None
    try:
        found, targets = _walk(reply)
    except (Unreadable, IndexError, struct.error):
        return None
    packed = array("H")
    for bounds in found:
        start, end = bounds[0], bounds[-1]
        if any(start <= t < end for t in targets):
            continue  # a name inside the run is pointed at: moving it would break the message
        packed.append(len(bounds) - 1)
        packed.extend(b - 2 for b in bounds)
    return packed.tobytes() if packed else None


def shuffled(tail: bytes, spec: bytes, rng: random.Random | None = None) -> bytes:
    """`tail` (a reply less its ID) with each run of `spec` permuted (Fisher-Yates)."""
    offsets = array("H")
    offsets.frombytes(spec)
    out = bytearray(tail)
    shuffle = (rng or random).shuffle
    at = 0
    while at < len(offsets):
        count = offsets[at]
        bounds = offsets[at + 1 : at + count + 2]
        items = [tail[bounds[i] : bounds[i + 1]] for i in range(count)]
        shuffle(items)
        out[bounds[0] : bounds[-1]] = b"".join(items)
        at += count + 2
    return bytes(out)


def balanced(reply: bytes) -> bytes:
    """`reply` shuffled, for a reply sent once (not kept by a listener)."""
    spec = runs(reply)
    return reply if spec is None else reply[:2] + shuffled(reply[2:], spec)


def _walk(reply: bytes) -> tuple[list[list[int]], set[int]]:
    """(record boundaries of each candidate run, every compression pointer's target)."""
    qdcount, an, ns, ar = struct.unpack_from("!HHHH", reply, 4)
    targets: set[int] = set()
    pos = 12
    for _ in range(qdcount):
        pos = _name(reply, pos, targets)
        qtype = struct.unpack_from("!H", reply, pos)[0]
        if qtype in (AXFR, IXFR):
            raise Unreadable("a zone transfer keeps its order (loadbalance.go)")
        pos += 4
    found: list[list[int]] = []
    for count in (an, ns, ar):
        kind, bounds = 0, [pos]
        for _ in range(count):
            start = pos
            pos = _name(reply, pos, targets)
            rtype, rdlength = struct.unpack_from("!H", reply, pos)[0], struct.unpack_from("!H", reply, pos + 8)[0]
            rdata = pos + 10
            pos = rdata + rdlength
            if pos > len(reply):
                raise Unreadable("record runs past the end")
            if rtype in _NAME_RDATA:
                _rdata_names(reply, rtype, rdata, pos, targets)
            this = _KIND.get(rtype, 0)
            if this != kind:
                _close(found, kind, bounds)
                kind, bounds = this, [start]
            bounds.append(pos)
        _close(found, kind, bounds)
    return found, targets


def _close(found: list[list[int]], kind: int, bounds: list[int]) -> None:
    if kind and len(bounds) > 2:
        found.append(bounds)


def _rdata_names(reply: bytes, rtype: int, start: int, end: int, targets: set[int]) -> None:
    at = _name(reply, start + _NAME_RDATA[rtype], targets)
    if rtype == SOA and at < end:
        _name(reply, at, targets)  # RNAME follows MNAME


def _name(reply: bytes, pos: int, targets: set[int]) -> int:
    """Step over a name, noting where its compression pointer (if any) points."""
    while True:
        length = reply[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            target = (length & 0x3F) << 8 | reply[pos + 1]
            if target >= pos:
                raise Unreadable("forward compression pointer")
            targets.add(target)
            return pos + 2
        if length > 63:
            raise Unreadable("bad label length")
        pos += 1 + length
