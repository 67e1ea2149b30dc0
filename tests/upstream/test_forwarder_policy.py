"""Forwarder: upstream faults, health (mark down, probe, recover), policies, concurrency, deadlines.

Each test drives a Forwarder in a fresh event loop against real upstream servers on 127.0.0.1
(tests/helpers/upstream.py); `clusterdns serve` against such upstreams is in
tests/e2e/test_forwarding_upstreams.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.addresses import Address
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.upstream.forwarder import Forwarder, Overloaded, query_deadline
from tests.helpers.process import closed_port, wait_until
from tests.helpers.upstream import Upstream, run_forwarder

RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 30",
    "ext.interwebs.test. 5 IN A 1.2.3.4",
] + [f"n{i}.interwebs.test. 5 IN A 10.1.0.{i}" for i in range(60)]
CLIENT_ID = 0x4321
T = TypeVar("T")


def config(**settings: Any) -> Config:
    """Settings for a Forwarder under test: cache off unless asked, so every query goes upstream."""
    return dataclasses.replace(Config(), **{"cache": 0, **settings})


def query(qname: str = "ext.interwebs.test.", qtype: str = "A") -> bytes:
    return dns.message.make_query(qname, qtype, id=CLIENT_ID).to_wire()


def run(upstreams: list[Address], body: Callable[[Forwarder], Awaitable[T]], **settings: Any) -> T:
    """body(forwarder), with the cache off unless asked (see config())."""
    return run_forwarder(upstreams, body, **{"cache": 0, **settings})


def answer(wire: bytes | None) -> set[str]:
    assert wire is not None
    msg = dns.message.from_wire(wire)
    return {rd.to_text() for rrset in msg.answer for rd in rrset}


def probes(up: Upstream) -> int:
    return sum(1 for _, name, rdtype in up.queries if name == "." and rdtype == dns.rdatatype.NS)


def test_closed_port_moves_on_at_once_and_is_marked_down() -> None:
    dead = closed_port()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> list[float]:
            times = []
            for _ in range(3):
                started = time.monotonic()
                assert answer(await fwd.forward(query())) == {"1.2.3.4"}
                times.append(time.monotonic() - started)
            assert fwd.down() == [dead]
            state = fwd.state[dead]
            assert state.fails == 2 and state.failures == 2 and state.requests == 2  # the third query did not try it
            assert fwd.state[up.address].responses[0] == 3
            return times

        times = run([dead, up.address], body, upstream_policy="sequential", max_fails=2)
        assert max(times) < 0.5  # ICMP port unreachable, not a timeout


def test_slow_upstream_gives_way_to_the_next() -> None:
    with Upstream(RECORDS, delay=3.0) as slow, Upstream(RECORDS) as fast:

        async def body(fwd: Forwarder) -> float:
            started = time.monotonic()
            assert answer(await fwd.forward(query())) == {"1.2.3.4"}
            return time.monotonic() - started

        elapsed = run([slow.address, fast.address], body, upstream_policy="sequential")
        assert 1.9 < elapsed < 2.6  # the slow one had its full --upstream-timeout (2 s), then the fast one
        assert slow.asked("ext.interwebs.test.") == 1 and fast.asked("ext.interwebs.test.") == 1


def test_only_a_slow_upstream_ends_within_one_attempt() -> None:
    with Upstream(RECORDS, delay=3.0) as slow:

        async def body(fwd: Forwarder) -> float:
            started = time.monotonic()
            assert await fwd.forward(query()) is None
            return time.monotonic() - started

        assert 0.9 < run([slow.address], body, upstream_timeout=1.0) < 1.5


def test_deadline_formula() -> None:
    assert query_deadline(2.0) == 4.0  # the default: under a stub's 5 s
    assert query_deadline(1.0) == 2.5
    assert query_deadline(5.0) == 4.0
    assert Forwarder([], Config()).timeout == 4.0


@pytest.mark.parametrize("mode", ["garbage", "wrong_id"])
def test_garbage_counts_as_a_failure(mode: str) -> None:
    with Upstream(RECORDS, mode=mode) as bad, Upstream(RECORDS) as good:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert answer(await fwd.forward(query())) == {"1.2.3.4"}
            assert fwd.down() == [bad.address]
            assert answer(await fwd.forward(query())) == {"1.2.3.4"}  # the bad one now goes last: asked twice in all

        run([bad.address, good.address], body, upstream_policy="sequential", upstream_timeout=0.3)
        assert bad.asked("ext.interwebs.test.") == 2 and good.asked("ext.interwebs.test.") == 3


def test_noisy_upstream_is_healthy() -> None:
    # Garbage, a wrong ID and a wrong question come before the real answer: all ignored.
    with Upstream(RECORDS, mode="noisy") as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(3):
                assert answer(await fwd.forward(query())) == {"1.2.3.4"}
            assert fwd.down() == [] and fwd.state[up.address].fails == 0

        run([up.address], body)


def test_refused_and_servfail_prove_the_upstream_alive() -> None:
    with Upstream(RECORDS, mode="refused") as refused, Upstream(RECORDS, mode="servfail") as servfail:

        async def body(fwd: Forwarder) -> None:
            for _ in range(3):
                reply = await fwd.forward(query())
                assert reply is not None and dns.message.from_wire(reply).rcode() == dns.rcode.SERVFAIL
            assert fwd.down() == []
            assert fwd.state[refused.address].responses[dns.rcode.REFUSED] == 3

        run([refused.address, servfail.address], body, upstream_policy="sequential", max_fails=1)


def test_reply_from_another_address_is_ignored() -> None:
    """The UDP socket is connected: a right-looking reply from any other address or port is not heard."""
    for spoof in (True, False):
        with _FakeUpstream(spoof) as fake:

            async def body(fwd: Forwarder) -> bytes | None:
                return await fwd.forward(query())

            reply = run([fake.address], body, upstream_timeout=0.5)
        # Leaving the block joins the fake's thread: its flag is set after the reply went out.
        assert fake.sent, "the fake upstream replied"
        if spoof:
            assert reply is None
        else:
            assert answer(reply) == {"1.2.3.4"}


class _FakeUpstream:
    """Answers one query correctly (same ID and question), from its own socket or from another port."""

    def __init__(self, spoof: bool) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        self.address: Address = self.sock.getsockname()
        self.spoof, self.sent = spoof, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            data, peer = self.sock.recvfrom(65535)
        except OSError:
            return
        q = dns.message.from_wire(data)
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 5, "IN", "A", "1.2.3.4"))
        (self.other if self.spoof else self.sock).sendto(r.to_wire(), peer)
        self.sent = True

    def __enter__(self) -> _FakeUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(5)
        self.sock.close()
        self.other.close()


def test_marked_down_after_max_fails_then_probed_until_it_answers() -> None:
    with Upstream(RECORDS, mode="drop") as up:

        async def body(fwd: Forwarder) -> None:
            assert await fwd.forward(query()) is None
            assert fwd.down() == []  # one failure is not enough with --max-fails 2
            assert await fwd.forward(query()) is None
            assert fwd.down() == [up.address]
            # `. NS` probes while down: at once, then every 0.5 s after each 0.2 s timeout
            for _ in range(50):
                if probes(up) >= 2 and fwd.state[up.address].healthcheck_failures >= 2:
                    break
                await asyncio.sleep(0.1)
            assert probes(up) >= 2, "`. NS` probes while down"
            assert fwd.state[up.address].healthcheck_failures >= 2
            up.mode = "normal"
            for _ in range(30):
                await asyncio.sleep(0.1)
                if not fwd.down():
                    break
            assert fwd.down() == [], "recovered through the probe"
            task = fwd.state[up.address].probe_task
            assert task is not None and task.done()
            settled = probes(up)
            await asyncio.sleep(0.8)
            assert probes(up) == settled, "no probes once it is up"
            assert answer(await fwd.forward(query())) == {"1.2.3.4"}

        run([up.address], body, upstream_timeout=0.2, max_fails=2)


def test_down_upstreams_go_last_and_are_tried_when_all_are_down() -> None:
    with Upstream(RECORDS, mode="drop") as first, Upstream(RECORDS, mode="drop") as second:

        async def body(fwd: Forwarder) -> None:
            assert await fwd.forward(query()) is None  # both fail once: both down with --max-fails 1
            assert sorted(fwd.down()) == sorted([first.address, second.address])
            assert fwd.healthcheck_broken == 0
            assert await fwd.forward(query()) is None  # every upstream down: all tried anyway
            assert fwd.healthcheck_broken == 1

        run([first.address, second.address], body, upstream_policy="sequential", upstream_timeout=0.2, max_fails=1)
        wait_until(lambda: first.asked("ext.interwebs.test.") == 2 and second.asked("ext.interwebs.test.") == 2, "each asked twice")


def test_max_fails_zero_never_marks_down() -> None:
    dead = closed_port()

    async def body(fwd: Forwarder) -> None:
        for _ in range(4):
            assert await fwd.forward(query()) is None
        assert fwd.down() == [] and fwd.state[dead].fails == 4

    run([dead], body, max_fails=0)


def test_a_real_answer_also_brings_an_upstream_back() -> None:
    with Upstream(RECORDS, mode="drop") as up:

        async def body(fwd: Forwarder) -> None:
            assert await fwd.forward(query()) is None
            assert fwd.down() == [up.address]
            up.mode = "normal"
            # The probe or this query, whichever comes first, marks it up.
            assert answer(await fwd.forward(query())) == {"1.2.3.4"}
            assert fwd.down() == []

        run([up.address], body, upstream_timeout=0.2, max_fails=1)


def test_close_cancels_the_probes() -> None:
    dead = closed_port()

    async def main() -> None:
        fwd = Forwarder([dead], config(max_fails=1))
        assert await fwd.forward(query()) is None
        task = fwd.state[dead].probe_task
        assert task is not None and not task.done()
        await fwd.close()
        assert task.done()
        assert await fwd.forward(query()) is None  # still usable, but starts no probe
        assert fwd.state[dead].probe_task is None

    asyncio.run(main())


def test_probe_task_restarts_on_a_new_event_loop() -> None:
    """A Forwarder built before the loop (as the server's is, before forking workers) probes on the running one."""
    dead = closed_port()
    fwd = Forwarder([dead], config(max_fails=1))

    async def once() -> None:
        assert await fwd.forward(query()) is None
        task = fwd.state[dead].probe_task
        assert task is not None and task.get_loop() is asyncio.get_running_loop()

    asyncio.run(once())  # asyncio.run cancels the probe left running
    asyncio.run(once())

    async def close() -> None:
        await fwd.close()

    asyncio.run(close())


def _spread(policy: str, n: int = 40) -> tuple[int, int, list[int]]:
    with Upstream(RECORDS) as a, Upstream(RECORDS) as b:
        order: list[int] = []

        async def body(fwd: Forwarder) -> None:
            for i in range(n):
                before = len(a.queries)
                assert answer(await fwd.forward(query(f"n{i}.interwebs.test."))) == {f"10.1.0.{i}"}
                order.append(0 if len(a.queries) > before else 1)

        run([a.address, b.address], body, upstream_policy=policy)
        return len(a.queries), len(b.queries), order


def test_sequential_always_tries_the_first() -> None:
    assert _spread("sequential")[:2] == (40, 0)


def test_round_robin_alternates() -> None:
    a, b, order = _spread("round_robin")
    assert (a, b) == (20, 20)
    assert order == [0, 1] * 20


def test_random_spreads() -> None:
    a, b, _ = _spread("random")
    assert a + b == 40 and 8 <= a <= 32  # p < 1e-4 of failing by chance


def test_bad_settings_are_refused() -> None:
    for bad in ({"max_concurrent": 0}, {"upstream_timeout": 0}, {"max_fails": -1}, {"cache": -1}, {"cache_size": 0},
                {"upstream_policy": "fastest"}):
        with pytest.raises(ConfigError):
            Forwarder([], config(**bad))


def test_max_concurrent_refuses_at_once() -> None:
    with Upstream(RECORDS, delay=0.5) as up:

        async def body(fwd: Forwarder) -> None:
            first = asyncio.ensure_future(fwd.forward(query()))
            second = asyncio.ensure_future(fwd.forward(query("n1.interwebs.test.")))
            await asyncio.sleep(0.1)
            assert fwd.outstanding == 2
            started = time.monotonic()
            with pytest.raises(Overloaded):
                await fwd.forward(query("n2.interwebs.test."))
            assert time.monotonic() - started < 0.4  # at once, not after the upstream's 0.5 s
            assert await fwd.lookup("n3.interwebs.test.", dns.rdatatype.A) is None  # the chase gives up too
            assert fwd.rejects == 2
            assert answer(await first) == {"1.2.3.4"} and answer(await second) == {"10.1.0.1"}
            assert fwd.outstanding == 0
            assert answer(await fwd.forward(query("n2.interwebs.test."))) == {"10.1.0.2"}

        run([up.address], body, max_concurrent=2)
