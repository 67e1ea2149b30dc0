"""`hosts` through `clusterdns serve`: a hosts file and inline lines answered before the cluster,
PTRs for them, NODATA without an SOA, SERVFAIL or fallthrough for other names, and the file
re-read when it changes (CoreDNS plugin/hosts: hosts.go ServeDNS, hostsfile.go readHosts)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import dns.flags
import dns.rcode
import pytest

from tests.helpers.process import UNIT_FIXTURE, Server, clusterdns_argv, wait_until

HOSTS = "# the node's hosts file\n10.65.94.95 vm3\n10.65.94.199 vm2 vm2.lab.test\nfd00::2 vm2\n"


def answers(server: Server, qname: str, qtype: str = "A") -> tuple[int, list[str]]:
    msg = server.query(qname, qtype)
    return msg.rcode(), [f"{rrset.name} {rrset.ttl} {rd}" for rrset in msg.answer for rd in rrset]


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    path = tmp_path / "NodeHosts"
    path.write_text(HOSTS)
    return path


def start(*flags: str) -> Server:
    return Server(clusterdns_argv("serve", "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0", "--upstream", "none", *flags))


# (question, type, rcode, answer records): hosts.go ServeDNS; TTL 60 as k3s's `ttl 60`.
CASES = [
    ("vm3.", "A", dns.rcode.NOERROR, ["vm3. 60 10.65.94.95"]),
    ("VM2.", "A", dns.rcode.NOERROR, ["vm2. 60 10.65.94.199"]),  # the owner lower-cased, as hosts writes it
    ("vm2.", "AAAA", dns.rcode.NOERROR, ["vm2. 60 fd00::2"]),
    ("vm3.", "AAAA", dns.rcode.NOERROR, []),  # NODATA, and no SOA
    ("vm3.", "MX", dns.rcode.NOERROR, []),
    ("95.94.65.10.in-addr.arpa.", "PTR", dns.rcode.NOERROR, ["95.94.65.10.in-addr.arpa. 60 vm3."]),
    ("199.94.65.10.in-addr.arpa.", "PTR", dns.rcode.NOERROR, ["199.94.65.10.in-addr.arpa. 60 vm2.", "199.94.65.10.in-addr.arpa. 60 vm2.lab.test."]),
    ("inline.lab.test.", "A", dns.rcode.NOERROR, ["inline.lab.test. 60 10.9.0.1"]),
    # fallthrough: the cluster's own names answer after hosts
    ("svc1.testns.svc.cluster.local.", "A", dns.rcode.NOERROR, ["svc1.testns.svc.cluster.local. 5 10.0.0.1"]),
    ("1.0.0.10.in-addr.arpa.", "PTR", dns.rcode.NOERROR, ["1.0.0.10.in-addr.arpa. 5 svc1.testns.svc.cluster.local."]),
]


def test_hosts_answers_before_the_cluster(hosts_file: Path) -> None:
    server = start("--hosts-file", str(hosts_file), "--host", "10.9.0.1 inline.lab.test", "--hosts-ttl", "60",
                   "--hosts-fallthrough", ".")
    try:
        for qname, qtype, rcode, want in CASES:
            assert answers(server, qname, qtype) == (rcode, want), (qname, qtype)
        msg = server.query("vm3.", "AAAA")
        assert msg.flags & dns.flags.AA and not msg.authority  # hosts.go: NODATA carries no SOA
        assert "answering from hosts" in server.output
    finally:
        server.stop()


def test_without_fallthrough_an_unknown_name_is_servfail(hosts_file: Path) -> None:
    """hosts.go: no NXDOMAIN without an SOA, so SERVFAIL; PTR misses go on whatever fallthrough says."""
    server = start("--hosts-file", str(hosts_file))
    try:
        assert answers(server, "nothere.", "A")[0] == dns.rcode.SERVFAIL
        assert answers(server, "svc1.testns.svc.cluster.local.", "A")[0] == dns.rcode.SERVFAIL  # hosts holds every zone
        assert answers(server, "1.0.0.10.in-addr.arpa.", "PTR")[1] == ["1.0.0.10.in-addr.arpa. 5 svc1.testns.svc.cluster.local."]
    finally:
        server.stop()


def test_the_file_is_read_again_when_it_changes(hosts_file: Path) -> None:
    server = start("--hosts-file", str(hosts_file), "--hosts-reload", "0.1", "--hosts-fallthrough", ".")
    try:
        assert answers(server, "vm3.")[1] == ["vm3. 3600 10.65.94.95"]
        hosts_file.write_text(HOSTS.replace("10.65.94.95", "10.65.94.96") + "10.65.94.50 vm4\n")
        wait_until(lambda: answers(server, "vm3.")[1] == ["vm3. 3600 10.65.94.96"], "the new address", timeout=5)
        assert answers(server, "vm4.")[1] == ["vm4. 3600 10.65.94.50"]
        assert server.wait_for_output("hosts .* re-read")
        os.unlink(hosts_file)  # readHosts keeps what it read last when the file is gone
        time.sleep(0.4)
        assert answers(server, "vm4.")[1] == ["vm4. 3600 10.65.94.50"]
    finally:
        server.stop()
