"""The handler on raw wire bytes: EDNS0, truncation, malformed packets, flags, caching."""

from __future__ import annotations

import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.settings import Config
from clusterdns.model import ClusterState, EndpointAddress, EndpointGroup, EndpointPort, Service, ServicePort
from clusterdns.serve.handler import Handler
from clusterdns.snapshot.build import build as build_snapshot

BIG = 100  # endpoints of the big headless Service: too many for 512 bytes


def make_state() -> ClusterState:
    web = Service("shop", "web", cluster_ips=("10.96.12.34",), ports=(ServicePort("http", "TCP", 80, 8080), ServicePort("", "TCP", 9090)))
    addresses = tuple(EndpointAddress(f"10.244.{i // 250}.{i % 250 + 1}") for i in range(BIG))
    big = Service("shop", "big", headless=True, endpoints=(EndpointGroup(addresses, (EndpointPort("http", "TCP", 8080),)),))
    return ClusterState(services=(big, web), namespaces=frozenset({"default", "kube-system", "shop"}))


@pytest.fixture(scope="module")
def handler() -> Handler:
    snap = build_snapshot(make_state(), Config(zones=("cluster.local", "in-addr.arpa")))
    return Handler(snap)


def ask(handler: Handler, msg: dns.message.Message | bytes, tcp: bool = False) -> dns.message.Message:
    wire = msg if isinstance(msg, bytes) else msg.to_wire()
    reply = handler.respond(wire, tcp)
    assert isinstance(reply, bytes)
    return dns.message.from_wire(reply)


def test_question_spelling_echoed_and_flags(handler: Handler) -> None:
    q = dns.message.make_query("WEB.Shop.svc.Cluster.Local.", "A")
    q.flags |= dns.flags.CD | dns.flags.AD
    r = ask(handler, q)
    assert r.id == q.id
    assert r.question[0].name.to_text() == "WEB.Shop.svc.Cluster.Local."
    assert r.answer[0].name.to_text() == "WEB.Shop.svc.Cluster.Local."
    assert r.flags & dns.flags.AA and r.flags & dns.flags.RD and r.flags & dns.flags.CD
    assert not r.flags & (dns.flags.RA | dns.flags.AD), "no RA, AD never copied (DESIGN pitfalls)"


def test_cached_answer_serves_other_spelling(handler: Handler) -> None:
    first = ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "SRV"))
    second = ask(handler, dns.message.make_query("Web.SHOP.svc.cluster.local", "SRV"))
    assert second.answer[0].name.to_text() == "Web.SHOP.svc.cluster.local."
    assert {rd.to_text() for rd in second.answer[0]} == {rd.to_text() for rd in first.answer[0]}
    assert len(first.answer[0]) == 2  # named and unnamed port on the bare name (C5)


def test_opt_only_when_query_had_one(handler: Handler) -> None:
    plain = ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "A", use_edns=False))
    assert plain.edns == -1
    edns = ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "A", use_edns=0, want_dnssec=True))
    assert edns.edns == 0 and edns.ednsflags & dns.flags.DO
    nx = ask(handler, dns.message.make_query("nope.shop.svc.cluster.local", "A", use_edns=0))
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.edns == 0, "OPT on negative answers too"


def test_badvers(handler: Handler) -> None:
    r = ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "A", use_edns=1))
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0


def test_the_class_is_refused_before_the_edns_version_is_looked_at(handler: Handler) -> None:
    """CoreDNS's server.go ServeDNS refuses a class other than IN before edns.Version()."""
    r = ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "A", rdclass="CH", use_edns=1))
    assert r.rcode() == dns.rcode.REFUSED and r.edns == 0


def test_udp_truncation_keeps_question(handler: Handler) -> None:
    q = dns.message.make_query("big.shop.svc.cluster.local", "A", use_edns=False)
    wire = handler.respond(q.to_wire(), False)
    assert isinstance(wire, bytes) and len(wire) <= 512
    r = dns.message.from_wire(wire)
    assert r.flags & dns.flags.TC and r.question[0].name.to_text() == "big.shop.svc.cluster.local."
    assert 0 < len(r.answer[0]) < BIG
    full = ask(handler, q, tcp=True)
    assert not full.flags & dns.flags.TC and len(full.answer[0]) == BIG


def test_edns_buffer_size_respected(handler: Handler) -> None:
    q = dns.message.make_query("big.shop.svc.cluster.local", "A", use_edns=0, payload=4096)
    wire = handler.respond(q.to_wire(), False)
    assert isinstance(wire, bytes) and 512 < len(wire) <= 4096
    r = dns.message.from_wire(wire)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == BIG


