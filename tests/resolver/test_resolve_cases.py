"""Every case table (CoreDNS's own, tests/cases/coredns-unit.yaml; ours, parity.yaml and
corners.yaml) through `resolve(snapshot, question)` directly: no sockets, no wire format.

The same snapshot `serve` builds for each profile answers each case's question; the RCODE
and the three sections must be the case's. Cases whose answer comes from an upstream (an
out-of-zone CNAME target, a fallthrough, a name outside our zones) and zone transfers are
for the end-to-end runs (tests/e2e/); here they only have to be recognised as such.
"""

from __future__ import annotations

import functools
import shlex
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest
import yaml

from clusterdns.config.settings import Config
from clusterdns.names import split
from clusterdns.pipeline import load
from clusterdns.records import RR
from clusterdns.resolver import Answer, resolve
from clusterdns.snapshot.table import Snapshot
from clusterdns.tools.zonefile import rdata_text
from tests.helpers.cases import BASE, PROFILES, canonical
from tests.helpers.process import CASES, ROOT, UNIT_FIXTURE, config_of

FILES = ("coredns-unit", "parity", "corners")
UPSTREAM = "<mock-upstream-parity>"


def case_file(name: str) -> dict[str, Any]:
    return yaml.safe_load((CASES / f"{name}.yaml").read_text())  # type: ignore[no-any-return]


def params() -> list[Any]:
    out = []
    for file in FILES:
        for case in case_file(file)["cases"]:
            if case["qtype"] in ("AXFR", "IXFR"):
                continue
            marks = [pytest.mark.xfail(reason=case["known_bug"], strict=True)] if case.get("known_bug") else []
            out.append(pytest.param(file, case, id=f"{file}:{case['name']}", marks=marks))
    return out


@functools.cache
def snapshot(file: str, profile: str) -> tuple[Snapshot, Config]:
    """The snapshot `serve` builds for a profile (its fixture and flags, upstreams left out)."""
    if file == "coredns-unit":
        flags, fixture = BASE + PROFILES[profile], UNIT_FIXTURE
    else:
        spec = case_file(file)["profiles"][profile]
        flags, fixture = shlex.split(spec["flags"]), ROOT / spec["fixture"]
    flags = ["none" if f == UPSTREAM else f for f in flags]
    config = config_of("--manifests", str(fixture), *flags)
    return load(config), config


def lines(answer: Answer, records: tuple[RR, ...], qname: str) -> list[str]:
    """The records as presentation lines, names spelled as the question spells the zone (S1)."""
    zone = ".".join(qname.rstrip(".").split(".")[len(split(qname)) - answer.zone_labels :])
    out = []
    for rr in records:
        owner = qname if rr.owner is None else rr.owner.text(zone)
        out.append(canonical(f"{owner} {rr.ttl} IN {dns.rdatatype.to_text(rr.rtype)} {rdata_text(rr, zone)}"))
    return sorted(line.lower() for line in out)


@pytest.mark.parametrize(("file", "case"), params())
def test_case_through_resolve(file: str, case: dict[str, Any]) -> None:
    snap, config = snapshot(file, case.get("config", "default"))
    answer = resolve(snap, split(case["qname"].lower()), dns.rdatatype.from_text(case["qtype"]))
    if answer is None:  # not in our zones: forwarded, or REFUSED without an upstream (C12)
        assert case["rcode"] == "REFUSED" or not case.get("aa", True), "resolve() says not ours"
        return
    if answer.chase is not None or answer.fallthrough or not case.get("aa", True):
        # The upstream's part of the answer is not ours to check here; that it is the upstream's is.
        assert answer.chase is not None or answer.fallthrough, "an upstream answers this case, and resolve() knows"
        assert not case.get("aa", True) or _chased(case)
        return
    assert dns.rcode.to_text(answer.rcode) == case["rcode"]
    for section, records in (("answer", answer.answer), ("authority", answer.authority), ("additional", answer.additional)):
        want = sorted(canonical(line, snap.serial).lower() for line in case.get(section, []))
        assert lines(answer, records, case["qname"]) == want, f"{section} of {case['qname']} {case['qtype']}"


def _chased(case: dict[str, Any]) -> bool:
    """A CNAME to a name outside our zones, which serve completes with the upstream's records."""
    answer = case.get("answer") or []
    return bool(answer) and answer[0].split()[3] == "CNAME"


def test_every_case_file_is_read() -> None:
    assert len(params()) > 250
