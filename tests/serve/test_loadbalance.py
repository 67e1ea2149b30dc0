"""loadbalance.py on reply bytes: which records move, which never do (CoreDNS's
plugin/loadbalance/loadbalance_test.go, by counts and order of kinds, as its tests check)."""

from __future__ import annotations

import random
from collections import Counter

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from clusterdns.serve.loadbalance import balanced, runs, shuffled

QNAME = "region2.skydns.test."


def reply(qtype: str = "SRV", answer: list[str] = (), additional: list[str] = (), rcode: int = 0) -> bytes:
    """A reply to QNAME/qtype whose sections hold `TYPE RDATA` records owned by QNAME."""
    msg = dns.message.make_response(dns.message.make_query(QNAME, qtype))
    msg.set_rcode(rcode)
    for section, records in ((msg.answer, answer), (msg.additional, additional)):
        for text in records:
            rtype, rdata = text.split(" ", 1)
            section.append(dns.rrset.from_text(QNAME, 30, "IN", rtype, rdata))
    return msg.to_wire()


def kinds(wire: bytes, section: str = "answer") -> list[str]:
    msg = dns.message.from_wire(wire)
    return [dns.rdatatype.to_text(rrset.rdtype) for rrset in getattr(msg, section) for _ in rrset]


def records(wire: bytes, section: str = "answer") -> list[str]:
    msg = dns.message.from_wire(wire)
    return [rd.to_text() for rrset in getattr(msg, section) for rd in rrset]


A3 = ["A 10.0.0.1", "A 10.0.0.2", "A 10.0.0.3"]


def test_three_addresses_come_in_every_order() -> None:
    """roundRobinShuffle is a Fisher-Yates permutation: all 3! orders occur (TestLoadBalanceRandom)."""
    wire = reply("A", A3)
    spec = runs(wire)
    assert spec is not None
    rng = random.Random(7)
    seen = Counter(tuple(records(wire[:2] + shuffled(wire[2:], spec, rng))) for _ in range(600))
    assert len(seen) == 6
    assert all(sorted(order) == sorted(r.split()[1] for r in A3) for order in seen)
    assert min(seen.values()) > 50  # about 100 each


# loadbalance_test.go TestLoadBalanceRandom: counts per kind are kept, and the kinds keep
# their places (CoreDNS also moves CNAMEs ahead; our sections already come that way).
# (answer as sent, the kinds that must stay where they are, the positions that move)
KEPT_IN_PLACE = [
    (["CNAME a.example.", "A 10.0.0.1", "A 10.0.0.2", "MX 10 mx1.example.", "MX 20 mx2.example."], {0: "CNAME"}, [(1, 2), (3, 4)]),
    (["SRV 0 50 80 a.example.", "SRV 0 50 80 b.example.", "A 10.0.0.1", "AAAA ::1"], {0: "SRV", 1: "SRV"}, [(2, 3)]),
]


@pytest.mark.parametrize(("answer", "fixed", "moving"), KEPT_IN_PLACE)
def test_each_kind_keeps_its_place_and_count(answer: list[str], fixed: dict[int, str], moving: list[tuple[int, int]]) -> None:
    wire = reply("SRV", answer)
    before = records(wire)
    seen = set()
    for _ in range(100):
        out = records(balanced(wire))
        assert sorted(out) == sorted(before)
        assert {i: kinds(balanced(wire))[i] for i in fixed} == fixed
        assert all(out[i] == before[i] for i in fixed)
        for first, last in moving:
            assert sorted(out[first : last + 1]) == sorted(before[first : last + 1])
        seen.add(tuple(out))
    assert len(seen) == 2 ** len(moving)  # each two-record run comes in both orders


def test_a_and_aaaa_are_shuffled_together() -> None:
    """The address run holds A and AAAA alike (loadbalance.go roundRobin: address = A + AAAA)."""
    wire = reply("ANY", ["A 10.0.0.1", "AAAA ::1", "A 10.0.0.2", "AAAA ::2"])
    firsts = {kinds(balanced(wire))[0] for _ in range(200)}
    assert firsts == {"A", "AAAA"}


def test_the_additional_section_is_shuffled_too() -> None:
    wire = reply("SRV", ["SRV 0 50 80 a.example."], additional=A3)
    orders = {tuple(records(balanced(wire), "additional")) for _ in range(200)}
    assert len(orders) == 6


@pytest.mark.parametrize("rcode", [dns.rcode.NXDOMAIN, dns.rcode.SERVFAIL])
def test_only_noerror_replies_are_shuffled(rcode: int) -> None:
    """loadbalance.go: `if res.Rcode != dns.RcodeSuccess` the reply is written as it is."""
    assert runs(reply("A", A3, rcode=rcode)) is None


@pytest.mark.parametrize("qtype", ["AXFR", "IXFR"])
def test_zone_transfers_keep_their_order(qtype: str) -> None:
    """TestLoadBalanceXFR: the SOA stays first and last."""
    assert runs(reply(qtype, A3)) is None


def test_one_address_is_left_alone() -> None:
    assert runs(reply("A", ["A 10.0.0.1"])) is None


def test_a_run_a_pointer_points_into_never_moves() -> None:
    """Moving records that a later name is compressed against would break the message."""
    msg = dns.message.make_response(dns.message.make_query("x.example.", "A"))
    # The A records' owners are written in full (not the question's name); the CNAME
    # target after them is compressed against the first owner.
    msg.answer.append(dns.rrset.from_text("web.example.", 30, "IN", "A", "10.0.0.1"))
    msg.answer.append(dns.rrset.from_text("api.example.", 30, "IN", "A", "10.0.0.2"))
    msg.additional.append(dns.rrset.from_text("x.example.", 30, "IN", "CNAME", "web.example."))
    wire = msg.to_wire()
    assert runs(wire) is None
    assert balanced(wire) == wire


def test_a_cut_short_reply_is_sent_as_it_is() -> None:
    wire = reply("A", A3)
    assert runs(wire[:-3]) is None
