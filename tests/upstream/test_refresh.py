"""Prefetch and serve_stale through a Forwarder, real upstreams and a fake clock (CoreDNS's
plugin/cache/prefetch_test.go TestPrefetch and cache_test.go TestServeFromStale*)."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from clusterdns.upstream.forwarder import Forwarder
from tests.helpers.upstream import Clock, Upstream, run_forwarder

RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 20",
    "ext.interwebs.test. 60 IN A 1.2.3.4",
    "pop.interwebs.test. 80 IN A 127.0.0.1",
]


def query(qname: str = "ext.interwebs.test.", qid: int = 7) -> bytes:
    return dns.message.make_query(qname, "A", id=qid).to_wire()


def read(wire: bytes | None) -> tuple[int, list[tuple[int, str]]]:
    """(rcode, [(ttl, record), ...]) of a reply."""
    assert wire is not None
    msg = dns.message.from_wire(wire)
    return msg.rcode(), [(rrset.ttl, rd.to_text()) for rrset in msg.answer + msg.authority for rd in rrset]


async def settle(fwd: Forwarder) -> None:
    """Let the background refreshes finish."""
    if fwd.refresher is not None:
        while fwd.refresher.tasks:
            await asyncio.gather(*fwd.refresher.tasks, return_exceptions=True)


def stale_run(up: Upstream, clock: Clock, body: Any, **settings: Any) -> Any:
    return run_forwarder([up.address], body, clock, cache=3600, upstream_timeout=0.2, max_fails=0, **settings)


def test_stale_answers_while_the_upstream_is_silent() -> None:
    """TestServeFromStaleCache: served stale within the window (TTL 0), asked again past it."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert read(await fwd.forward(query())) == (0, [(60, "1.2.3.4")])
            up.mode = "drop"
            clock.now += 30 * 60  # half an hour after it expired
            assert read(await fwd.forward(query())) == (0, [(0, "1.2.3.4")])  # at once, stale TTL 0
            await settle(fwd)  # the background refresh found no one
            clock.now += 30 * 60  # an hour after it was stored
            assert read(await fwd.forward(query())) == (0, [(0, "1.2.3.4")])
            await settle(fwd)
            clock.now += 10 * 60  # 70 minutes: expired longer than the hour
            assert await fwd.forward(query()) is None  # past the window: a plain miss, and SERVFAIL
            assert fwd.cache is not None and fwd.cache.served_stale == 2

        stale_run(up, clock, body, serve_stale=3600.0)
        assert up.asked("ext.interwebs.test.") == 4  # the fill, two refreshes, the miss


def test_a_stale_answer_carries_the_response_ttl_and_a_refresh_replaces_it() -> None:
    """serve_stale DURATION immediate RESPONSE_TTL: the stale TTL; the refresh brings a fresh one."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            await fwd.forward(query())
            clock.now += 65
            assert read(await fwd.forward(query())) == (0, [(30, "1.2.3.4")])
            await settle(fwd)
            assert read(await fwd.forward(query())) == (0, [(60, "1.2.3.4")])  # the refreshed entry

        stale_run(up, clock, body, serve_stale=3600.0, serve_stale_ttl=30)
        assert up.asked("ext.interwebs.test.") == 2


def test_a_failed_refresh_waits_for_the_recheck_time() -> None:
    """serve_stale_recheck_test.go TestServeStaleFailureRecheckImmediate."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            await fwd.forward(query())
            up.mode = "servfail"  # an answer, but not one serve_stale takes
            clock.now += 61
            await fwd.forward(query())
            await settle(fwd)
            clock.now += 10
            await fwd.forward(query())  # within the 30 s recheck: no refresh
            await settle(fwd)
            assert up.asked("ext.interwebs.test.") == 2
            clock.now += 25
            await fwd.forward(query())  # past it: asked again
            await settle(fwd)
            assert up.asked("ext.interwebs.test.") == 3

        stale_run(up, clock, body, serve_stale=3600.0, serve_stale_recheck=30.0)


def test_verify_asks_first_and_takes_noerror_or_nxdomain() -> None:
    """TestServeFromStaleCacheFetchVerify: a fresh answer wins; SERVFAIL leaves the stale one."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            await fwd.forward(query())
            clock.now += 61
            assert read(await fwd.forward(query())) == (0, [(60, "1.2.3.4")])  # verified: the upstream's
            clock.now += 61
            up.mode = "servfail"
            assert read(await fwd.forward(query())) == (0, [(0, "1.2.3.4")])  # stale
            up.mode = "normal"
            gone = dns.name.from_text("ext.interwebs.test.")
            del up.rrsets[(gone, dns.rdatatype.A)]
            up.names.discard(gone)
            clock.now += 61
            rcode, records = read(await fwd.forward(query()))  # the name is gone: NXDOMAIN wins over stale
            assert rcode == dns.rcode.NXDOMAIN and records[0][1].startswith("ns.interwebs.test.")

        stale_run(up, clock, body, serve_stale=3600.0, serve_stale_mode="verify")


def test_verify_timeout_answers_stale_and_the_late_answer_fills_the_cache() -> None:
    """TestServeFromStaleCacheFetchVerifyTimeout: a slow upstream does not hold the client."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            await fwd.forward(query())
            clock.now += 61
            up.delay = 0.15
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert read(await fwd.forward(query())) == (0, [(0, "1.2.3.4")])
            assert loop.time() - started < 0.12
            await settle(fwd)
            assert read(await fwd.forward(query())) == (0, [(60, "1.2.3.4")])

        stale_run(up, clock, body, serve_stale=3600.0, serve_stale_mode="verify", serve_stale_verify_timeout=0.05)


def test_prefetch_refreshes_a_popular_answer_before_it_expires() -> None:
    """prefetch_test.go TestPrefetch "hits.reset": TTL 80, prefetch 1, 10%: the hit at 73 s (7 s
    left, threshold 8) gets 7 and fetches; at 80 s the new entry has 73 s left."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert read(await fwd.forward(query("pop.interwebs.test."))) == (0, [(80, "127.0.0.1")])
            clock.now += 73
            assert read(await fwd.forward(query("pop.interwebs.test."))) == (0, [(7, "127.0.0.1")])
            await settle(fwd)
            assert up.asked("pop.interwebs.test.") == 2
            clock.now += 7
            assert read(await fwd.forward(query("pop.interwebs.test."))) == (0, [(73, "127.0.0.1")])
            assert fwd.cache is not None and fwd.cache.prefetches == 1

        run_forwarder([up.address], body, clock, cache=3600, cache_prefetch=1)


def test_prefetch_needs_enough_hits_in_the_window() -> None:
    """freq.go: a gap longer than the window starts the count again."""
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            await fwd.forward(query("pop.interwebs.test."))
            clock.now += 70
            await fwd.forward(query("pop.interwebs.test."))  # hit 1 of 2 (6 s threshold not met: 10 s left)
            clock.now += 5
            await fwd.forward(query("pop.interwebs.test."))  # hit 2, 5 s left: prefetch
            await settle(fwd)
            assert up.asked("pop.interwebs.test.") == 2

        run_forwarder([up.address], body, clock, cache=3600, cache_prefetch=2, cache_prefetch_window=60.0)
