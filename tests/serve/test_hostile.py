"""Hostile clients, on the handler and the TCP listener without a server: not an amplifier
(allow-forward, RFC 8482 ANY, response-rate limiting) and hostile TCP connections (cap,
slowloris, queries per connection, clients that do not read), on a fake transport. A real
`clusterdns serve` under the same is in tests/e2e/test_hostile.py.

Clients outside --allow-forward are tested on the handler with their address as a string
('203.0.113.5'): nothing is sent there.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Coroutine
from typing import Any

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.settings import Config
from clusterdns.ops.counters import ListenerStats
from clusterdns.serve import tcp as tcp_listener
from clusterdns.serve.handler import Handler
from clusterdns.serve.ratelimit import DROP, SEND, SLIP, RateLimiter, prefix, truncated
from clusterdns.snapshot.build import build as build_snapshot
from clusterdns.wire import Query
from tests.helpers.fuzz import InstantUpstream, drive, make_state
from tests.helpers.upstream import Clock

OUTSIDE = "203.0.113.5"  # TEST-NET-3: a client outside every default --allow-forward range


class CountingUpstream(InstantUpstream):
    """Always answers (small A record) and counts what it was asked."""

    async def forward(self, query: bytes, tcp: bool = False, parsed: Query | None = None, looked: object = None) -> bytes | None:
        q = bytearray(query)
        q[1] = 1  # the stand-in's "small answer" mode (the ID is not part of the parse)
        reply = await super().forward(bytes(q), tcp, parsed)
        return query[:2] + reply[2:] if reply else None


def handler_with(upstream: bool = True, **config: Any) -> tuple[Handler, CountingUpstream]:
    cfg = Config(zones=("cluster.local", "in-addr.arpa", "ip6.arpa"), **config)
    fake = CountingUpstream()
    fake.upstreams = (("127.0.0.1", 9),) if upstream else ()
    return Handler(build_snapshot(make_state(), cfg), cfg, fake), fake  # type: ignore[arg-type]


def ask(handler: Handler, name: str, rdtype: str = "A", peer: str | None = None, tcp: bool = False, **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    reply = drive(handler.respond(q.to_wire(), tcp, peer))
    assert isinstance(reply, bytes)
    r = dns.message.from_wire(reply)
    assert r.id == q.id and r.question == q.question
    return r


def test_forwarding_only_for_allowed_clients() -> None:
    handler, up = handler_with()
    for peer in ("127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "::1", "fd00::53", "fe80::1%eth0", "::ffff:10.1.2.3", None):
        r = ask(handler, "example.com", peer=peer)
        assert r.rcode() == dns.rcode.NOERROR and r.answer, peer
    assert up.forwarded == 9
    for peer in (OUTSIDE, "8.8.8.8", "2001:db8::5", "::ffff:203.0.113.5", "not-an-address"):
        r = ask(handler, "example.com", peer=peer)
        assert r.rcode() == dns.rcode.REFUSED and not r.answer and not r.flags & dns.flags.AA, peer
    assert up.forwarded == 9, "nothing forwarded for outside clients"


def test_outside_clients_still_get_our_zones() -> None:
    handler, up = handler_with()
    r = ask(handler, "web.shop.svc.cluster.local", peer=OUTSIDE)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and r.answer[0][0].to_text() == "10.96.12.34"
    assert ask(handler, "nope.shop.svc.cluster.local", peer=OUTSIDE).rcode() == dns.rcode.NXDOMAIN
    assert ask(handler, "34.12.96.10.in-addr.arpa", "PTR", peer=OUTSIDE).answer[0][0].to_text() == "web.shop.svc.cluster.local."
    assert up.forwarded == 0


def test_allow_forward_cidrs_replace_the_defaults() -> None:
    handler, up = handler_with(allow_forward=("192.0.2.0/24", "2001:db8:1::/48"))
    assert ask(handler, "example.com", peer="192.0.2.77").rcode() == dns.rcode.NOERROR
    assert ask(handler, "example.com", peer="2001:db8:1:2::3").rcode() == dns.rcode.NOERROR
    assert ask(handler, "example.com", peer="127.0.0.1").rcode() == dns.rcode.REFUSED
    assert ask(handler, "example.com", peer="10.1.2.3").rcode() == dns.rcode.REFUSED
    assert up.forwarded == 2


def test_fallthrough_is_not_forwarded_for_outside_clients_nor_cached_for_others() -> None:
    """An NXDOMAIN under in-addr.arpa goes upstream (--fallthrough) for allowed clients only;
    the outside client's local NXDOMAIN must not end up in the caches every client shares."""
    handler, up = handler_with()
    q = dns.message.make_query("9.9.9.9.in-addr.arpa", "PTR")
    for _ in range(2):
        outside = dns.message.from_wire(drive(handler.respond(q.to_wire(), False, OUTSIDE)))
        assert outside.rcode() == dns.rcode.NXDOMAIN and outside.flags & dns.flags.AA
    assert up.forwarded == 0
    inside = dns.message.from_wire(drive(handler.respond(q.to_wire(), False, "10.1.2.3")))
    assert inside.rcode() == dns.rcode.NOERROR and inside.answer and up.forwarded == 1


