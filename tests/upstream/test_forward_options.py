"""CoreDNS forward's and cache's options through a Forwarder and real upstreams: transport
(proxy/connect.go TestProtocolSelection), failfast, connection reuse (persistent_test.go),
keepttl, servfail, the denial store, disable and cache zones (cache_test.go)."""

from __future__ import annotations

import asyncio

import dns.message
import dns.rcode
import pytest

from clusterdns.upstream.cache import DENIAL, SUCCESS
from clusterdns.upstream.forwarder import Forwarder
from tests.helpers.upstream import Clock, Upstream, run_forwarder

RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 20",
    "ext.interwebs.test. 60 IN A 1.2.3.4",
    "other.test. 60 IN A 1.2.3.5",
]


def query(qname: str = "ext.interwebs.test.") -> bytes:
    return dns.message.make_query(qname, "A", id=5).to_wire()


def ttl_of(wire: bytes | None) -> int:
    assert wire is not None
    return dns.message.from_wire(wire).answer[0].ttl


# TestProtocolSelection: (client over TCP, force_tcp, prefer_udp) -> the upstream's transport
PROTOCOLS = [
    (False, False, False, "udp"), (False, True, False, "tcp"), (False, False, True, "udp"), (False, True, True, "tcp"),
    (True, False, False, "tcp"), (True, True, False, "tcp"), (True, False, True, "udp"), (True, True, True, "tcp"),
]


@pytest.mark.parametrize(("tcp", "force_tcp", "prefer_udp", "seen"), PROTOCOLS)
def test_protocol_selection(tcp: bool, force_tcp: bool, prefer_udp: bool, seen: str) -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert await fwd.forward(query(), tcp=tcp) is not None

        run_forwarder([up.address], body, cache=0, force_tcp=force_tcp, prefer_udp=prefer_udp)
        assert [t for t, _, _ in up.queries] == [seen]


def test_failfast_answers_without_asking_when_every_upstream_is_down() -> None:
    """forward_test.go TestAllUpstreamsDown: with failfast, no query is sent."""
    with Upstream(RECORDS, mode="drop") as up:

        async def body(fwd: Forwarder) -> None:
            assert await fwd.forward(query()) is None
            assert fwd.down() == [up.address]
            asked = up.asked("ext.interwebs.test.")
            assert await fwd.forward(query()) is None
            assert up.asked("ext.interwebs.test.") == asked and fwd.healthcheck_broken == 1

        run_forwarder([up.address], body, cache=0, upstream_timeout=0.2, max_fails=1, failfast=True, health_check=5.0)


def test_health_check_sets_the_probe_interval() -> None:
    with Upstream(RECORDS, mode="drop") as up:

        async def body(fwd: Forwarder) -> int:
            await fwd.forward(query())
            await asyncio.sleep(0.5)
            return fwd.state[up.address].healthcheck_failures

        slow = run_forwarder([up.address], body, cache=0, upstream_timeout=0.05, max_fails=1, health_check=10.0)
        fast = run_forwarder([up.address], body, cache=0, upstream_timeout=0.05, max_fails=1, health_check=0.01)
        assert slow == 1 and fast >= 3


@pytest.mark.parametrize(("expire", "max_idle", "reused"), [(10.0, 0, 2), (0.0, 0, 0)])
def test_tcp_connections_are_reused_until_they_expire(expire: float, max_idle: int, reused: int) -> None:
    """persistent_test.go TestCached / TestCleanupByTimer: first in, first out; expire 0 keeps none."""
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> tuple[int, int]:
            for _ in range(3):
                assert await fwd.forward(query(), tcp=True) is not None
            return fwd.pool.hits[up.address], fwd.pool.misses[up.address]

        hits, misses = run_forwarder([up.address], body, cache=0, upstream_expire=expire, max_idle_conns=max_idle)
        assert (hits, misses) == (reused, 3 - reused)


def test_an_idle_connection_past_expire_is_not_used() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> tuple[int, int]:
            await fwd.forward(query(), tcp=True)
            await asyncio.sleep(0.15)
            await fwd.forward(query(), tcp=True)
            return fwd.pool.hits[up.address], fwd.pool.misses[up.address]

        assert run_forwarder([up.address], body, cache=0, upstream_expire=0.1) == (0, 2)


def test_keepttl_serves_the_stored_ttl() -> None:
    """cache_test.go TestCacheKeepTTL: a hit 30 s later still shows 60."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> list[int]:
            first = ttl_of(await fwd.forward(query()))
            clock.now += 30
            return [first, ttl_of(await fwd.forward(query()))]

        assert run_forwarder([up.address], body, clock, cache=3600, cache_keepttl=True) == [60, 60]
        assert run_forwarder([up.address], body, clock, cache=3600) == [60, 30]


@pytest.mark.parametrize(("servfail", "kept"), [(5.0, 1), (0.0, 0)])
def test_servfail_is_kept_for_the_servfail_time(servfail: float, kept: int) -> None:
    """cache_test.go TestCacheServfailTTL0 and the SERVFAIL insertion case."""
    with Upstream(RECORDS, mode="servfail") as up:

        async def body(fwd: Forwarder) -> int:
            reply = await fwd.forward(query())
            assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL
            assert fwd.cache is not None
            return fwd.cache.entries[DENIAL]

        assert run_forwarder([up.address], body, cache=30, cache_servfail=servfail) == kept


def test_denials_have_their_own_capacity_and_ttl() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert fwd.cache is not None
            nx = dns.message.from_wire(await fwd.forward(query("a.interwebs.test.")))  # type: ignore[arg-type]
            assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority[0].ttl == 7  # the denial TTL cap
            await fwd.forward(query("b.interwebs.test."))
            await fwd.forward(query())
            assert fwd.cache.entries == {SUCCESS: 1, DENIAL: 1} and fwd.cache.evictions[DENIAL] == 1

        run_forwarder([up.address], body, cache=30, cache_denial_size=1, cache_denial_ttl=7)


def test_disable_and_cache_zones_keep_names_out() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> tuple[int, int]:
            assert fwd.cache is not None
            for name in ("ext.interwebs.test.", "x.interwebs.test.", "other.test."):
                await fwd.forward(query(name))
            return fwd.cache.entries[SUCCESS], fwd.cache.entries[DENIAL]

        # disable success interwebs.test: its answer is not kept, its NXDOMAIN is; other.test is
        assert run_forwarder([up.address], body, cache=30, cache_disable_success=("interwebs.test",)) == (1, 1)
        assert run_forwarder([up.address], body, cache=30, cache_disable_denial=("interwebs.test",)) == (2, 0)
        # `cache 30 interwebs.test`: other.test goes past the cache
        assert run_forwarder([up.address], body, cache=30, cache_zones=("interwebs.test",)) == (1, 1)
