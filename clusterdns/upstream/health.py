"""Upstream health, as CoreDNS's forward keeps it: consecutive failures mark an upstream down,
and a probe (`. IN NS`) is sent every --health-check seconds until it answers again."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import dns.message
import dns.rdatatype

from clusterdns.codes import rcode_of
from clusterdns.config.addresses import Address, hostport_text
from clusterdns.upstream.exchange import Question, question_of, udp_exchange

log = logging.getLogger("clusterdns")

PROBE_TIMEOUT = 1.0  # a health probe waits at most this (CoreDNS: read and write timeouts of 1s)
_NS_PROBE = dns.message.make_query(".", dns.rdatatype.NS).to_wire()  # `. IN NS`, RD set, as CoreDNS's health check
_NS_QUESTION: Question = question_of(_NS_PROBE) or ()


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


class Health:
    """The health of one group's upstreams.

    --max-fails consecutive attempts without a usable reply (timeout, ICMP refused,
    garbage) mark an upstream down (0: never). A background task, started on the running
    loop, then sends it `. IN NS` at once and every --health-check seconds until any valid
    reply comes back (a real query answered meanwhile also brings it back). REFUSED and
    SERVFAIL replies prove the upstream is alive: they reset the count. CoreDNS counts only
    failed probes (plugin/pkg/proxy/health.go); counting failed queries marks a dead
    upstream down sooner, without probing a healthy one.
    """

    def __init__(self, upstreams: tuple[Address, ...], max_fails: int, interval: float, attempt_timeout: float) -> None:
        self.state = {u: UpstreamState(u) for u in upstreams}
        self.max_fails = max_fails
        self.interval = interval
        self.probe_timeout = min(attempt_timeout, PROBE_TIMEOUT)
        self.closed = False

    def report(self, upstream: Address, reply: bytes | None) -> None:
        """What one attempt on `upstream` got (None: no usable reply)."""
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
                log.warning("upstream %s marked down after %d failed queries; probing it with . NS every %g s",
                            state.name, state.fails, self.interval)
            self._start_probe(state)

    async def close(self) -> None:
        """Stop the probes (those running on this loop are awaited)."""
        self.closed = True
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

    def _start_probe(self, state: UpstreamState) -> None:
        """The probe task of a down upstream, started on the running loop unless one runs there."""
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        task = state.probe_task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        state.probe_task = loop.create_task(self._probe(state), name=f"probe {state.name}")

    async def _probe(self, state: UpstreamState) -> None:
        while state.down and not self.closed:
            reply = await udp_exchange(_NS_PROBE, _NS_QUESTION, state.address, self.probe_timeout)
            if reply is not None:  # any valid reply, whatever its RCODE: the upstream is reachable
                if state.down:
                    state.down = False
                    state.fails = 0
                    log.info("upstream %s answers the health check again", state.name)
                return
            state.healthcheck_failures += 1
            await asyncio.sleep(self.interval)
