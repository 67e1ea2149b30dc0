"""Forwarder: upstream faults, health (mark down, probe, recover), policies, concurrency, deadlines.

Unit-level tests drive a Forwarder in a fresh event loop against real upstream servers on
127.0.0.1 (tests/helpers/upstream.py); the end-to-end ones run `clusterdns serve`.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from clusterdns.config.addresses import Address
from clusterdns.config.settings import Config
from clusterdns.upstream.forwarder import Forwarder
from tests.helpers.process import UNIT_FIXTURE, closed_port, wait_until
from tests.helpers.upstream import Upstream, run_forwarder

FIXTURE = UNIT_FIXTURE
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
