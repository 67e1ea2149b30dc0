"""One group of upstreams (the default `forward .`, or a stub domain's): CoreDNS forward's policy,
transport and except, max_concurrent, one deadline per query, and the cache in front of it
with prefetch and serve_stale (cache.py, refresh.py)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.message

from clusterdns.config.addresses import Address
from clusterdns.config.settings import Config
from clusterdns.upstream.cache import Cache, CachedReply, CacheKey, under, zone_labels
from clusterdns.upstream.exchange import in_order, lookup_query, parsed, question_of
from clusterdns.upstream.health import Health, UpstreamState
from clusterdns.upstream.message import with_our_opt
from clusterdns.upstream.pool import TCPPool
from clusterdns.upstream.refresh import Refresher
from clusterdns.wire import Query

DEADLINE_CAP = 4.0  # a forwarded query ends (SERVFAIL) before a stub's 5 s timeout


class Overloaded(Exception):
    """--max-concurrent forwarded queries are already outstanding: answer REFUSED at once."""


def query_deadline(upstream_timeout: float) -> float:
    """The one deadline of a forwarded query: min(4.0, 2 × --upstream-timeout + 0.5) seconds.

    With the default 2 s that is 4 s: two upstreams each get their full 2 s read timeout (a
    silent first one, not yet marked down, still leaves the second its chance), and SERVFAIL
    goes out before the 5 s after which glibc and musl stubs give up on a server. The extra
    0.5 s is for a TC -> TCP retry. With one upstream the answer (or SERVFAIL) comes after at
    most --upstream-timeout, plus a TCP retry if the reply was truncated.
    """
    return min(DEADLINE_CAP, 2 * upstream_timeout + 0.5)


@dataclass(frozen=True, slots=True)
class Looked:
    """What the cache said of a query: its key (None: not cached) and a stale entry, if any."""

    key: CacheKey | None
    found: tuple[CachedReply, float] | None


NOT_CACHED = Looked(None, None)


class Forwarder:
    """The upstreams of one group: what the handler forwards a name to.

    - order: --upstream-policy random (a fresh shuffle per query, CoreDNS's default),
      round_robin (the starting upstream advances by one per query) or sequential (as given);
      upstreams marked down (health.py) go after the healthy ones, and if every upstream is
      down they are all tried anyway, or none with --failfast-all-unhealthy-upstreams
      (SERVFAIL at once); both counted in `healthcheck_broken`;
    - transport: UDP, then TCP on TC; TCP for TCP clients; --force-tcp always TCP,
      --prefer-udp UDP first for TCP clients too (CoreDNS proxy/connect.go). TCP connections
      are kept for the next exchange (pool.py);
    - time: one deadline per query (query_deadline()), each attempt at most --upstream-timeout;
    - concurrency: past --max-concurrent outstanding upstream exchanges, forward() raises
      Overloaded at once (the handler answers REFUSED) and counts it in `rejects`
      (coredns_forward_max_concurrent_rejects_total). Cache hits are not outstanding;
    - cache: forwarded answers (cache.py), if --cache > 0; `cache` is None otherwise. Its
      prefetch and serve_stale refreshes are refresh.py's.
    Replies are checked as exchange.py checks them (fresh ID and port, same question,
    connected UDP socket so only the upstream's address is heard). close() stops the probes
    and refreshes.
    """

    def __init__(self, upstreams: Sequence[Address], config: Config | None = None, zone: str = ".") -> None:
        config = config if config is not None else Config()
        self.zone = zone  # "." for the default upstreams, else the stub domain
        self.upstreams = tuple(upstreams)
        self.policy = config.upstream_policy
        self.attempt_timeout = config.upstream_timeout
        self.timeout = query_deadline(config.upstream_timeout)
        self.max_concurrent = config.max_concurrent
        self.force_tcp, self.prefer_udp, self.failfast = config.force_tcp, config.prefer_udp, config.failfast
        self.health = Health(self.upstreams, config.max_fails, config.health_check, config.upstream_timeout)
        self.state: dict[Address, UpstreamState] = self.health.state
        self.pool = TCPPool(config.upstream_expire, config.max_idle_conns)
        self.cache: Cache | None = None
        if config.cache > 0:
            self.cache = Cache(config.cache, config.cache_size, denial_size=config.cache_denial_size, denial_ttl=config.cache_denial_ttl,
                               servfail=config.cache_servfail, keepttl=config.cache_keepttl, stale=config.serve_stale,
                               disable_success=config.cache_disable_success, disable_denial=config.cache_disable_denial)
        # `cache TTL ZONES`: only names under these go through the cache (handler.go: others pass by).
        self.cache_zones = None if "." in config.cache_zones else zone_labels(config.cache_zones)
        self.refresher = Refresher(self.cache, self._refresh, config) if self.cache is not None else None
        self.outstanding = 0  # upstream exchanges in progress
        self.rejects = 0  # queries refused for --max-concurrent
        self.healthcheck_broken = 0  # queries that found every upstream down (coredns_forward_healthcheck_broken_total)
        self._turn = 0  # round_robin's next first upstream
        self.fresh: CachedReply | None = None  # the entry of the last fresh hit from_cache() served
        # The listeners may keep fresh hits (serve/timed.py) when nothing needs to see each one:
        # no prefetch, which counts them, and the cache on the monotonic clock they count TTLs by.
        self.keepable = self.cache is not None and not config.cache_prefetch and self.cache.clock is time.monotonic

    def from_cache(self, query: bytes, parsed: Query | None = None) -> bytes | Looked:
        """A fresh cache hit's reply at once (the handler answers it without the event loop, as
        in-zone answers), or what the cache said, for forward() to go on from."""
        cache = self.cache
        if cache is None:
            return NOT_CACHED
        key = cache.key(query) if parsed is None else cache.key_of(query, parsed)
        if key is None or (self.cache_zones is not None and not under(key[0], self.cache_zones)):
            return NOT_CACHED
        found = cache.find(key)
        if found is not None and found[1] < found[0].lifetime:
            self.fresh = found[0]
            return self.refresher.fresh(found[0], key, query, found[1])  # type: ignore[union-attr]
        return Looked(key, found)

    async def forward(self, query: bytes, tcp: bool = False, parsed: Query | None = None, looked: Looked | None = None) -> bytes | None:
        """The reply to the client's raw query (with its ID), or None if no upstream answered in time.
        `parsed`: the handler's parse_query() of it, so the question is not read again; `looked`:
        what from_cache() said of it, so the cache is not asked twice.

        Raises Overloaded when --max-concurrent exchanges are outstanding.
        """
        if looked is None:
            step = self.from_cache(query, parsed)
            if step.__class__ is bytes:
                return step  # type: ignore[return-value]
            looked = step  # type: ignore[assignment]
        if looked.found is not None:  # a stale entry: serve_stale decides
            return await self.refresher.answer(looked.found[0], looked.key, query, looked.found[1], tcp)  # type: ignore[union-attr, arg-type]
        reply = await self.ask(query, tcp, parsed)
        if reply is not None and looked.key is not None:
            return self.cache.put(looked.key, query, reply)  # type: ignore[union-attr]
        return reply

    async def ask(self, query: bytes, tcp: bool = False, parsed: Query | None = None) -> bytes | None:
        """The upstreams' reply to `query`, past the cache; None if none answered in time."""
        if self.outstanding >= self.max_concurrent:
            self.rejects += 1
            raise Overloaded
        question = question_of(query) if parsed is None else ((parsed.key[:-4], parsed.key[-4:]),)
        order = self._order()
        if question is None or not order:
            return None
        over_tcp = self.force_tcp or (tcp and not self.prefer_udp)
        self.outstanding += 1
        try:
            deadline = asyncio.get_running_loop().time() + self.timeout
            reply = await in_order(query, question, order, deadline, self.attempt_timeout, over_tcp, self.health.report, self.pool)
            return None if reply is None else with_our_opt(reply, query)
        finally:
            self.outstanding -= 1

    async def _refresh(self, query: bytes) -> bytes | None:
        """A cache refresh's exchange: None rather than Overloaded."""
        try:
            return await self.ask(query)
        except Overloaded:
            return None

    async def lookup(self, name: str, rdtype: int) -> dns.message.Message | None:
        """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232), through the cache; None on failure."""
        try:
            return parsed(await self.forward(lookup_query(name, rdtype)))
        except Overloaded:
            return None

    async def close(self) -> None:
        """Stop the health probes and refreshes (those running on this loop are awaited)."""
        await self.health.close()
        if self.refresher is not None:
            await self.refresher.close()
        self.pool.close()

    def down(self) -> list[Address]:
        """The upstreams marked down now."""
        return [u for u, s in self.state.items() if s.down]

    def _order(self) -> Sequence[Address]:
        upstreams = self.upstreams
        if len(upstreams) > 1:
            if self.policy == "random":
                upstreams = tuple(random.sample(upstreams, len(upstreams)))
            elif self.policy == "round_robin":
                turn = self._turn % len(upstreams)
                self._turn = turn + 1
                upstreams = upstreams[turn:] + upstreams[:turn]
        state = self.state
        healthy = [u for u in upstreams if not state[u].down]
        if len(healthy) == len(upstreams):
            return upstreams
        if not healthy:
            self.healthcheck_broken += 1
            if self.failfast:
                return ()  # failfast_all_unhealthy_upstreams: SERVFAIL without asking (forward.go)
        return healthy + [u for u in upstreams if state[u].down]
