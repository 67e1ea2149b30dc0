"""What a cache hit does besides answering: prefetch a popular answer before it expires, and
serve an expired one while the upstreams are silent (CoreDNS cache's `prefetch` and
`serve_stale`, plugin/cache/handler.go)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from clusterdns.codes import NOERROR, NXDOMAIN, TC, rcode_of
from clusterdns.config.settings import Config
from clusterdns.upstream.cache import Cache, CachedReply, CacheKey

_TC = TC >> 8
Ask = Callable[[bytes], Awaitable[bytes | None]]  # the upstreams' reply past the cache; None: no usable one


class Refresher:
    """Answers from the entries of one Forwarder's cache, refreshing them (through `ask`) when
    CoreDNS would.

    - prefetch (--cache-prefetch N): every live hit is counted in the entry's window
      (--cache-prefetch-window; a gap longer than it starts the count again, cache/freq);
      once it has N hits and at most --cache-prefetch-percent of its lifetime is left
      (rounded up to a whole second), it is asked again in the background, once at a time.
      The client gets the entry as it is; the new one keeps the hit count.
    - serve_stale (--serve-stale S): an entry expired less than S seconds ago is still
      found. In `immediate` mode it is answered at once, with TTL --serve-stale-ttl, and
      refreshed in the background; in `verify` mode the upstreams are asked first (for at
      most --serve-stale-verify-timeout when set) and the stale entry answers only if they
      give no NOERROR or NXDOMAIN. A refresh that fails leaves the entry as it is, and no
      other is tried for --serve-stale-recheck seconds (item.go beginRefresh/endRefresh).
    """

    def __init__(self, cache: Cache, ask: Ask, config: Config) -> None:
        self.cache = cache
        self.ask = ask
        self.prefetch = config.cache_prefetch
        self.window = config.cache_prefetch_window
        self.percent = config.cache_prefetch_percent
        self.verify = config.serve_stale_mode == "verify"
        self.stale_ttl = config.serve_stale_ttl
        self.recheck = config.serve_stale_recheck
        self.verify_timeout = config.serve_stale_verify_timeout
        self.tasks: set[asyncio.Task[bytes | None]] = set()

    async def answer(self, entry: CachedReply, key: CacheKey, query: bytes, age: float, tcp: bool) -> bytes | None:
        """The reply for `query` from `entry`, `age` seconds old (a stale one past its lifetime)."""
        cache = self.cache
        if age < entry.lifetime:
            return self.fresh(entry, key, query, age)
        if self._may_refresh(entry):
            if self.verify:
                fresh = await self._verified(entry, key, query)
                if fresh is not None:
                    return fresh
            else:
                self._background(entry, key, query, stale=True)
        cache.served_stale += 1
        return cache.render(entry, query, age, ttl=self.stale_ttl)

    def fresh(self, entry: CachedReply, key: CacheKey, query: bytes, age: float) -> bytes:
        """The reply from an entry within its lifetime: no waiting, so the handler serves it
        without the event loop; a popular one is refreshed in the background (prefetch)."""
        if self.prefetch and self._popular(entry, age):
            self._background(entry, key, query, stale=False)
        return self.cache.render(entry, query, age)

    async def close(self) -> None:
        tasks = [t for t in self.tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _popular(self, entry: CachedReply, age: float) -> bool:
        """Count this hit (cache/freq/freq.go Update) and say whether it is time to prefetch."""
        now = self.cache.clock()
        entry.hits = 1 if entry.last_hit < now - self.window else entry.hits + 1
        entry.last_hit = now
        left = entry.lifetime - int(age)
        threshold = math.ceil(self.percent / 100 * entry.lifetime)
        return entry.hits >= self.prefetch and left <= threshold and not entry.refreshing

    def _may_refresh(self, entry: CachedReply) -> bool:
        return not entry.refreshing and self.cache.clock() >= entry.retry_after

    async def _verified(self, entry: CachedReply, key: CacheKey, query: bytes) -> bytes | None:
        """verify mode: the upstreams' answer if it comes (within the verify timeout), else None."""
        task = self._background(entry, key, query, stale=True)
        if not self.verify_timeout:
            return await asyncio.shield(task)
        done, _ = await asyncio.wait({task}, timeout=self.verify_timeout)
        return task.result() if done else None  # late: it still updates the cache when it comes

    def _background(self, entry: CachedReply, key: CacheKey, query: bytes, stale: bool) -> asyncio.Task[bytes | None]:
        entry.refreshing = True
        self.cache.prefetches += 1  # coredns_cache_prefetch_total counts stale refreshes too
        task = asyncio.get_running_loop().create_task(self._refresh(entry, key, query, stale))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _refresh(self, entry: CachedReply, key: CacheKey, query: bytes, stale: bool) -> bytes | None:
        """Ask again; store what may be stored. Returns the reply as served, or None (refused)."""
        try:
            reply = await self.ask(query)
        finally:
            entry.refreshing = False
        cache = self.cache
        # serve_stale takes only a usable answer: NOERROR or NXDOMAIN, whole (verifyStaleResponseWriter).
        if reply is None or reply[2] & _TC or (stale and rcode_of(reply) not in (NOERROR, NXDOMAIN)):
            entry.retry_after = cache.clock() + self.recheck
            return None
        served = cache.put(key, query, reply)
        fresh = cache.entry(key)
        if fresh is not None and fresh is not entry:
            fresh.hits, fresh.last_hit = entry.hits, entry.last_hit  # popularity carries over (handler.go doPrefetch)
        return served
