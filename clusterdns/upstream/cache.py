"""A cache of forwarded answers, as CoreDNS's cache plugin (`cache 30` in kubeadm's Corefile).

Only the Forwarder (forwarder.py) uses it, so only names outside our zones are ever cached: answers from the
manifests are never stale (kubeadm's Corefile disables the cache for cluster.local for that
reason, coredns/coredns#2501).

What is cached, and for how long (`limit` is --cache SECONDS):
- success (NOERROR with answer records): the smallest TTL in the reply (every section, OPT
  aside), capped at min(limit, 3600) as CoreDNS caps success;
- denial (NXDOMAIN, or NOERROR without answer records = NODATA): RFC 2308 5, the smaller of
  the SOA's own TTL and its MINIMUM field (and of any CNAME TTLs in the answer), capped at
  min(limit, 1800) as CoreDNS caps denial. A denial without an SOA is not cached (RFC 2308 5:
  SHOULD NOT);
- SERVFAIL from an upstream: min(limit, 5) seconds, CoreDNS's `servfail` default. Our own
  "no upstream answered" SERVFAIL never reaches the cache (CoreDNS does not cache it either);
- never: truncated (TC) replies, replies without exactly one question, REFUSED, FORMERR,
  NOTIMP and every other RCODE, extended RCODEs, and replies whose TTL works out at 0.
There is no minimum TTL: CoreDNS raises short TTLs to 5 s (`minttl`), we keep what the
authority published (RFC 1035 3.2.1: TTL 0 means "do not cache"; Consul and other service
discovery systems rely on short TTLs).

Entries are keyed by the lower-cased question name, QTYPE, QCLASS and the flags that change
the answer: RD, CD, the DO bit and whether the query had an OPT record at all (the upstream's
reply mirrors it, and a client that sent none must get none, RFC 6891 7).

Served answers count down: every TTL in the answer, authority and additional sections (OPT
aside) becomes min(TTL, entry lifetime) - whole seconds since it was stored. An entry expires
when its lifetime has passed, so a served TTL is never below 1. The reply that fills the cache is
served the same way (age 0), so the first and later answers agree, as CoreDNS does ("avoid a
jarring TTL experience"). Each hit gets the client's ID and the client's spelling of the name
(the cached question's bytes are overwritten; the answers' compression pointers follow it).

Per-client EDNS options (COOKIE, Client Subnet, Padding) are dropped from the cached reply's
OPT record, since they belonged to the first client's exchange; other options (Extended DNS
Errors) are kept.

The size is bounded (--cache-size entries, CoreDNS's 9984); the least recently used entry is
evicted first. No prefetch.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from clusterdns.codes import CD, DO, NOERROR, NXDOMAIN, OPT, RD, SERVFAIL, SOA, TC, rcode_of
from clusterdns.wire import FormErr, Query, read_question, skip_name

SUCCESS = "success"
DENIAL = "denial"

SUCCESS_CAP = 3600  # CoreDNS cache: max TTL for success
DENIAL_CAP = 1800  # CoreDNS cache: max TTL for denial
SERVFAIL_TTL = 5  # CoreDNS cache: `servfail` default

_TC = TC >> 8  # in byte 2
_RD = RD >> 8  # in byte 2
_CD = CD  # in byte 3
_PER_CLIENT_OPTIONS = frozenset({8, 10, 12})  # Client Subnet (RFC 7871), COOKIE (RFC 7873), Padding (RFC 7830)

CacheKey = tuple[bytes, bytes, int]  # (lower-cased wire qname, qtype+qclass, flag bits)


def _flags(query: bytes, has_opt: bool, do: bool) -> int:
    """The key's flag bits: the query's RD and CD, whether it had an OPT record, its DO bit."""
    return (query[2] & _RD) | (query[3] & _CD) | (0x100 if has_opt else 0) | (0x200 if do else 0)


class Malformed(Exception):
    """A message we cannot walk; it is neither cached nor used as a key."""


@dataclass(frozen=True, slots=True)
class CachedReply:
    wire: bytes  # the reply as stored (per-client OPT options removed)
    ttls: tuple[tuple[int, int], ...]  # (offset of a TTL field, its value capped at `lifetime`)
    qname_end: int  # end of the question name (offset 12 is its start)
    stored: float
    lifetime: int  # seconds
    kind: str  # SUCCESS or DENIAL


class Cache:
    """LRU cache of forwarded replies. Counters are plain attributes, for the metrics:

    - hits[kind], misses: lookups that found / did not find a live entry
      (coredns_cache_hits_total{type}, coredns_cache_misses_total);
    - requests: lookups (coredns_cache_requests_total);
    - evictions[kind]: entries pushed out by --cache-size (coredns_cache_evictions_total);
    - entries[kind]: entries held now (coredns_cache_entries{type}).
    kind is "success" or "denial" (NXDOMAIN, NODATA and SERVFAIL, as CoreDNS counts them).
    """

    def __init__(self, limit: int = 30, size: int = 9984, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 0:
            raise ValueError("cache limit must be >= 0")
        if size < 1:
            raise ValueError("cache size must be >= 1")
        self.limit = limit
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[CacheKey, CachedReply] = OrderedDict()
        self.hits = {SUCCESS: 0, DENIAL: 0}
        self.misses = 0
        self.requests = 0
        self.evictions = {SUCCESS: 0, DENIAL: 0}
        self.entries = {SUCCESS: 0, DENIAL: 0}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(query: bytes) -> CacheKey | None:
        """The cache key of a client query, or None if it cannot be cached (not one question, unreadable)."""
        try:
            if len(query) < 12 or query[2] & 0xF8 or struct.unpack_from("!H", query, 4)[0] != 1:
                return None  # a response, another opcode, or not exactly one question
            name, type_class, end = read_question(query)
            opt_ttl = _find_opt(query, end)
        except (Malformed, FormErr):
            return None
        return name, type_class, _flags(query, opt_ttl is not None, bool(opt_ttl and opt_ttl & DO))

    @staticmethod
    def key_of(wire: bytes, query: Query) -> CacheKey:
        """Cache.key(wire) for a query parse_query() has read: the same key without walking it again."""
        return query.key[:-4], query.key[-4:], _flags(wire, query.edns is not None, bool(query.edns and query.edns.do))

    def get(self, key: CacheKey, query: bytes) -> bytes | None:
        """The cached reply for `query` (its ID and spelling, TTLs counted down), or None."""
        self.requests += 1
        entry = self._entries.get(key)
        if entry is not None:
            age = self.clock() - entry.stored
            if 0 <= age < entry.lifetime:
                self._entries.move_to_end(key)
                self.hits[entry.kind] += 1
                return _render(entry, query, int(age))
            self._remove(key, entry)
        self.misses += 1
        return None

    def put(self, key: CacheKey, query: bytes, reply: bytes) -> bytes:
        """Store `reply` (already carrying the client's ID) if it may be cached.

        Returns what to send to the client: the reply as a hit would serve it (TTLs capped at
        the entry's lifetime), or the reply unchanged when it is not cached.
        """
        try:
            entry = self._entry(reply, key)
        except (Malformed, FormErr, struct.error):
            return reply
        if entry is None:
            return reply
        old = self._entries.pop(key, None)
        if old is not None:
            self.entries[old.kind] -= 1
        self._entries[key] = entry
        self.entries[entry.kind] += 1
        while len(self._entries) > self.size:
            _, evicted = self._entries.popitem(last=False)
            self.entries[evicted.kind] -= 1
            self.evictions[evicted.kind] += 1
        return _render(entry, query, 0)

    def _remove(self, key: CacheKey, entry: CachedReply) -> None:
        del self._entries[key]
        self.entries[entry.kind] -= 1

    def _entry(self, reply: bytes, key: CacheKey) -> CachedReply | None:
        if self.limit <= 0 or len(reply) < 12 or reply[2] & _TC:
            return None
        rcode = rcode_of(reply)
        if rcode not in (NOERROR, NXDOMAIN, SERVFAIL):
            return None
        qdcount, ancount, nscount, arcount = struct.unpack_from("!HHHH", reply, 4)
        if qdcount != 1:
            return None  # no question (some servers' error replies), or several
        name, type_class, question_end = read_question(reply)
        if (name, type_class) != key[:2]:
            return None
        qname_end = question_end - 4
        records = list(_records(reply, question_end, ancount + nscount + arcount))
        # Stripping rewrites only the OPT's rdata, the last record: the offsets above stay valid.
        reply = _strip_opt_options(reply, records[-1] if records else None)
        ttls = [(ttl_at, ttl) for rtype, ttl_at, ttl, _, _ in records if rtype != OPT]
        for rtype, ttl_at, ttl, _, _ in records:
            if rtype == OPT and ttl >> 24:
                return None  # an extended RCODE (BADVERS, BADCOOKIE...): not an answer to keep
        if rcode == SERVFAIL:
            kind, lifetime = DENIAL, min(SERVFAIL_TTL, self.limit)
        elif rcode == NOERROR and ancount:
            if not ttls:
                return None
            kind, lifetime = SUCCESS, min([ttl for _, ttl in ttls] + [self.limit, SUCCESS_CAP])
        else:  # NXDOMAIN or NODATA: RFC 2308 5, from the SOA in the authority section
            authority = records[ancount : ancount + nscount]
            soa = [(ttl, struct.unpack_from("!I", reply, end - 4)[0])
                   for rtype, _, ttl, start, end in authority if rtype == SOA and end - start >= 22]
            if not soa:
                return None
            answer_ttls = [ttl for rtype, _, ttl, _, _ in records[:ancount]]
            kind, lifetime = DENIAL, min([min(soa[0])] + answer_ttls + [self.limit, DENIAL_CAP])
        if lifetime <= 0:
            return None
        capped = tuple((at, min(ttl, lifetime)) for at, ttl in ttls)
        return CachedReply(reply, capped, qname_end, self.clock(), lifetime, kind)


def _render(entry: CachedReply, query: bytes, age: int) -> bytes:
    """The entry with the client's ID and question spelling, TTLs `age` seconds older."""
    out = bytearray(entry.wire)
    out[0:2] = query[0:2]
    out[12 : entry.qname_end] = query[12 : entry.qname_end]
    pack = struct.pack_into
    for at, ttl in entry.ttls:
        pack("!I", out, at, max(ttl - age, 0))
    return bytes(out)


# --- walking a message -------------------------------------------------------------------------


def _records(wire: bytes, pos: int, count: int) -> Iterator[tuple[int, int, int, int, int]]:
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


def _find_opt(query: bytes, pos: int) -> int | None:
    """The OPT record's TTL field (extended RCODE, version, DO and Z) in a query, or None."""
    ancount, nscount, arcount = struct.unpack_from("!HHH", query, 6)
    if not arcount:
        return None
    for rtype, _, ttl, _, _ in _records(query, pos, ancount + nscount + arcount):
        if rtype == OPT:
            return ttl
    return None


def _strip_opt_options(reply: bytes, last: tuple[int, int, int, int, int] | None) -> bytes:
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


__all__ = ["Cache", "DENIAL", "SUCCESS"]
