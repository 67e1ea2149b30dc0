"""Forwarding loop detection at start-up (CoreDNS's loop plugin): real loops, real processes."""

from __future__ import annotations

import socket
import time

import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.addresses import Address
from clusterdns.errors import ConfigError
from clusterdns.upstream.loop import LOOP_PROBE_ZONE, check_loop, find_loops
from tests.helpers.process import free_port
from tests.helpers.upstream import Upstream

RECORDS = ["ext.interwebs.test. 5 IN A 1.2.3.4"]


def probes(up: Upstream) -> list[str]:
    return [name for _, name, rdtype in up.queries if rdtype == dns.rdatatype.HINFO]


def bound_udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def test_a_probe_to_ourselves_comes_back() -> None:
    with bound_udp() as ours:
        me: Address = ours.getsockname()
        started = time.monotonic()
        assert find_loops([ours], [me], timeout=2.0) == [me]
        assert time.monotonic() - started < 1.5, "found at once, not after the 2 s timeout"
        with pytest.raises(ConfigError, match=r"forwarding loop: a query sent to upstream 127\.0\.0\.1:\d+ came back to us"):
            check_loop([ours], [me], timeout=2.0)


def test_only_the_looping_upstream_is_named() -> None:
    with bound_udp() as ours, Upstream(RECORDS) as up:
        me: Address = ours.getsockname()
        assert find_loops([ours], [up.address, me], timeout=2.0) == [me]
        [name] = probes(up)
        assert name.endswith("." + LOOP_PROBE_ZONE) and len(name.split(".")) == 4


def test_no_loop_ends_when_the_upstreams_answer() -> None:
    with bound_udp() as ours, Upstream(RECORDS) as up, Upstream(RECORDS, mode="refused") as refusing:
        closed = ("127.0.0.1", free_port())
        started = time.monotonic()
        assert find_loops([ours], [up.address, refusing.address, closed], timeout=2.0) == []
        assert time.monotonic() - started < 1.5, "done when all answered, not after the 2 s timeout"
        assert len(probes(up)) == 1 and len(probes(refusing)) == 1


def test_a_silent_upstream_costs_the_timeout_only() -> None:
    with bound_udp() as ours, Upstream(RECORDS, mode="drop") as up:
        started = time.monotonic()
        assert find_loops([ours], [up.address], timeout=0.5) == []
        assert 0.45 < time.monotonic() - started < 1.5