def test_any_in_our_zones_is_nodata_as_coredns() -> None:
    handler, up = handler_with()
    for name in ("web.shop.svc.cluster.local", "big.shop.svc.cluster.local", "cluster.local"):
        r = ask(handler, name, "ANY", peer=OUTSIDE, use_edns=False)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and not r.answer, name
        assert r.authority[0].rdtype == dns.rdatatype.SOA
    assert ask(handler, "nope.shop.svc.cluster.local", "ANY").rcode() == dns.rcode.NXDOMAIN
    assert up.forwarded == 0


def test_any_for_other_names_is_one_synthesized_hinfo() -> None:
    handler, up = handler_with()
    for tcp in (False, True):
        for edns in ({"use_edns": False}, {"use_edns": 0, "want_dnssec": True, "payload": 4096}):
            r = ask(handler, "Example.COM", "ANY", peer="127.0.0.1", tcp=tcp, **edns)
            assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AA
            assert [(rr.name.to_text(), rr.rdtype, rr.ttl) for rr in r.answer] == [("Example.COM.", dns.rdatatype.HINFO, 3600)]
            hinfo = r.answer[0][0]
            assert (hinfo.cpu, hinfo.os) == (b"RFC8482", b"")
            assert not r.authority and (r.edns == 0) == ("payload" in edns)
    assert up.forwarded == 0, "ANY is never forwarded"
    assert ask(handler, "example.com", "ANY", peer=OUTSIDE).rcode() == dns.rcode.REFUSED
    no_upstream, _ = handler_with(upstream=False)
    assert ask(no_upstream, "example.com", "ANY").rcode() == dns.rcode.REFUSED


def test_notimp_echoes_the_question() -> None:
    handler, _ = handler_with()
    q = dns.message.make_query("web.shop.svc.cluster.local", "SOA", use_edns=0)
    q.set_opcode(dns.opcode.NOTIFY)
    r = dns.message.from_wire(handler.respond(q.to_wire(), False, OUTSIDE))  # type: ignore[arg-type]
    assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == dns.opcode.NOTIFY and r.question == q.question and r.edns == 0


def test_rate_limiter_bucket_and_slip() -> None:
    clock = Clock()
    rl = RateLimiter(20, clock=clock)
    verdicts = [rl.check("192.0.2.1") for _ in range(120)]
    assert verdicts[:20] == [SEND] * 20
    assert verdicts[20:] == [DROP, SLIP] * 50, "every 2nd dropped response slips"
    assert rl.check("192.0.2.200") != SEND, "the same /24 shares the bucket"
    assert rl.check("192.0.3.1") == SEND
    clock.now += 0.5
    assert [rl.check("192.0.2.1") for _ in range(12)].count(SEND) == 10, "refills at 20/s"
    clock.now += 60
    assert [rl.check("192.0.2.1") for _ in range(30)].count(SEND) == 20, "a burst of at most 20"
    assert rl.dropped > 0 and rl.slipped > 0


