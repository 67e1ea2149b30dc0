"""The CoreDNS case format (tests/cases/README.md): loading a case file, asking a server a case's
question, and comparing the reply (or a zone transfer) with the case."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import yaml

from tests.helpers.process import CASES, UNIT_FIXTURE, Server, ServerPool, read_frame

CASES_FILE = CASES / "coredns-unit.yaml"
DATA = yaml.safe_load(CASES_FILE.read_text())
FIXTURE = UNIT_FIXTURE

# clusterdns flags equivalent to each profile's CoreDNS options. Every profile pins
# what kubeadm and the plugin disagree on (pods, ttl) and serves only cluster.local.
BASE = ["--zone", "cluster.local", "--pods", "disabled", "--ttl", "5", "--fallthrough", "none"]
PROFILES: dict[str, list[str]] = {
    "default": [],
    "unit-ns-testns": ["--namespaces", "testns"],
    "unit-selfip": ["--ns-address", "127.0.0.1"],
    "unit-upstream": [],  # plus --upstream <mock>, added when the mock starts
    "unit-ignore-empty": ["--ignore-empty-service"],
    "unit-pods-insecure": ["--pods", "insecure"],
    "unit-pods-verified": ["--pods", "verified"],
    "unit-ttl30": ["--ttl", "30"],
    "unit-ttl3600": ["--ttl", "3600"],
    "unit-noendpoints": ["--noendpoints"],
    "unit-axfr": ["--namespaces", "testns,kube-system", "--ns-address", "10.0.0.10", "--transfer-to", "*"],
    "unit-axfr-dualstack": ["--namespaces", "testns,kube-system", "--ns-address", "10.0.0.10", "--ns-address", "fd00::10", "--transfer-to", "*"],
}


def profile_cases() -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in DATA["cases"]]


def interwebs(pool: ServerPool) -> str:
    """The cases' mock upstream for the unit-upstream profile (UDP only, TC for ext.interwebs.test)."""
    mock = DATA["mocks"]["mock-upstream-interwebs"]
    return pool.upstream(records=mock["records"], udp_only=True, truncate_udp={"ext.interwebs.test."})


def canonical(line: str, serial: int | None = None) -> str:
    """One RR in presentation form, rdata canonicalised, owner spelled as given."""
    owner, ttl, rdclass, rdtype, rdata = line.split(None, 4)
    if rdtype == "SOA" and serial is not None:
        rdata = rdata.replace("SERIAL", str(serial))
    rd = dns.rdata.from_text(dns.rdataclass.from_text(rdclass), dns.rdatatype.from_text(rdtype), rdata)
    return f"{owner} {ttl} {rdclass} {rdtype} {rd.to_text()}"


def section(msg: dns.message.Message, name: str) -> list[str]:
    lines = []
    for rrset in getattr(msg, name):
        for rd in rrset:
            rdclass = dns.rdataclass.to_text(rrset.rdclass)
            rdtype = dns.rdatatype.to_text(rrset.rdtype)
            lines.append(f"{rrset.name.to_text()} {rrset.ttl} {rdclass} {rdtype} {rd.to_text()}")
    return lines


def serial_of(msg: dns.message.Message) -> int | None:
    for rrset in msg.answer + msg.authority:
        if rrset.rdtype == dns.rdatatype.SOA:
            return rrset[0].serial
    return None


def ask(server: Server, case: dict, tcp: bool) -> dns.message.Message:
    query = dns.message.make_query(dns.name.from_text(case["qname"]), case["qtype"], use_edns=0, payload=1232)
    if tcp:
        return dns.query.tcp(query, server.host, port=server.port, timeout=5)
    return dns.query.udp(query, server.host, port=server.port, timeout=5)


def exact(lines: list[str], case: dict) -> list[str]:
    """Sections compared as multisets, names spelled exactly (CoreDNS echoes the question)."""
    return sorted(lines)


def check(msg: dns.message.Message, case: dict, normalise: Callable[[list[str], dict], list[str]] = exact) -> None:
    """A reply against a case: rcode, the three sections through `normalise`, AA/RA
    (an `aa: false` case is an upstream's reply passed on: its own AA the first time, AA set
    once it comes from the cache, as CoreDNS's item.go toMsg sets it), CNAME order, TC."""
    assert dns.rcode.to_text(msg.rcode()) == case["rcode"], msg.to_text()
    serial = serial_of(msg)
    for name in ("answer", "authority", "additional"):
        want = normalise([canonical(line, serial) for line in case.get(name, [])], case)
        assert normalise(section(msg, name), case) == want, f"{name} differs:\n{msg.to_text()}"
    if case["rcode"] != "REFUSED":
        if case.get("aa", True):
            assert msg.flags & dns.flags.AA, "authoritative answers carry AA (C1)"
            assert not msg.flags & dns.flags.RA, "no RA on our zone's answers (C1)"
        elif not msg.flags & dns.flags.AA:
            assert msg.flags & dns.flags.RA, "the upstream's reply is passed on as it is (with its RA)"
    if case.get("answer") and case["answer"][0].split()[3] == "CNAME":
        assert msg.answer[0].rdtype == dns.rdatatype.CNAME, "a CNAME comes before its target's records"
    if "tc" in case:
        assert bool(msg.flags & dns.flags.TC) == case["tc"]


def check_transfer(server: Server, case: dict) -> None:
    """A zone transfer read as a multi-message TCP stream (RFC 5936 2.2): SOA first and
    last, records compared as a multiset, duplicates kept (one_rr_per_rrset)."""
    query = dns.message.make_query(dns.name.from_text(case["qname"]), case["qtype"])
    if case.get("ixfr_serial") == "current":
        current = ask(server, {"qname": case["qname"], "qtype": "SOA"}, tcp=False).answer[0][0]
        query.authority.append(dns.rrset.from_rdata(dns.name.from_text(case["qname"]), 0, current))
    wire = query.to_wire()
    answers: list[str] = []
    serial = None
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        while True:
            msg = dns.message.from_wire(read_frame(sock), one_rr_per_rrset=True)
            assert dns.rcode.to_text(msg.rcode()) == case["rcode"]
            serial = serial if serial is not None else serial_of(msg)
            answers += section(msg, "answer")
            soas = sum(1 for a in answers if " SOA " in a)
            if msg.rcode() != dns.rcode.NOERROR or soas >= 2 or (case.get("ixfr_serial") and soas == 1):
                break
    want = [canonical(line, serial) for line in case["answer"]]
    if case["rcode"] != "NOERROR":
        assert answers == want == []
        return
    assert " SOA " in answers[0] and " SOA " in answers[-1]
    assert sorted(answers) == sorted(want), "\n".join(sorted(set(answers) ^ set(want)))
