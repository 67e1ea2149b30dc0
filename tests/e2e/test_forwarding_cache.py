"""The cache of forwarded answers (upstream/cache.py) in `clusterdns serve`: forwarded names only, --cache 0,
and the listeners answering repeats from it."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

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


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_listeners_answer_repeats_from_the_cache_with_ttls_counting_down(serve, transport: str) -> None:
    """A fresh cache hit is kept by the UDP and TCP listeners (serve/timed.py, _udpbatch.c timed_reply):
    the same query again is answered there, its TTLs the stored ones less the whole seconds of
    age (cache/item.go toMsg), counted as cache requests and hits in /metrics; once the entry
    is no longer fresh the cache is asked again and the upstream with it."""
    from tests.e2e.test_ops import endpoint, get, samples, value

    with Upstream(RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", "--metrics", "127.0.0.1:0", upstream=f"{up.address[0]}:{up.address[1]}")
        metrics = endpoint(server, "metrics")
        wire = query("ext.interwebs.test.", qid=7)
        ttls = []
        for _ in range(3):  # the miss, the hit that is kept, then the listener's own answers
            reply = dns.message.from_wire(_ask(wire, server, transport))
            ttls.append(reply.answer[0].ttl)
        time.sleep(1.2)
        later = dns.message.from_wire(_ask(wire, server, transport))
        assert ttls == [30, 30, 30] and later.answer[0].ttl in (28, 29), (ttls, later.answer[0].ttl)
        assert later.id == 7 and later.question[0].name.to_text() == "ext.interwebs.test."
        assert up.asked("ext.interwebs.test.") == 1
        m = samples(get(metrics)[1])
        assert value(m, "coredns_cache_requests_total", zones=".") == 4
        assert value(m, "coredns_cache_hits_total", zones=".", type="success") == 3
        # short.interwebs.test has TTL 3: fresh for 3 s, then the upstream is asked again.
        short = query("short.interwebs.test.", qid=9)
        for _ in range(3):
            _ask(short, server, transport)
        time.sleep(3.2)
        assert dns.message.from_wire(_ask(short, server, transport)).answer[0].ttl == 3
        assert up.asked("short.interwebs.test.") == 2


def _ask(wire: bytes, server: Any, transport: str) -> bytes:
    """The reply to `wire`, over UDP or over a new TCP connection (RFC 1035 4.2.2 framing)."""
    if transport == "tcp":
        with socket.create_connection((server.host, server.port), timeout=3) as conn:
            conn.sendall(struct.pack("!H", len(wire)) + wire)
            stream = b""
            while len(stream) < 2 or len(stream) < 2 + struct.unpack("!H", stream[:2])[0]:
                chunk = conn.recv(65535)
                assert chunk, "the server closed the connection"
                stream += chunk
            return stream[2:]
    return _udp(wire, server)


def _udp(wire: bytes, server: Any) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(wire, (server.host, server.port))
        return sock.recv(65535)