def test_rate_limiter_prefixes() -> None:
    assert prefix("10.1.2.3") == prefix("10.1.2.250") != prefix("10.1.3.3")
    assert prefix("2001:db8:0:ff::1") == prefix("2001:db8:0:1::2") != prefix("2001:db8:0:100::1")  # /56
    assert prefix("::ffff:10.1.2.3") == prefix("10.1.2.3")
    assert prefix("fe80::1%eth0") == prefix("fe80::2")


def test_rate_limiter_forgets_idle_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from clusterdns.serve import ratelimit

    monkeypatch.setattr(ratelimit, "MAX_PREFIXES", 100)
    clock = Clock()
    rl = RateLimiter(5, clock=clock)
    for i in range(1000):
        rl.check(f"10.{i // 256}.{i % 256}.1")
        clock.now += 0.01
    assert len(rl.buckets) <= 100


def test_slip_is_header_and_question_with_tc() -> None:
    handler, _ = handler_with()
    q = dns.message.make_query("big.shop.svc.cluster.local", "A", use_edns=0, payload=4096)
    full = handler.respond(q.to_wire(), False, "127.0.0.1")
    assert isinstance(full, bytes) and len(full) > 512
    slip = truncated(full)
    r = dns.message.from_wire(slip)
    assert r.flags & dns.flags.TC and r.id == q.id and r.question == q.question and not r.answer and not r.additional
    assert len(slip) <= len(q.to_wire()), "a slip is no bigger than the query"
    assert truncated(full[:12]) == full[:2] + bytes((full[2] | 2, full[3])) + b"\0" * 8


class FakeTransport:
    """Enough of asyncio.Transport for TCPConnection: records writes, models a peer that reads
    nothing until `drain()`, and calls pause_writing/resume_writing as asyncio does."""

    def __init__(self, protocol: tcp_listener.TCPConnection) -> None:
        self.protocol = protocol
        self.written = bytearray()
        self.unread = 0
        self.high = self.low = 0
        self.protocol_paused = False
        self.reading = True
        self.closed = self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.high, self.low = high, low

    def write(self, data: bytes) -> None:
        assert not self.is_closing()
        self.written += data
        self.unread += len(data)
        if self.unread > self.high and not self.protocol_paused:
            self.protocol_paused = True
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.unread = 0
        if self.protocol_paused:
            self.protocol_paused = False
            self.protocol.resume_writing()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def replies(self) -> list[dns.message.Message]:
        out, pos = [], 0
        while pos < len(self.written):
            size = struct.unpack_from("!H", self.written, pos)[0]
            out.append(dns.message.from_wire(bytes(self.written[pos + 2 : pos + 2 + size])))
            pos += 2 + size
        return out


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def framed(*names: str, rdtype: str = "A") -> bytes:
    return b"".join(struct.pack("!H", len(w)) + w for w in (dns.message.make_query(n, rdtype).to_wire() for n in names))


def connect(server: tcp_listener.TCPServer) -> tuple[tcp_listener.TCPConnection, FakeTransport]:
    conn = tcp_listener.TCPConnection(server)
    transport = FakeTransport(conn)
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def tcp_server(**config: Any) -> tcp_listener.TCPServer:
    handler, _ = handler_with(**config)
    return tcp_listener.TCPServer(handler, ListenerStats("dns://127.0.0.1:53", "tcp", 1), handler.config.tcp_max_queries)


