"""serve_stale and forward `except` through `clusterdns serve`: with the upstream gone, a cached
name still answers with the stale TTL (0, CoreDNS's default RESPONSE_TTL) and a new name gets
SERVFAIL within the forward deadline (plugin/cache/README.md, plugin/forward/README.md)."""

from __future__ import annotations

import time
from pathlib import Path

import dns.rcode

from tests.helpers.process import UNIT_FIXTURE, Server, clusterdns_argv
from tests.helpers.upstream import Upstream

RECORDS = ["lab.test. 60 IN SOA ns.lab.test. h.lab.test. 1 7200 1800 86400 30", "api.lab.test. 1 IN A 192.0.2.7",
           "skip.lab.test. 60 IN A 192.0.2.8"]


def check_stale(server: Server, up: Upstream) -> None:
    fresh = server.query("api.lab.test.", "A")
    assert [rd.address for rrset in fresh.answer for rd in rrset] == ["192.0.2.7"]
    up.close()  # the uplink drops
    time.sleep(1.2)  # the 1 s answer has expired
    stale = server.query("api.lab.test.", "A")
    assert stale.rcode() == dns.rcode.NOERROR
    assert [(rrset.ttl, rd.address) for rrset in stale.answer for rd in rrset] == [(0, "192.0.2.7")]
    started = time.monotonic()
    new = server.query("new.lab.test.", "A", timeout=5)
    assert new.rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - started < 3.0  # the deadline: min(4, 2 x 0.5 + 0.5) s


def test_serve_stale_flags() -> None:
    up = Upstream(RECORDS)
    server = Server(clusterdns_argv("serve", "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0", "--upstream",
                                    f"{up.address[0]}:{up.address[1]}", "--cache", "30", "--serve-stale", "3600", "--upstream-timeout", "0.5"))
    try:
        check_stale(server, up)
    finally:
        server.stop()
        up.close()


def test_serve_stale_in_a_corefile(tmp_path: Path) -> None:
    up = Upstream(RECORDS)
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:53 {{\n    kubernetes cluster.local {{\n        manifests {UNIT_FIXTURE}\n    }}\n"
                        f"    forward . {up.address[0]}:{up.address[1]} {{\n        read_timeout 500ms\n    }}\n"
                        "    cache 30 {\n        serve_stale 1h\n    }\n}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0"))
    try:
        check_stale(server, up)
    finally:
        server.stop()
        up.close()


def test_forward_except_names_are_not_forwarded() -> None:
    with Upstream(RECORDS) as up:
        server = Server(clusterdns_argv("serve", "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0", "--upstream",
                                        f"{up.address[0]}:{up.address[1]}", "--forward-except", "skip.lab.test"))
        try:
            assert server.query("skip.lab.test.", "A").rcode() == dns.rcode.SERVFAIL  # forward.go: next plugin, none: SERVFAIL
            assert server.query("api.lab.test.", "A").answer
            assert up.asked("skip.lab.test.") == 0
        finally:
            server.stop()
