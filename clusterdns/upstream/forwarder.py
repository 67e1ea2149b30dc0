"""The server's upstreams: CoreDNS forward's policy, upstream health and probes, max_concurrent,
one deadline per query, and the cache of forwarded answers (cache.py)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.message
import dns.rdatatype

from clusterdns.codes import rcode_of
from clusterdns.config.addresses import Address, hostport_text
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.upstream.cache import Cache
from clusterdns.upstream.exchange import Question, in_order, lookup_query, parsed, question_of, udp_exchange
from clusterdns.wire import Query

log = logging.getLogger("clusterdns")

PROBE_INTERVAL = 0.5  # CoreDNS forward: health check every 0.5 s while an upstream is down
PROBE_TIMEOUT = 1.0  # a health probe waits at most this (or --upstream-timeout if shorter)
DEADLINE_CAP = 4.0  # a forwarded query ends (SERVFAIL) before a stub's 5 s timeout
_NS_PROBE = dns.message.make_query(".", dns.rdatatype.NS).to_wire()  # `. IN NS`, RD set, as CoreDNS's health check
_NS_QUESTION: Question = question_of(_NS_PROBE) or ()


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


@dataclass(eq=False)
class UpstreamState:
    """One upstream's health and counters (for coredns_forward_* / coredns_proxy_* metrics)."""

    address: Address
    fails: int = 0  # consecutive attempts without a usable reply
    down: bool = False  # marked down after --max-fails fails; probed until it answers
    requests: int = 0  # attempts sent (coredns_forward_requests_total{to})
    responses: Counter[int] = field(default_factory=Counter)  # replies by RCODE (coredns_forward_responses_total{to,rcode})
    failures: int = 0  # attempts that timed out, were refused (ICMP) or got only garbage
    healthcheck_failures: int = 0  # failed `. NS` probes (coredns_proxy_healthcheck_failures_total{to})
    probe_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return hostport_text(*self.address)