def test_client_that_does_not_read_is_not_read_from() -> None:
    async def scenario() -> None:
        conn, t = connect(tcp_server())
        assert t.high == tcp_listener.TCP_WRITE_HIGH
        t.high = 64 * 1024  # about 60 replies of ~1 KB
        conn.data_received(framed(*["big.shop.svc.cluster.local"] * 500))
        first = len(t.replies())
        assert 50 < first < 500 and not t.reading, "stopped answering and reading once the queue was full"
        conn.data_received(b"")  # a read already in flight adds nothing while paused
        assert len(t.replies()) == first
        while conn.paused:
            t.drain()
        assert len(t.replies()) == 500 and t.reading, "the rest answered once the client read"
        assert not t.is_closing()
    run(scenario)


def test_client_that_never_reads_is_cut_off_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_listener, "TCP_IDLE_TIMEOUT", 0.2)

    async def scenario() -> None:
        conn, t = connect(tcp_server())
        t.high = 16 * 1024
        conn.data_received(framed(*["big.shop.svc.cluster.local"] * 100))
        assert conn.paused
        await asyncio.sleep(0.35)
        assert t.aborted, "aborted, not closed: close() would wait for a flush that never comes"
    run(scenario)


def test_queries_per_connection_are_capped() -> None:
    async def scenario() -> None:
        unlimited, t = connect(tcp_server())
        t.high = 1 << 30  # a client that reads everything
        unlimited.data_received(framed(*[f"q{i}.shop.svc.cluster.local" for i in range(3000)]))
        assert len(t.replies()) == 3000 and not t.is_closing(), "no limit by default"
        conn, t = connect(tcp_server(tcp_max_queries=1000))
        conn.data_received(framed(*[f"q{i}.shop.svc.cluster.local" for i in range(600)]))
        assert len(t.replies()) == 600 and not t.closed
        conn.data_received(framed(*[f"q{i}.shop.svc.cluster.local" for i in range(405)]))
        assert len(t.replies()) == 1000 and t.closed and not t.aborted, "answered up to the cap, then closed"
        conn.data_received(framed("web.shop.svc.cluster.local"))  # anything after is ignored
        assert len(t.replies()) == 1000
    run(scenario)


def test_slowloris_is_closed_after_the_idle_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dribbling bytes of a length prefix or of a message does not keep a connection open;
    complete queries do."""
    # A second between the client's sends and the timer: a stalled loop (a busy machine)
    # must not let the timer run before the complete query it was re-armed for.
    monkeypatch.setattr(tcp_listener, "TCP_IDLE_TIMEOUT", 1.0)

    async def scenario() -> None:
        server = tcp_server()
        query = framed("web.shop.svc.cluster.local")
        prefix_only, tp = connect(server)
        half, th = connect(server)
        busy, tb = connect(server)
        started = asyncio.get_running_loop().time()
        prefix_only.data_received(query[:1])
        for i in range(20):  # 2 s of dribbling, one byte each 0.1 s
            await asyncio.sleep(0.1)
            if not th.is_closing():
                half.data_received(query[i : i + 1])
            busy.data_received(query)
        assert tp.closed and th.closed, "closed by the idle timer although bytes kept coming"
        assert not tb.is_closing() and len(tb.replies()) == 20
        assert asyncio.get_running_loop().time() - started >= 1.0
    run(scenario)


def test_connection_cap_refuses_cleanly_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        server = tcp_server()
        conns = [connect(server) for _ in range(tcp_listener.TCP_MAX_CONNECTIONS)]
        assert len(server.connections) == tcp_listener.TCP_MAX_CONNECTIONS
        with caplog.at_level(logging.WARNING, logger="clusterdns"):
            refused = [connect(server) for _ in range(5)]
        assert all(t.closed and not t.written for _, t in refused)
        assert len(server.connections) == tcp_listener.TCP_MAX_CONNECTIONS and server.refused == 5
        assert sum("refusing new ones" in r.message for r in caplog.records) == 1
        for conn, _ in refused:
            conn.connection_lost(None)
        conns[0][0].connection_lost(None)
        _, t = connect(server)
        assert not t.closed, "room again once one closed"
    run(scenario)
