"""Forwarded answers the listeners keep beside the fixed ones: a fresh cache entry's reply, with
its TTLs counted down at every reply as the cache counts them (plugin/cache/item.go toMsg:
the stored TTL less the entry's age), until the entry's lifetime ends.

An entry is (tail, cell, runs or None, ttls, born, end, counts, kind index): the reply less
its ID with the stored TTLs; its metrics cell; loadbalance's runs; the TTL fields as native
uint32 pairs (offset into the tail, stored TTL), none under --cache-keepttl; when the cache
stored it and when it stops being fresh (time.monotonic, CLOCK_MONOTONIC in C); and the
cache's `fast` counts, [requests, success hits, denial hits], which these replies add to.
The C extension answers them the same way (_udpbatch.c known_reply).
"""

from __future__ import annotations

import struct
from time import monotonic
from typing import Any

from clusterdns.serve.loadbalance import shuffled
from clusterdns.upstream.cache import SUCCESS, Cache, CachedReply

FIELDS = 8  # a timed entry's length; fixed entries have 2 or 3 fields
_PAIR = struct.Struct("=II")
_TTL = struct.Struct("!I")


def timed_entry(entry: CachedReply, cache: Cache, query: bytes, cell: Any, runs: bytes | None) -> tuple[Any, ...]:
    """What a listener keeps for `query` after the cache answered it fresh from `entry`."""
    tail = cache.render(entry, query, 0)[2:]
    ttls = b"" if cache.keepttl else b"".join(_PAIR.pack(at - 2, stored) for at, stored in entry.ttls)
    return (tail, cell, runs, ttls, entry.stored, entry.stored + entry.lifetime, cache.fast, 1 if entry.kind == SUCCESS else 2)


def timed_tail(known: tuple[Any, ...], now: float) -> bytes | None:
    """The reply less its ID at `now`, counted as a cache hit; None once the entry is not fresh
    (the handler then asks the cache, which serves it stale or asks again)."""
    tail, _, runs, ttls, born, end, counts, kind = known
    if not born <= now < end:
        return None
    age = int(now - born)
    out = bytearray(tail)
    for at, stored in _PAIR.iter_unpack(ttls):
        _TTL.pack_into(out, at, stored - age if stored > age else 0)
    counts[0] += 1
    counts[kind] += 1
    return shuffled(bytes(out), runs) if runs is not None else bytes(out)


def known_tail(known: tuple[Any, ...]) -> bytes | None:
    """The reply less its ID for what a listener keeps besides a fixed reply (2 fields, whose
    tail the listener reads itself): one shuffled per reply by loadbalance (3 fields), or a
    timed one (FIELDS), None once that is not fresh."""
    if len(known) == 3:
        return shuffled(known[0], known[2])
    return timed_tail(known, monotonic())

