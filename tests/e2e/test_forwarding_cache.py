"""The cache of forwarded answers (clusterdns/cache.py), through a Forwarder and real upstreams,
plus wire-level unit tests with a fake clock."""

from __future__ import annotations

import time
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests.helpers.process import UNIT_FIXTURE
from tests.helpers.upstream import Upstream

FIXTURE = UNIT_FIXTURE
RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 20",
    "ext.interwebs.test. 300 IN A 1.2.3.4",
    "short.interwebs.test. 3 IN A 1.2.3.5",
    "zero.interwebs.test. 0 IN A 1.2.3.6",
    "www.interwebs.test. 600 IN CNAME ext.interwebs.test.",
] + [f"n{i}.interwebs.test. 100 IN A 10.2.0.{i}" for i in range(5)] + [
    f"big.interwebs.test. 300 IN A 10.3.0.{i}" for i in range(40)
]


def query(qname: str = "ext.interwebs.test.", qtype: str = "A", qid: int = 0x1111, **kw: Any) -> bytes:
    return dns.message.make_query(qname, qtype, id=qid, **kw).to_wire()


def test_serve_caches_forwarded_names_only(serve) -> None:
    with Upstream(RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}")
        first = server.query("ext.interwebs.test.", "A")
        time.sleep(1.1)
        second = server.query("ext.interwebs.test.", "A")
        assert second.answer[0].ttl <= first.answer[0].ttl - 1
        assert up.asked("ext.interwebs.test.") == 1


def test_serve_cache_zero_forwards_every_time(serve) -> None:
    with Upstream(RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", "--cache", "0", upstream=f"{up.address[0]}:{up.address[1]}")
        for _ in range(2):
            assert server.query("ext.interwebs.test.", "A").answer[0].ttl == 300
        assert up.asked("ext.interwebs.test.") == 2
