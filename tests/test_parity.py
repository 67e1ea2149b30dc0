"""clusterdns's own CoreDNS parity cases (tests/cases/parity.yaml) over real UDP and TCP.

Same format and comparison rules as tests/cases/coredns-unit.yaml (run by
test_coredns_cases.py, whose helpers are reused): sections are multisets, a CNAME comes
before its target, SOA serials are never compared, owner names compare case-insensitively.
Each profile names its fixture and its clusterdns flags; one server per profile.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, ServerPool, clusterdns_argv
from tests.test_coredns_cases import ask, canonical, check

CASES_FILE = ROOT / "tests" / "cases" / "parity.yaml"
DATA = yaml.safe_load(CASES_FILE.read_text())
MOCK = "<mock-upstream-parity>"


def params() -> list[Any]:
    out = []
    for case in DATA["cases"]:
        marks = [pytest.mark.xfail(reason=case["known_bug"], strict=True)] if case.get("known_bug") else []
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    """One clusterdns per profile, started on first use; the mock upstream when a profile forwards."""

    def argv(profile: str, pool: ServerPool) -> list[str]:
        spec = DATA["profiles"][profile]
        flags = shlex.split(spec["flags"])
        if MOCK in flags:
            upstream = pool.upstream(records=DATA["mocks"]["mock-upstream-parity"]["records"])
            flags = [upstream if f == MOCK else f for f in flags]
        elif "--upstream" not in flags:
            flags += ["--upstream", "none"]
        return clusterdns_argv("serve", "--manifests", str(ROOT / spec["fixture"]), "--listen", "127.0.0.1:0", *flags)

    pool = ServerPool(argv)
    yield pool
    pool.close()


def lowered(lines: list[str], case: dict) -> list[str]:
    """Owner names (and names in rdata) compare case-insensitively (tests/cases/README.md).
    For an upstream's reply (`aa: false`) the TTL field is dropped: its TTLs are the
    upstream's (and any cache's on the way), not ours."""
    ttls = case.get("aa", True)
    out = []
    for line in lines:
        owner, ttl, rest = line.lower().split(None, 2)
        out.append(f"{owner} {ttl if ttls else '-'} {rest}")
    return sorted(out)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("case", params())
def test_case(servers: Any, case: dict, transport: str) -> None:
    if case.get("transport", transport) != transport:
        pytest.skip(f"the case is about {case['transport']} only")
    check(ask(servers(case.get("config", "default")), case, tcp=transport == "tcp"), case, lowered)


def test_cases_are_well_formed() -> None:
    names = [c["name"] for c in DATA["cases"]]
    assert len(names) == len(set(names)), "case names are unique"
    for case in DATA["cases"]:
        assert case.get("config", "default") in DATA["profiles"], case["name"]
        assert case["source"], case["name"]
        for line in case["answer"] + case["authority"] + case["additional"]:
            canonical(line, 1)  # parses as presentation format
    for profile in DATA["profiles"].values():
        assert (ROOT / profile["fixture"]).is_dir()
