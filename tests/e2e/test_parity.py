"""clusterdns's own CoreDNS parity cases (tests/cases/parity.yaml, tests/cases/corners.yaml)
over real UDP and TCP, and zone transfers over TCP.

Same format and comparison rules as tests/cases/coredns-unit.yaml (run by
tests/e2e/test_coredns_cases.py; the helpers are tests/helpers/cases.py): sections are multisets, a CNAME comes
before its target, SOA serials are never compared, owner names compare case-insensitively.
Each profile names its fixture and its clusterdns flags; one server per profile.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.helpers.cases import ask, canonical, check, check_transfer
from tests.helpers.process import ROOT, ServerPool, clusterdns_argv

FILES = {name: yaml.safe_load((ROOT / "tests" / "cases" / f"{name}.yaml").read_text()) for name in ("parity", "corners")}
MOCK = "<mock-upstream-parity>"


def params() -> list[Any]:
    out = []
    for file, data in FILES.items():
        for case in data["cases"]:
            marks = [pytest.mark.xfail(reason=case["known_bug"], strict=True)] if case.get("known_bug") else []
            out.append(pytest.param(file, case, id=f"{file}:{case['name']}", marks=marks))
    return out


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    """One clusterdns per profile, started on first use; the mock upstream when a profile forwards."""

    def argv(key: str, pool: ServerPool) -> list[str]:
        file, profile = key.split(":")
        spec = FILES[file]["profiles"][profile]
        flags = shlex.split(spec["flags"])
        if MOCK in flags:
            upstream = pool.upstream(records=FILES[file]["mocks"]["mock-upstream-parity"]["records"])
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
@pytest.mark.parametrize(("file", "case"), params())
def test_case(servers: Any, file: str, case: dict, transport: str) -> None:
    if case.get("transport", transport) != transport:
        pytest.skip(f"the case is about {case['transport']} only")
    server = servers(f"{file}:{case.get('config', 'default')}")
    if case["qtype"] in ("AXFR", "IXFR"):
        check_transfer(server, case)  # a multi-message TCP stream (RFC 5936 2.2)
        return
    check(ask(server, case, tcp=transport == "tcp"), case, lowered)


@pytest.mark.parametrize("file", FILES)
def test_cases_are_well_formed(file: str) -> None:
    data = FILES[file]
    names = [c["name"] for c in data["cases"]]
    assert len(names) == len(set(names)), "case names are unique"
    for case in data["cases"]:
        assert case.get("config", "default") in data["profiles"], case["name"]
        assert case["source"], case["name"]
        assert case["qtype"] not in ("AXFR", "IXFR") or case.get("transport") == "tcp", case["name"]
        for line in case["answer"] + case["authority"] + case["additional"]:
            canonical(line, 1)  # parses as presentation format
    for profile in data["profiles"].values():
        assert (ROOT / profile["fixture"]).is_dir()
