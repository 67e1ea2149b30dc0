"""CoreDNS's own cases (tests/cases/coredns-unit.yaml) through real UDP and TCP queries
against `clusterdns serve` run with each profile's equivalent flags."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.cases import BASE, DATA, FIXTURE, PROFILES, ask, check, check_transfer, interwebs, profile_cases
from tests.helpers.process import ServerPool, clusterdns_argv


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerPool]:
    """One server per profile, started on first use."""

    def argv(profile: str, pool: ServerPool) -> list[str]:
        upstream = interwebs(pool) if profile == "unit-upstream" else "none"
        return clusterdns_argv("serve", "--manifests", str(FIXTURE), "--listen", "127.0.0.1:0", "--upstream", upstream, *BASE, *PROFILES[profile])

    pool = ServerPool(argv)
    yield pool
    pool.close()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("case", profile_cases())
def test_case(servers: Any, case: dict, transport: str) -> None:
    if case.get("transport", transport) != transport:
        pytest.skip(f"the case is about {case['transport']} only")
    server = servers(case.get("config", "default"))
    if case["qtype"] in ("AXFR", "IXFR") and transport == "tcp":
        check_transfer(server, case)
        return
    msg = ask(server, case, tcp=transport == "tcp")
    check(msg, case)


def test_every_profile_is_mapped() -> None:
    assert set(DATA["profiles"]) == set(PROFILES)