class Forwarder:
    """The upstreams of one server: what the handler forwards through.

    - order: --upstream-policy random (a fresh shuffle per query, CoreDNS's default),
      round_robin (the starting upstream advances by one per query) or sequential (as given);
      upstreams marked down go after the healthy ones, and if every upstream is down they are
      all tried anyway (CoreDNS without failfast_all_unhealthy_upstreams; counted in
      `healthcheck_broken`);
    - health: --max-fails consecutive attempts without a usable reply (timeout, ICMP refused,
      garbage) mark an upstream down (0: never). A background task, owned by this object and
      started on the running loop, sends it `. IN NS` at once and then every 0.5 s until any
      valid reply comes back (a real query answered meanwhile also brings it back). REFUSED and
      SERVFAIL replies prove the upstream is alive: they reset the count (and the next upstream
      is tried for a better answer);
    - time: one deadline per query (query_deadline()), each attempt at most --upstream-timeout;
    - concurrency: past --max-concurrent outstanding upstream exchanges, forward() raises
      Overloaded at once (the handler answers REFUSED) and counts it in `rejects`
      (coredns_forward_max_concurrent_rejects_total). Cache hits are not outstanding;
    - cache: the answers of forwarded names (clusterdns.cache), if --cache > 0; `cache` is
      None otherwise.
    Replies are checked as forward() checks them (fresh ID and port, same question, connected
    UDP socket so only the upstream's address is heard). close() cancels the probe tasks.
    """

    def __init__(self, upstreams: Sequence[Address], config: Config | None = None) -> None:
        config = config if config is not None else Config()
        if not 0 < config.upstream_timeout <= 60:
            raise ConfigError(f"--upstream-timeout {config.upstream_timeout}: must be more than 0 and at most 60 seconds")
        if config.max_fails < 0:
            raise ConfigError(f"--max-fails {config.max_fails}: must be 0 (never mark down) or more")
        if config.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent {config.max_concurrent}: must be at least 1")
        if config.cache < 0:
            raise ConfigError(f"--cache {config.cache}: must be 0 (off) or more seconds")
        if config.cache_size < 1:
            raise ConfigError(f"--cache-size {config.cache_size}: must be at least 1")
        self.upstreams = tuple(upstreams)
        self.policy = config.upstream_policy
        self.attempt_timeout = config.upstream_timeout
        self.timeout = query_deadline(config.upstream_timeout)
        self.max_fails = config.max_fails
        self.max_concurrent = config.max_concurrent
        self.cache: Cache | None = Cache(config.cache, config.cache_size) if config.cache > 0 else None
        self.state = {u: UpstreamState(u) for u in self.upstreams}
        self.outstanding = 0  # upstream exchanges in progress
        self.rejects = 0  # queries refused for --max-concurrent
        self.healthcheck_broken = 0  # queries that found every upstream down (coredns_forward_healthcheck_broken_total)
        self._turn = 0  # round_robin's next first upstream
        self._closed = False

    async def forward(self, query: bytes, tcp: bool = False, parsed: Query | None = None) -> bytes | None:
        """The reply to the client's raw query (with its ID), or None if no upstream answered in time.
        `parsed`: the handler's parse_query() of it, so the question is not read again.

        Raises Overloaded when --max-concurrent exchanges are outstanding.
        """
        cache = self.cache
        key = None
        if cache is not None:
            key = cache.key(query) if parsed is None else cache.key_of(query, parsed)
            if key is not None:
                hit = cache.get(key, query)
                if hit is not None:
                    return hit
        if self.outstanding >= self.max_concurrent:
            self.rejects += 1
            raise Overloaded
        question = question_of(query) if parsed is None else ((parsed.key[:-4], parsed.key[-4:]),)
        if question is None or not self.upstreams:
            return None
        self.outstanding += 1
        try:
            deadline = asyncio.get_running_loop().time() + self.timeout
            reply = await in_order(query, question, self._order(), deadline, self.attempt_timeout, tcp, self._report)
        finally:
            self.outstanding -= 1
        if reply is not None and key is not None:
            return cache.put(key, query, reply)  # type: ignore[union-attr]
        return reply

    async def lookup(self, name: str, rdtype: int) -> dns.message.Message | None:
        """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232), through the cache; None on failure."""
        try:
            return parsed(await self.forward(lookup_query(name, rdtype)))
        except Overloaded:
            return None

    async def close(self) -> None:
        """Stop the health probes (those running on this loop are awaited)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        tasks = []
        for state in self.state.values():
            task, state.probe_task = state.probe_task, None
            if task is not None and not task.done():
                task.cancel()
                if task.get_loop() is loop:
                    tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def down(self) -> list[Address]:
        """The upstreams marked down now."""
        return [u for u, s in self.state.items() if s.down]

    # --- internals ------------------------------------------------------------------------------

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
        return healthy + [u for u in upstreams if state[u].down]

    def _report(self, upstream: Address, reply: bytes | None) -> None:
        state = self.state[upstream]
        state.requests += 1
        if reply is not None:
            state.responses[rcode_of(reply)] += 1
            state.fails = 0
            if state.down:
                state.down = False
                log.info("upstream %s answers again", state.name)
            return
        state.failures += 1
        state.fails += 1
        if self.max_fails and state.fails >= self.max_fails:
            if not state.down:
                state.down = True
                log.warning("upstream %s marked down after %d failed queries; probing it with . NS every %.1f s",
                            state.name, state.fails, PROBE_INTERVAL)
            self._start_probe(state)

    def _start_probe(self, state: UpstreamState) -> None:
        """The probe task of a down upstream, started on the running loop unless one runs there."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        task = state.probe_task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        state.probe_task = loop.create_task(self._probe(state), name=f"probe {state.name}")

    async def _probe(self, state: UpstreamState) -> None:
        budget = min(self.attempt_timeout, PROBE_TIMEOUT)
        while state.down and not self._closed:
            reply = await udp_exchange(_NS_PROBE, _NS_QUESTION, state.address, budget)
            if reply is not None:  # any valid reply, whatever its RCODE: the upstream is reachable
                if state.down:
                    state.down = False
                    state.fails = 0
                    log.info("upstream %s answers the health check again", state.name)
                return
            state.healthcheck_failures += 1
            await asyncio.sleep(PROBE_INTERVAL)
