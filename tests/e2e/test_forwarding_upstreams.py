"""`clusterdns serve` against slow, dead and busy upstreams: --max-concurrent answers REFUSED at
once, a slow only upstream is a SERVFAIL within the client's timeout, and dead and slow ones
fail over. The Forwarder itself is driven in tests/upstream/test_forwarder_policy.py.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import dns.message
import dns.rcode

from tests.helpers.process import UNIT_FIXTURE, closed_port, wait_until
from tests.helpers.upstream import Upstream

FIXTURE = UNIT_FIXTURE
RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 30",
    "ext.interwebs.test. 5 IN A 1.2.3.4",
] + [f"n{i}.interwebs.test. 5 IN A 10.1.0.{i}" for i in range(60)]


def answer(wire: bytes | None) -> set[str]:
    assert wire is not None
    msg = dns.message.from_wire(wire)
    return {rd.to_text() for rrset in msg.answer for rd in rrset}


def _udp_socket(server: Any, qname: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((server.host, server.port))
    s.send(dns.message.make_query(qname, "A").to_wire())
    return s


def test_serve_max_concurrent_answers_refused(serve) -> None:
    with Upstream(RECORDS, delay=1.0) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", "--max-concurrent", "2", "--loop-detect", "off",
                       upstream=f"{up.address[0]}:{up.address[1]}")
        slow = [_udp_socket(server, f"n{i}.interwebs.test.") for i in (1, 2)]
        try:
            wait_until(lambda: len(up.queries) >= 2, "the two slow queries are with the upstream")
            started = time.monotonic()
            third = server.query("n3.interwebs.test.", "A", timeout=5)
            assert third.rcode() == dns.rcode.REFUSED
            assert time.monotonic() - started < 0.9, "REFUSED at once, not after the slow upstream (1 s)"
            for i, s in zip((1, 2), slow):
                r = dns.message.from_wire(s.recv(65535))
                assert r.rcode() == dns.rcode.NOERROR and answer(r.to_wire()) == {f"10.1.0.{i}"}
        finally:
            for s in slow:
                s.close()
        assert up.asked("n3.interwebs.test.") == 0


def test_serve_slow_only_upstream_servfail_before_stub_timeout(serve) -> None:
    with Upstream(RECORDS, delay=3.0) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", "--loop-detect", "off", upstream=f"{up.address[0]}:{up.address[1]}")
        started = time.monotonic()
        r = server.query("ext.interwebs.test.", "A", timeout=5)
        assert r.rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - started < 4.5


def test_serve_dead_and_slow_upstreams_fail_over(serve) -> None:
    dead = closed_port()
    with Upstream(RECORDS, delay=3.0) as slow, Upstream(RECORDS) as good:
        flags = ["--zone", "cluster.local", "--loop-detect", "off", "--upstream-policy", "sequential", "--cache", "0"]
        for u in (dead, slow.address, good.address):
            flags += ["--upstream", f"{u[0]}:{u[1]}"]
        server = serve(FIXTURE, *flags, upstream=None)
        started = time.monotonic()
        r = server.query("ext.interwebs.test.", "A", timeout=5)
        assert r.rcode() == dns.rcode.NOERROR and answer(r.to_wire()) == {"1.2.3.4"}
        # dead: refused at once; slow: its share of the 4 s deadline (2 s); then good.
        assert time.monotonic() - started < 3.5
