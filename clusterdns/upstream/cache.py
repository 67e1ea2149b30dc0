"""A cache of forwarded answers, as CoreDNS's cache plugin (`cache 30` in kubeadm's Corefile).

Only the Forwarder (forwarder.py) uses it, so only names outside our zones are ever cached: answers from the
manifests are never stale (kubeadm's Corefile disables the cache for cluster.local for that
reason, coredns/coredns#2501).

What is cached, and for how long (`limit` is --cache SECONDS):
- success (NOERROR with answer records): the smallest TTL in the reply (every section, OPT
  aside), capped at min(limit, 3600) as CoreDNS caps success;
- denial (NXDOMAIN, or NOERROR without answer records = NODATA): RFC 2308 5, the smaller of
  the SOA's own TTL and its MINIMUM field (and of any CNAME TTLs in the answer), capped at
  min(limit, 1800) as CoreDNS caps denial; not cached without an SOA (RFC 2308 5: SHOULD NOT);
- SERVFAIL from an upstream: --cache-servfail seconds (CoreDNS's `servfail`, default 5). Our
  own "no upstream answered" SERVFAIL never reaches the cache (CoreDNS does not cache it either);
- never: truncated (TC) replies, replies without exactly one question, REFUSED, FORMERR,
  NOTIMP and every other RCODE, extended RCODEs, and replies whose TTL works out at 0.
No minimum TTL: CoreDNS raises short TTLs to 5 s (`minttl`), we keep the authority's (RFC
1035 3.2.1: TTL 0 is "do not cache"; Consul and other service discovery rely on short TTLs).

Entries are keyed by the lower-cased question name, QTYPE, QCLASS and the flags that change
the answer: RD, CD, the DO bit and whether the query had an OPT record at all (the upstream's
reply mirrors it, and a client that sent none must get none, RFC 6891 7).

Served answers count down: every TTL in the answer, authority and additional sections (OPT
aside) becomes min(TTL, entry lifetime) - whole seconds since it was stored. An entry expires
when its lifetime has passed, so a served TTL is never below 1. The reply that fills the cache is
served the same way (age 0), as CoreDNS does ("avoid a jarring TTL experience"). Each hit gets
the client's ID and spelling of the name (the answers' compression pointers follow it), and
AA set; AD is cleared for a client that set neither DO nor AD (render()).

Per-client EDNS options (COOKIE, Client Subnet, Padding) are dropped from the cached reply's
OPT record (they were the first client's); others (Extended DNS Errors) are kept.

Answers and denials are kept apart, as CoreDNS's two caches, each bounded (--cache-size,
--cache-denial-size: 9984) by evicting the least recently used. A denial is looked up first,
except a SERVFAIL, which never hides a live answer (plugin/cache/handler.go getIfNotStale).

With --serve-stale an entry stays usable that long after it expired: find() hands it back
marked stale and the forwarder decides. --cache-keepttl serves the TTLs as stored.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from clusterdns.codes import AA, AD, CD, DO, NOERROR, NXDOMAIN, OPT, RD, SERVFAIL, SOA, TC, rcode_of
from clusterdns.upstream.message import Malformed, find_opt, records, strip_opt_options
from clusterdns.wire import FormErr, Query, read_question

SUCCESS = "success"
DENIAL = "denial"

SUCCESS_CAP = 3600  # CoreDNS cache: max TTL for success
DENIAL_CAP = 1800  # CoreDNS cache: max TTL for denial

_TC = TC >> 8  # in byte 2
_RD = RD >> 8  # in byte 2
_CD = CD  # in byte 3
_KEY_DO = 0x200  # in a key's flag bits

CacheKey = tuple[bytes, bytes, int]  # (lower-cased wire qname, qtype+qclass, flag bits)


def under(wire_name: bytes, zones: tuple[tuple[bytes, ...], ...]) -> bool:
    """Is a lower-cased wire name at or under one of `zones` (label tuples, () the root)?"""
    labels, pos = [], 0
    while pos < len(wire_name) and wire_name[pos]:
        labels.append(wire_name[pos + 1 : pos + 1 + wire_name[pos]])
        pos += 1 + wire_name[pos]
    return any(tuple(labels[len(labels) - len(z) :]) == z for z in zones if len(z) <= len(labels))


def zone_labels(zones: tuple[str, ...]) -> tuple[tuple[bytes, ...], ...]:
    return tuple(() if z == "." else tuple(label.encode() for label in z.split(".")) for z in zones)


def _keeps_ad(do: bool, query: bytes) -> bool:
    """Whether a reply to `query` (its DO bit `do`) keeps AD: only for a client that set DO or AD."""
    return do or bool(query[3] & AD)


def _flags(query: bytes, has_opt: bool, do: bool) -> int:
    """The key's flag bits: the query's RD and CD, whether it had an OPT record, its DO bit."""
    return (query[2] & _RD) | (query[3] & _CD) | (0x100 if has_opt else 0) | (_KEY_DO if do else 0)


@dataclass(slots=True, eq=False)
class CachedReply:
    """One stored reply, and what prefetch and serve_stale keep about it."""

    wire: bytes  # the reply as stored (per-client OPT options removed)
    ttls: tuple[tuple[int, int], ...]  # (offset of a TTL field, its value capped at `lifetime`)
    qname_end: int  # end of the question name (offset 12 is its start)
    stored: float
    lifetime: float  # seconds
    kind: str  # SUCCESS or DENIAL
    servfail: bool
    query: bytes  # the query that filled it, to ask again for a refresh
    hits: int = 0  # hits within the prefetch window (CoreDNS cache/freq)
    last_hit: float = float("-inf")
    refreshing: bool = False  # one refresh at a time (item.go beginRefresh)
    retry_after: float = 0.0  # --serve-stale-recheck: no refresh before this
    do: bool = False  # the DO bit of its key, so of every query it answers


class Cache:
    """The forwarded replies, in two LRU stores. Counters are plain attributes, for the metrics:

    - hits[kind], misses: lookups that found / did not find a usable entry (stale ones
      included) (coredns_cache_hits_total{type}, coredns_cache_misses_total);
    - requests: lookups (coredns_cache_requests_total);
    - evictions[kind]: entries pushed out by the size bounds (coredns_cache_evictions_total);
    - entries[kind]: entries held now (coredns_cache_entries{type});
    - prefetches, served_stale (coredns_cache_prefetch_total, coredns_cache_served_stale_total).
    kind is "success" or "denial" (NXDOMAIN, NODATA and SERVFAIL, as CoreDNS counts them).
    """

    def __init__(self, limit: int = 30, size: int = 9984, clock: Callable[[], float] = time.monotonic, *, denial_size: int = 9984,
                 denial_ttl: int = 0, servfail: float = 5.0, keepttl: bool = False, stale: float = 0.0,
                 disable_success: tuple[str, ...] = (), disable_denial: tuple[str, ...] = ()) -> None:
        if limit < 0:
            raise ValueError("cache limit must be >= 0")
        if size < 1 or denial_size < 1:
            raise ValueError("cache size must be >= 1")
        self.limit = limit
        self.sizes = {SUCCESS: size, DENIAL: denial_size}
        self.caps = {SUCCESS: min(limit, SUCCESS_CAP), DENIAL: denial_ttl or min(limit, DENIAL_CAP)}
        self.servfail = servfail
        self.keepttl = keepttl
        self.stale = stale  # --serve-stale seconds; 0: an expired entry is gone
        self.clock = clock
        self.disabled = {SUCCESS: zone_labels(disable_success), DENIAL: zone_labels(disable_denial)}  # `disable success|denial ZONES`
        self._stores: dict[str, OrderedDict[CacheKey, CachedReply]] = {SUCCESS: OrderedDict(), DENIAL: OrderedDict()}
        self.hits, self.evictions, self.entries = {SUCCESS: 0, DENIAL: 0}, {SUCCESS: 0, DENIAL: 0}, {SUCCESS: 0, DENIAL: 0}
        self.misses = self.requests = self.prefetches = self.served_stale = 0
        # Requests and hits the listeners answered from their copies of fresh entries
        # (serve/timed.py, in C too): [requests, success hits, denial hits].
        self.fast = [0, 0, 0]

    def __len__(self) -> int:
        return sum(map(len, self._stores.values()))

    @staticmethod
    def key(query: bytes) -> CacheKey | None:
        """The cache key of a client query, or None if it cannot be cached (not one question, unreadable)."""
        try:
            if len(query) < 12 or query[2] & 0xF8 or struct.unpack_from("!H", query, 4)[0] != 1:
                return None  # a response, another opcode, or not exactly one question
            name, type_class, end = read_question(query)
            opt_ttl = find_opt(query, end)
        except (Malformed, FormErr):
            return None
        return name, type_class, _flags(query, opt_ttl is not None, bool(opt_ttl and opt_ttl & DO))

    @staticmethod
    def key_of(wire: bytes, query: Query) -> CacheKey:
        """Cache.key(wire) for a query parse_query() has read: the same key without walking it again."""
        return query.key[:-4], query.key[-4:], _flags(wire, query.edns is not None, bool(query.edns and query.edns.do))

    def find(self, key: CacheKey) -> tuple[CachedReply, float] | None:
        """The usable entry for `key` and its age in seconds (older than its lifetime: stale,
        within --serve-stale), counted as a hit; None (a miss) when there is none."""
        self.requests += 1
        now = self.clock()
        denial = self._usable(DENIAL, key, now)
        success = self._usable(SUCCESS, key, now)
        if denial is not None and denial[0].servfail and success is not None:
            denial = None  # a cached SERVFAIL never hides a usable answer (TestServfailDoesNotShadowPositiveCache)
        found = denial or success
        if found is None:
            self.misses += 1
            return None
        self.hits[found[0].kind] += 1
        return found

    def counted(self) -> tuple[int, dict[str, int]]:
        """Requests and hits by kind, the listeners' included (coredns_cache_requests_total, _hits_total)."""
        fast = self.fast
        return self.requests + fast[0], {SUCCESS: self.hits[SUCCESS] + fast[1], DENIAL: self.hits[DENIAL] + fast[2]}

    def entry(self, key: CacheKey) -> CachedReply | None:
        """The entry stored for `key` now, live or not (a denial first), without counting a lookup."""
        return self._stores[DENIAL].get(key) or self._stores[SUCCESS].get(key)

    def get(self, key: CacheKey, query: bytes) -> bytes | None:
        """The live (not stale) cached reply for `query`, rendered; None otherwise."""
        found = self.find(key)
        if found is None or found[1] >= found[0].lifetime:
            return None
        return self.render(found[0], query, found[1])

    def render(self, entry: CachedReply, query: bytes, age: float, ttl: int | None = None, hit: bool = True) -> bytes:
        """The entry with the client's ID and question spelling, TTLs `age` seconds older (or
        all `ttl`: a stale answer's). --cache-keepttl serves the stored TTLs. A hit is
        authoritative (item.go toMsg: 'some DNS clients discard the *entire* packet when it's
        non-authoritative'); AD stays only for a client that set DO or AD (RFC 6840 5.7-5.8)."""
        out = bytearray(entry.wire)
        out[0:2] = query[0:2]
        out[2] |= AA >> 8 if hit else 0
        out[3] &= 0xFF if _keeps_ad(entry.do, query) else ~AD & 0xFF
        out[12 : entry.qname_end] = query[12 : entry.qname_end]
        pack = struct.pack_into
        age = 0 if self.keepttl and ttl is None else int(age)
        for at, stored in entry.ttls:
            pack("!I", out, at, ttl if ttl is not None else max(stored - age, 0))
        return bytes(out)

    def put(self, key: CacheKey, query: bytes, reply: bytes) -> bytes:
        """Store `reply` (already carrying the client's ID) if it may be cached.

        Returns what to send to the client: the reply as a hit would serve it (TTLs capped at
        the entry's lifetime), or the reply unchanged when it is not cached.
        """
        try:
            entry = self._entry(reply, key, query)
        except (Malformed, FormErr, struct.error):
            return reply
        if entry is None or (self.disabled[entry.kind] and under(key[0], self.disabled[entry.kind])):
            # Not kept (cache.go set: nor under a disabled zone); AD as for a hit (cache.go WriteMsg).
            return reply if len(reply) < 12 or _keeps_ad(bool(key[2] & _KEY_DO), query) else reply[:3] + bytes([reply[3] & ~AD & 0xFF]) + reply[4:]
        store = self._stores[entry.kind]
        old = store.pop(key, None)
        if old is not None:
            self.entries[old.kind] -= 1
        if entry.kind == SUCCESS:
            self._drop(DENIAL, key)  # a fresh answer ends a cached denial (cache.go set, on refresh)
        store[key] = entry
        self.entries[entry.kind] += 1
        while len(store) > self.sizes[entry.kind]:
            _, evicted = store.popitem(last=False)
            self.entries[evicted.kind] -= 1
            self.evictions[evicted.kind] += 1
        return self.render(entry, query, 0, hit=False)

    def _usable(self, kind: str, key: CacheKey, now: float) -> tuple[CachedReply, float] | None:
        store = self._stores[kind]
        entry = store.get(key)
        if entry is None:
            return None
        age = now - entry.stored
        # A stale entry is usable while it has been expired for less than --serve-stale, in
        # whole seconds (handler.go getIfNotStale: -ttl < staleUpTo).
        if 0 <= age and (age < entry.lifetime or int(age - entry.lifetime) < self.stale):
            store.move_to_end(key)
            return entry, age
        if age >= entry.lifetime and not self.stale:
            self._drop(kind, key)
        return None

    def _drop(self, kind: str, key: CacheKey) -> None:
        if self._stores[kind].pop(key, None) is not None:
            self.entries[kind] -= 1

    def _entry(self, reply: bytes, key: CacheKey, query: bytes) -> CachedReply | None:
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
        found = list(records(reply, question_end, ancount + nscount + arcount))
        # Stripping rewrites only the OPT's rdata, the last record: the offsets above stay valid.
        reply = strip_opt_options(reply, found[-1] if found else None)
        ttls = [(ttl_at, ttl) for rtype, ttl_at, ttl, _, _ in found if rtype != OPT]
        if any(rtype == OPT and ttl >> 24 for rtype, _, ttl, _, _ in found):
            return None  # an extended RCODE (BADVERS, BADCOOKIE...): not an answer to keep
        lifetime = self._lifetime(reply, rcode, ancount, nscount, ttls, found)
        if lifetime is None or lifetime <= 0:
            return None
        kind = SUCCESS if rcode == NOERROR and ancount else DENIAL
        written = max(int(lifetime), 1) if rcode == SERVFAIL else lifetime
        capped = tuple((at, min(ttl, int(written))) for at, ttl in ttls)
        return CachedReply(reply, capped, question_end - 4, self.clock(), lifetime, kind, rcode == SERVFAIL, query, do=bool(key[2] & _KEY_DO))

    def _lifetime(self, reply: bytes, rcode: int, ancount: int, nscount: int, ttls: list[tuple[int, int]],
                  found: list[tuple[int, int, int, int, int]]) -> float | None:
        """How long the reply may be kept, by CoreDNS's rules; None: not at all."""
        if rcode == SERVFAIL:
            return self.servfail
        if rcode == NOERROR and ancount:
            return min([ttl for _, ttl in ttls] + [self.caps[SUCCESS]]) if ttls else None
        # NXDOMAIN or NODATA: RFC 2308 5, from the SOA in the authority section
        authority = found[ancount : ancount + nscount]
        soa = [(ttl, struct.unpack_from("!I", reply, end - 4)[0]) for rtype, _, ttl, start, end in authority if rtype == SOA and end - start >= 22]
        if not soa:
            return None
        answer_ttls = [ttl for _, _, ttl, _, _ in found[:ancount]]
        return min([min(soa[0])] + answer_ttls + [self.caps[DENIAL]])


__all__ = ["Cache", "CachedReply", "DENIAL", "SUCCESS"]
