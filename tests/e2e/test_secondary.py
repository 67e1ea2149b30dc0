"""Zone transfer to a REAL secondary: NSD pulls cluster.local from clusterdns (AXFR/IXFR over
TCP), follows its NOTIFYs, and then answers every record of the zone as clusterdns does.

`clusterdns compare --positive-only --zone-records --ignore-srv-weight` is the proof (docs/compare.md
says why those three: NSD serves a plain zone, which holds what the transfer carries, with the
transfer's SRV weights, and knows none of CoreDNS's negative-answer rules).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rdatatype
import pytest

from clusterdns import cli
from tests.helpers.process import ROOT, Server, clusterdns_argv, free_port, wait_until
from tests.helpers.upstream import Upstream

ZONE = "cluster.local"
NSD = shutil.which("nsd") or shutil.which("nsd", path="/usr/sbin:/usr/local/sbin")
SECONDARY = ["--positive-only", "--zone-records", "--ignore-srv-weight"]
LATE_SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: late-arrival
  namespace: default
spec:
  clusterIP: 10.96.77.77
  ports:
  - {name: http, port: 80, protocol: TCP}
  - {name: metrics, port: 9090, protocol: TCP}
"""


def soa_serial(host: str, port: int) -> int | None:
    try:
        reply = dns.query.udp(dns.message.make_query(f"{ZONE}.", "SOA"), host, port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return int(rrset[0].serial)
    return None


def serial_of_server(server: Server) -> int:
    serial = soa_serial(server.host, server.port)
    assert serial is not None
    return serial


class Nsd:
    """`nsd -d` as a secondary of cluster.local, everything in one temporary directory."""

    def __init__(self, work: Path, port: int, primary_port: int) -> None:
        self.work, self.port = work, port
        self.conf = work / "nsd.conf"
        self.conf.write_text(f"""server:
  ip-address: 127.0.0.1
  port: {port}
  username: ""
  chroot: ""
  database: ""
  zonesdir: "{work}"
  xfrdir: "{work}"
  pidfile: "{work}/nsd.pid"
  xfrdfile: "{work}/xfrd.state"
  zonelistfile: "{work}/zone.list"
  logfile: "{work}/nsd.log"
  rrl-ratelimit: 0
  server-count: 1
  verbosity: 2
remote-control:
  control-enable: no
zone:
  name: {ZONE}
  request-xfr: 127.0.0.1@{primary_port} NOKEY
  allow-notify: 127.0.0.1 NOKEY
""")
        self.out = open(work / "nsd.out", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([NSD or "nsd", "-d", "-c", str(self.conf)], stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def log(self) -> str:
        text = ""
        for name in ("nsd.out", "nsd.log"):
            path = self.work / name
            if path.exists():
                text += path.read_text()
        return text

    def stop(self) -> None:
        """SIGTERM to NSD's own pid (it stops its xfrd and server children), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the session NSD and its children run in
                self.proc.wait(5)
        self.out.close()


@pytest.fixture
def primary_and_secondary(tmp_path: Path) -> Iterator[tuple[Server, Nsd, Path]]:
    if NSD is None:
        pytest.skip("nsd is not installed (`make tools` installs it: apt-get install nsd)")
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "zones", manifests)
    nsd_port = free_port()
    primary = Server(clusterdns_argv(
        "serve", "--manifests", str(manifests), "--listen", "127.0.0.1:0", "--zone", ZONE, "--upstream", "none",
        "--transfer-to", "127.0.0.1", "--notify", f"127.0.0.1:{nsd_port}",
    ))
    nsd_dir = tmp_path / "nsd"
    nsd_dir.mkdir()
    secondary = Nsd(nsd_dir, nsd_port, primary.port)
    try:
        yield primary, secondary, manifests
    finally:
        secondary.stop()
        primary.stop()


def compare(capsys: pytest.CaptureFixture[str], primary: Server, secondary: Nsd, manifests: Path, *extra: str) -> tuple[int, str]:
    code = cli.main(["compare", "--against", f"127.0.0.1:{secondary.port}", "--self", f"{primary.host}:{primary.port}",
                     "--manifests", str(manifests), "--zone", ZONE, "--quiet", *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_nsd_secondary_follows_clusterdns(primary_and_secondary: tuple[Server, Nsd, Path], capsys: pytest.CaptureFixture[str]) -> None:
    primary, nsd, manifests = primary_and_secondary
    serial = serial_of_server(primary)
    wait_until(lambda: soa_serial("127.0.0.1", nsd.port) == serial, f"NSD to load serial {serial}\n{nsd.log}", 15, step=0.1)
    assert "received update to serial" in nsd.log

    code, out = compare(capsys, primary, nsd, manifests, *SECONDARY)
    assert code == 0, out
    assert int(out.split(" questions from ")[0].rsplit("\n", 1)[-1]) > 20, out

    # The full comparison is not for a plain zone: CoreDNS's negative answers differ from NSD's
    # (an empty non-terminal such as _tcp.<svc> is NXDOMAIN here, NODATA there).
    code, out = compare(capsys, primary, nsd, manifests)
    assert code == 1 and "rcode: NXDOMAIN | NOERROR" in out, out
    said = re.search(r"the full comparison finds (\d+) of (\d+) questions differing", " ".join((ROOT / "docs" / "compare.md").read_text().split()))
    assert said is not None, "docs/compare.md no longer says how many questions the full comparison finds differing"
    found = re.search(r"^(\d+) questions: \d+ equal, (\d+) differ$", out, re.M)
    assert found is not None and (found[2], found[1]) == (said[1], said[2]), (found and found[0], said[0])  # as docs/compare.md says

    # A new Service: clusterdns reloads, bumps the serial and sends NOTIFY; NSD pulls the zone.
    staged = manifests.parent / "late.yaml"
    staged.write_text(LATE_SERVICE)
    os.replace(staged, manifests / "late.yaml")  # one inotify event for a whole file
    wait_until(lambda: serial_of_server(primary) != serial, "clusterdns to reload", 10, step=0.1)
    new_serial = serial_of_server(primary)
    assert new_serial > serial

    def nsd_has_it() -> bool:
        try:
            reply = dns.query.udp(dns.message.make_query("late-arrival.default.svc.cluster.local.", "A"), "127.0.0.1", port=nsd.port, timeout=0.5)
        except (dns.exception.DNSException, OSError):
            return False
        return [rd.address for rrset in reply.answer for rd in rrset] == ["10.96.77.77"]

    started = time.monotonic()
    wait_until(nsd_has_it, f"NSD to serve the new Service after NOTIFY\n{nsd.log}\n{primary.output}", 20, step=0.1)
    assert soa_serial("127.0.0.1", nsd.port) == new_serial
    # NSD's own refresh timer is 7200 s (the SOA's): only the NOTIFY can have done this so fast.
    assert time.monotonic() - started < 20
    assert primary.wait_for_output(r"NOTIFY cluster\.local serial \d+ to 127\.0\.0\.1:\d+ (acknowledged|got no answer)"), primary.output

    code, out = compare(capsys, primary, nsd, manifests, *SECONDARY)
    assert code == 0, out
    assert "late-arrival" not in out

    # The one thing --ignore-srv-weight hides: a transfer carries weight 100 on every port of a
    # ClusterIP Service (CoreDNS xfr.go), the live bare-name SRV answer 100 / number of ports.
    code, out = compare(capsys, primary, nsd, manifests, "--positive-only", "--zone-records")
    assert code == 1, out
    assert "\nlate-arrival.default.svc.cluster.local. SRV\n" in out
    assert "    - late-arrival.default.svc.cluster.local. in srv 0 50 80 late-arrival.default.svc.cluster.local." in out
    assert "    + late-arrival.default.svc.cluster.local. in srv 0 100 80 late-arrival.default.svc.cluster.local." in out


def test_notify_is_a_notify(tmp_path: Path) -> None:
    """RFC 1996 4.5: opcode NOTIFY (4), AA set, the zone's SOA as the question. Any DNS server
    stands in for the secondary; it only has to reply."""
    manifests = tmp_path / "manifests"
    shutil.copytree(ROOT / "tests" / "clusters" / "parity-core", manifests)
    with Upstream() as target:
        server = Server(clusterdns_argv(
            "serve", "--manifests", str(manifests), "--listen", "127.0.0.1:0", "--zone", ZONE, "--upstream", "none",
            "--notify", f"{target.address[0]}:{target.address[1]}",
        ))
        try:
            (manifests / "late.yaml").write_text(LATE_SERVICE)
            wait_until(lambda: bool(target.received), f"a NOTIFY\n{server.output}", 10, step=0.1)
        finally:
            server.stop()
    msg = dns.message.from_wire(target.received[0])
    assert msg.opcode() == dns.opcode.NOTIFY
    assert msg.flags & dns.flags.AA
    assert [(q.name.to_text(), q.rdtype) for q in msg.question] == [(f"{ZONE}.", dns.rdatatype.SOA)]
