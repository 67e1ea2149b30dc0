"""forwarder.py against real upstream servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.addresses import Address
from clusterdns.errors import ConfigError
from clusterdns.upstream.resolvconf import parse_upstream, upstreams_from_resolv_conf
from tests.helpers.process import closed_port, wait_until
from tests.helpers.upstream import Upstream
from tests.helpers.upstream_calls import forward, lookup

RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 30",
    "ext.interwebs.test. 5 IN A 1.2.3.4",
    "www.interwebs.test. 5 IN CNAME ext.interwebs.test.",
] + [f"big.interwebs.test. 5 IN A 10.0.0.{i}" for i in range(1, 41)]
CLIENT_ID = 0x1234


def query(qname: str = "ext.interwebs.test.", qtype: str = "A", **kw: object) -> bytes:
    q = dns.message.make_query(qname, qtype, id=CLIENT_ID, **kw)  # type: ignore[arg-type]
    return q.to_wire()


def run_forward(wire: bytes, upstreams: list[Address], timeout: float = 2.5, **kw: bool) -> tuple[dns.message.Message | None, float]:
    """forward() in a fresh event loop: (parsed reply or None, seconds taken)."""
    start = time.monotonic()
    reply = asyncio.run(forward(wire, upstreams, timeout, **kw))
    elapsed = time.monotonic() - start
    return (dns.message.from_wire(reply) if reply is not None else None), elapsed


def addresses(reply: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in reply.answer for rd in rrset if rrset.rdtype == dns.rdatatype.A}


def test_udp_answer_carries_client_id_and_upstream_sees_a_fresh_one() -> None:
    with Upstream(RECORDS) as up:
        reply, _ = run_forward(query(use_edns=0, payload=1232, want_dnssec=True), [up.address])
        assert reply is not None
        assert reply.id == CLIENT_ID
        assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.RA
        assert addresses(reply) == {"1.2.3.4"}
        assert reply.edns == 0  # the upstream echoed our OPT
        assert up.queries == [("udp", "ext.interwebs.test.", dns.rdatatype.A)]
        # The upstream got the client's query byte for byte, except the ID.
        sent = dns.message.from_wire(up.received[0])
        assert sent.flags & dns.flags.RD and sent.payload == 1232 and sent.ednsflags & dns.flags.DO
        assert up.received[0][2:] == query(use_edns=0, payload=1232, want_dnssec=True)[2:]


def test_each_attempt_uses_a_new_random_id() -> None:
    with Upstream(RECORDS) as up:
        for _ in range(4):
            run_forward(query(), [up.address])
        ids = [int.from_bytes(wire[:2], "big") for wire in up.received]
        assert len(set(ids)) > 1 and set(ids) != {CLIENT_ID}


def test_question_case_is_kept_and_matched_case_insensitively() -> None:
    with Upstream(RECORDS) as up:
        reply, _ = run_forward(query("ExT.InterWebs.TEST."), [up.address])
        assert reply is not None and addresses(reply) == {"1.2.3.4"}
        assert reply.question[0].name.to_text() == "ExT.InterWebs.TEST."


def test_nxdomain_is_an_answer_not_a_failure() -> None:
    with Upstream(RECORDS) as first, Upstream(RECORDS) as second:
        reply, _ = run_forward(query("nope.interwebs.test."), [first.address, second.address])
        assert reply is not None and reply.rcode() == dns.rcode.NXDOMAIN
        assert reply.authority and reply.authority[0].rdtype == dns.rdatatype.SOA
        assert second.queries == []


def test_truncated_udp_is_retried_over_tcp() -> None:
    with Upstream(RECORDS, truncate_udp={"big.interwebs.test."}) as up:
        reply, _ = run_forward(query("big.interwebs.test."), [up.address])
        assert reply is not None and reply.id == CLIENT_ID
        assert not reply.flags & dns.flags.TC
        assert len(addresses(reply)) == 40
        assert [t for t, _, _ in up.queries] == ["udp", "tcp"]


def test_truncated_reply_is_returned_when_tcp_fails() -> None:
    with Upstream(RECORDS, truncate_udp={"big.interwebs.test."}, udp_only=True) as up:
        reply, elapsed = run_forward(query("big.interwebs.test."), [up.address])
        assert reply is not None and reply.id == CLIENT_ID
        assert reply.flags & dns.flags.TC
        assert len(addresses(reply)) == 40  # the stub keeps the records, as CoreDNS's does
        assert up.count("udp") == 1 and up.count("tcp") == 0
        assert elapsed < 1.0  # the TCP connect was refused, not timed out


def test_tcp_client_goes_straight_to_tcp() -> None:
    with Upstream(RECORDS) as up:
        reply, _ = run_forward(query(), [up.address], tcp=True)
        assert reply is not None and reply.id == CLIENT_ID and addresses(reply) == {"1.2.3.4"}
        assert [t for t, _, _ in up.queries] == ["tcp"]


def test_tcp_only_path_fails_over_when_tcp_is_refused() -> None:
    with Upstream(RECORDS, udp_only=True) as first, Upstream(RECORDS) as second:
        reply, elapsed = run_forward(query(), [first.address, second.address], tcp=True)
        assert reply is not None and addresses(reply) == {"1.2.3.4"}
        assert second.count("tcp") == 1 and elapsed < 1.0


def test_closed_port_fails_over_at_once() -> None:
    with Upstream(RECORDS) as up:
        reply, elapsed = run_forward(query(), [closed_port(), up.address])
        assert reply is not None and addresses(reply) == {"1.2.3.4"}
        assert elapsed < 1.0  # ICMP port unreachable, not the per-attempt timeout


def test_slow_upstream_leaves_time_for_the_next() -> None:
    # 2 s for two upstreams: each attempt gets 1 s, so the 1.5 s-slow one is abandoned in time.
    with Upstream(RECORDS, delay=1.5) as slow, Upstream(RECORDS) as fast:
        reply, elapsed = run_forward(query(), [slow.address, fast.address], timeout=2.0)
        assert reply is not None and addresses(reply) == {"1.2.3.4"}
        assert fast.count("udp") == 1 and elapsed < 2.0


def test_all_upstreams_dropping_gives_none_within_the_deadline() -> None:
    with Upstream(RECORDS, mode="drop") as first, Upstream(RECORDS, mode="drop") as second:
        reply, elapsed = run_forward(query(), [first.address, second.address], timeout=1.0)
        assert reply is None
        assert elapsed < 2.0
        wait_until(lambda: first.count("udp") == 1 and second.count("udp") == 1, "each upstream was asked once")


def test_no_upstreams_gives_none() -> None:
    assert run_forward(query(), [])[0] is None


@pytest.mark.parametrize("mode", ["garbage", "wrong_id"])
def test_bad_replies_are_ignored(mode: str) -> None:
    with Upstream(RECORDS, mode=mode) as bad:
        reply, elapsed = run_forward(query(), [bad.address], timeout=0.6)
        assert reply is None and elapsed < 1.6
    with Upstream(RECORDS, mode=mode) as bad, Upstream(RECORDS) as good:
        reply, _ = run_forward(query(), [bad.address, good.address], timeout=1.0)
        assert reply is not None and addresses(reply) == {"1.2.3.4"}


def test_bad_replies_do_not_end_the_wait_for_the_right_one() -> None:
    # The upstream sends garbage, a wrong-ID and a wrong-question reply before the real answer.
    with Upstream(RECORDS, mode="noisy") as up:
        reply, _ = run_forward(query(), [up.address])
        assert reply is not None and addresses(reply) == {"1.2.3.4"}
        assert reply.question[0].name.to_text() == "ext.interwebs.test."


@pytest.mark.parametrize("mode, rcode", [("refused", dns.rcode.REFUSED), ("servfail", dns.rcode.SERVFAIL)])
def test_refused_and_servfail_try_the_next_upstream(mode: str, rcode: int) -> None:
    with Upstream(RECORDS, mode=mode) as first, Upstream(RECORDS) as second:
        reply, _ = run_forward(query(), [first.address, second.address])
        assert reply is not None and reply.rcode() == dns.rcode.NOERROR
        wait_until(lambda: first.count("udp") == 1 and second.count("udp") == 1, "each upstream was asked once")
    # When nobody does better, the last such reply is passed on, with the client's ID.
    with Upstream(RECORDS, mode=mode) as only:
        reply, _ = run_forward(query(), [only.address, closed_port()])
        assert reply is not None and reply.rcode() == rcode and reply.id == CLIENT_ID


def test_unparseable_query_is_not_forwarded() -> None:
    with Upstream(RECORDS) as up:
        assert asyncio.run(forward(b"\x00\x01", [up.address])) is None
        assert up.queries == []


def test_lookup_returns_the_parsed_reply() -> None:
    with Upstream(RECORDS) as up:
        reply = asyncio.run(lookup("www.interwebs.test", dns.rdatatype.A, [up.address]))
        assert isinstance(reply, dns.message.Message)
        assert [r.rdtype for r in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert addresses(reply) == {"1.2.3.4"}
        sent = dns.message.from_wire(up.received[0])
        assert sent.flags & dns.flags.RD and sent.edns == 0 and sent.payload == 1232


def test_lookup_gives_none_when_nobody_answers() -> None:
    assert asyncio.run(lookup("ext.interwebs.test", dns.rdatatype.A, [closed_port()], timeout=0.5)) is None


RESOLV_CONF = """\
# written by a test
search default.svc.cluster.local svc.cluster.local
nameserver 127.0.0.53
nameserver 10.0.0.10   # trailing comment
; nameserver 10.9.9.9
nameserver 127.0.0.11
nameserver 0:0:0:0:0:0:0:1
nameserver fe80::1%eth0
nameserver 127.0.0.1
nameserver not-an-ip
nameserver
nameserver 10.0.0.10
options ndots:5
"""


def test_resolv_conf_nameservers(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text(RESOLV_CONF)
    assert upstreams_from_resolv_conf(str(path)) == [
        ("10.0.0.10", 53),
        ("127.0.0.11", 53),  # Docker's embedded DNS is a fine upstream
        ("::1", 53),
        ("127.0.0.1", 53),
    ]


def test_resolv_conf_excludes_our_own_addresses(tmp_path: Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text(RESOLV_CONF)
    exclude = [("127.0.0.1", 53), ("::1", 53), ("10.0.0.10", 5353)]
    assert upstreams_from_resolv_conf(str(path), exclude=exclude) == [("10.0.0.10", 53), ("127.0.0.11", 53)]


def test_resolv_conf_missing_or_empty(tmp_path: Path) -> None:
    assert upstreams_from_resolv_conf(str(tmp_path / "absent")) == []
    (tmp_path / "only-stub").write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    assert upstreams_from_resolv_conf(str(tmp_path / "only-stub")) == []


@pytest.mark.parametrize(
    "text, address",
    [
        ("1.2.3.4", ("1.2.3.4", 53)),
        ("1.2.3.4:5353", ("1.2.3.4", 5353)),
        ("[::1]:53", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_parse_upstream(text: str, address: Address) -> None:
    assert parse_upstream(text) == address


@pytest.mark.parametrize("text", ["dns.google", "1.2.3.4:99999", "[::1", "1.2.3.4:x"])
def test_parse_upstream_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_upstream(text)