def header(qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


QUESTION = b"\x03web\x04shop\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"


@pytest.mark.parametrize(
    "packet, expect",
    [
        (b"", None),
        (b"\x12", None),
        (header()[:11], None),
        (header(flags=0x8100) + QUESTION, None),  # a response: never answered
        (header(flags=0x2100) + QUESTION, dns.rcode.NOTIMP),  # UPDATE opcode
        (header(flags=0x1000) + QUESTION, dns.rcode.NOTIMP),  # NOTIFY opcode
        (header(qd=0), dns.rcode.FORMERR),
        (header(qd=2) + QUESTION + QUESTION, dns.rcode.FORMERR),
        (header() + QUESTION[:10], dns.rcode.FORMERR),  # cut inside the name
        (header() + b"\xc0\x0c\x00\x01\x00\x01", dns.rcode.FORMERR),  # pointer loop in the question
        (header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", dns.rcode.FORMERR),  # label over 63
        (header() + b"\x3f" + b"a" * 63 + (b"\x3f" + b"b" * 63) * 4 + b"\x00\x00\x01\x00\x01", dns.rcode.FORMERR),  # name over 255
        (header(ar=1) + QUESTION, dns.rcode.FORMERR),  # count says more than there is
        (header() + QUESTION + b"junk", dns.rcode.FORMERR),  # trailing bytes
        # (OPTs that are broken or misplaced: test_a_formerr_about_edns_carries_our_opt)
    ],
)
def test_malformed(handler: Handler, packet: bytes, expect: int | None) -> None:
    reply = handler.respond(packet, False)
    if expect is None:
        assert reply is None
        return
    assert isinstance(reply, bytes)
    assert reply[:2] == packet[:2], "the ID is echoed"
    r = dns.message.from_wire(reply)
    assert r.rcode() == expect and r.flags & dns.flags.QR
    assert r.edns == -1, "no OPT was readable in the query, so none in the reply (RFC 6891 7)"


OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00"  # root owner, OPT, UDP 1232, version 0, DO; then RDLENGTH and options


# RFC 6891 7: "If there is a problem with processing the OPT record itself, such as an option
# value that is badly formatted [...], a FORMERR MUST be returned. If this occurs, the response
# MUST include an OPT record", so that a client can tell bad EDNS from no EDNS (miekg/dns, and
# so CoreDNS, cannot unpack such an OPT either and answers FORMERR, without the OPT).
@pytest.mark.parametrize(
    "packet",
    [
        header(ar=1) + QUESTION + OPT + b"\x00\x06" + b"\x00\x0a\x00\x32\x01\x02",  # an option's length runs past RDLENGTH
        header(ar=1) + QUESTION + OPT + b"\x00\x03" + b"\x00\x0a\x00",  # an option cut inside its header
        header(ar=2) + QUESTION + (OPT + b"\x00\x00") * 2,  # two OPTs (6.1.1)
        header(an=1) + QUESTION + OPT + b"\x00\x00",  # an OPT in the answer section (6.1.1)
        header(ar=1) + QUESTION + OPT + b"\x00\x00" + b"junk",  # trailing bytes after a good OPT
    ],
    ids=["option-overruns", "option-header-cut", "two-opts", "opt-in-answer", "trailing-bytes"],
)
def test_a_formerr_about_edns_carries_our_opt(handler: Handler, packet: bytes) -> None:
    reply = handler.respond(packet, False)
    assert isinstance(reply, bytes)
    r = dns.message.from_wire(reply)
    assert r.rcode() == dns.rcode.FORMERR
    assert r.edns == 0 and r.payload == 1232, "our OPT: version 0, our UDP size"
    assert r.ednsflags & dns.flags.DO, "the DO bit echoed (RFC 3225 3)"


def test_whole_edns_options_are_read_past(handler: Handler) -> None:
    """Options we do not know are ignored (RFC 6891 6.1.2), however many, as long as each is whole."""
    cookie, padding = b"\x00\x0a\x00\x08" + b"\x01" * 8, b"\x00\x0c\x00\x00"
    reply = handler.respond(header(ar=1) + QUESTION + OPT + b"\x00\x10" + cookie + padding, False)
    assert isinstance(reply, bytes)
    r = dns.message.from_wire(reply)
    assert r.rcode() == dns.rcode.NOERROR and r.answer and r.edns == 0 and not r.options


def test_non_in_class_and_axfr_refused(handler: Handler) -> None:
    assert ask(handler, dns.message.make_query("web.shop.svc.cluster.local", "A", rdclass="CH")).rcode() == dns.rcode.REFUSED
    assert ask(handler, dns.message.make_query("cluster.local", "AXFR")).rcode() == dns.rcode.REFUSED


def test_out_of_zone_without_upstream_refused(handler: Handler) -> None:
    r = ask(handler, dns.message.make_query("example.com", "A"))
    assert r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA
    assert r.question[0].name.to_text() == "example.com."


def test_reverse_of_unknown_ip_is_nxdomain_in_served_reverse_zone(handler: Handler) -> None:
    r = ask(handler, dns.message.make_query("9.9.9.9.in-addr.arpa", "PTR"))
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert r.authority[0].name.to_text() == "in-addr.arpa." and r.authority[0].rdtype == dns.rdatatype.SOA
    ptr = ask(handler, dns.message.make_query("34.12.96.10.in-addr.arpa", "PTR"))
    assert ptr.answer[0][0].to_text() == "web.shop.svc.cluster.local."


def test_unnamed_port_has_no_srv(handler: Handler) -> None:
    r = ask(handler, dns.message.make_query("_9090._tcp.web.shop.svc.cluster.local", "SRV"))
    assert r.rcode() == dns.rcode.NXDOMAIN  # S6: no port name matches


def test_edns_option_ignored() -> None:
    snap = build_snapshot(make_state(), Config())
    handler = Handler(snap)
    q = dns.message.make_query("web.shop.svc.cluster.local", "A", use_edns=0, options=[dns.edns.GenericOption(65001, b"xyz")])
    r = ask(handler, q)
    assert r.rcode() == dns.rcode.NOERROR and r.edns == 0 and not r.options


def test_reverse_label_with_dots_is_not_an_address(handler: Handler) -> None:
    """The four labels of a reverse name cannot be smuggled in as one label holding dots."""
    q = dns.message.make_query(dns.name.Name([b"34.12.96.10", b"in-addr", b"arpa", b""]), "PTR")
    assert ask(handler, q).rcode() == dns.rcode.NXDOMAIN
