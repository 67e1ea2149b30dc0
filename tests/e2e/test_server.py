"""`clusterdns serve` end to end: transports, forwarding, start-up errors, robustness."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.helpers.process import ROOT, UNIT_FIXTURE, clusterdns_argv, have_dig, read_frame, udp_sockets, wait_until
from tests.helpers.upstream import Upstream

FIXTURE = UNIT_FIXTURE
UPSTREAM_RECORDS = [
    "example.org. 60 IN A 192.0.2.10",
    "example.org. 60 IN SOA ns.example.org. admin.example.org. 1 7200 1800 86400 60",
    "api.example.com. 60 IN A 192.0.2.53",
] + [f'big.example.org. 60 IN TXT "{i:03d}{"x" * 60}"' for i in range(20)]


def test_forwards_other_names_and_keeps_cluster_names_local(serve) -> None:
    with Upstream(UPSTREAM_RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}")
        r = server.query("example.org", "A")
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].to_text() == "192.0.2.10"
        nx = server.query("nothing.example.org", "A")
        assert nx.rcode() == dns.rcode.NXDOMAIN and not nx.flags & dns.flags.AA
        before = len(up.queries)
        local = server.query("svc0.testns.svc.cluster.local", "A")
        assert local.rcode() == dns.rcode.NXDOMAIN and local.flags & dns.flags.AA
        assert len(up.queries) == before, "names in our zone are never forwarded"


def test_forwarded_reply_too_big_for_udp_is_truncated_then_served_over_tcp(serve) -> None:
    with Upstream(UPSTREAM_RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}")
        q = dns.message.make_query("big.example.org", "TXT", use_edns=False)
        wire = dns.query.udp(q, server.host, port=server.port, timeout=5, raise_on_truncation=False)
        assert wire.flags & dns.flags.TC and not wire.answer
        full = server.query("big.example.org", "TXT", tcp=True)
        assert len(full.answer[0]) == 20


def test_external_name_chased_through_upstream(serve) -> None:
    with Upstream(UPSTREAM_RECORDS) as up:
        manifests = ROOT / "tests" / "clusters" / "externalname"
        server = serve(manifests, upstream=f"{up.address[0]}:{up.address[1]}")
        r = server.query("ext.shop.svc.cluster.local", "A")
        assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert r.answer[1].name.to_text() == "api.example.com." and r.answer[1][0].to_text() == "192.0.2.53"


def test_upstream_down_gives_servfail_before_client_gives_up(serve) -> None:
    with Upstream(mode="drop") as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}")
        started = time.monotonic()
        r = server.query("example.org", "A", timeout=5)
        assert r.rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - started < 4.5, "SERVFAIL must come before a stub's 5 s timeout"


def test_upstream_none_refuses_other_names(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local")
    r = server.query("example.org", "A")
    assert r.rcode() == dns.rcode.REFUSED


def test_several_queries_on_one_tcp_connection(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local")
    names = ["svc1.testns.svc.cluster.local", "hdls1.testns.svc.cluster.local", "nope.testns.svc.cluster.local"]
    queries = [dns.message.make_query(n, "A") for n in names]
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        # All three in one write (pipelined, RFC 7766 6.2.1.1), then read three replies.
        sock.sendall(b"".join(struct.pack("!H", len(w)) + w for w in (q.to_wire() for q in queries)))
        replies = {}
        for _ in queries:
            r = dns.message.from_wire(read_frame(sock))
            replies[r.id] = r
    assert replies[queries[0].id].answer[0][0].to_text() == "10.0.0.1"
    assert len(replies[queries[1].id].answer[0]) == 4
    assert replies[queries[2].id].rcode() == dns.rcode.NXDOMAIN


def test_garbage_packets_do_not_hurt_the_server(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for packet in [b"", b"\x00", b"\xff" * 11, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", bytes(range(256)) * 4]:
            sock.sendto(packet, (server.host, server.port))
        # A truncated question gets FORMERR with the ID echoed.
        sock.sendto(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web", (server.host, server.port))
        while True:
            reply, _ = sock.recvfrom(4096)
            if reply[:2] == b"\xab\xcd":
                break
        assert reply[3] & 0x0F == dns.rcode.FORMERR
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"\x00\x05hello")  # a TCP frame that is no DNS message
    assert server.query("svc1.testns.svc.cluster.local", "A").answer[0][0].to_text() == "10.0.0.1"
    assert server.proc.poll() is None


def test_idle_tcp_connection_is_closed(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local")
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b"", "the server closes an idle connection"
        assert time.monotonic() - started < 25


def test_ipv6_listen(serve) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured here")
    server = serve(FIXTURE, "--zone", "cluster.local", listen="[::1]:0")
    assert server.host == "::1"
    r = server.query("svc6.testns.svc.cluster.local", "AAAA")
    assert r.answer[0][0].to_text() == "1234:abcd::1"


def test_missing_manifests_directory_fails_fast(tmp_path: Path) -> None:
    proc = subprocess.run(clusterdns_argv("serve", "--manifests", str(tmp_path / "nope"), "--listen", "127.0.0.1:0"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "manifests directory not found" in proc.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        proc = subprocess.run(clusterdns_argv("serve", "--manifests", str(FIXTURE), "--listen", f"127.0.0.1:{port}", "--upstream", "none"),
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr


@pytest.mark.skipif(not have_dig(), reason="dig not installed")
def test_dig_retries_truncated_answer_over_tcp(serve, tmp_path: Path) -> None:
    lines = ["apiVersion: v1\nkind: Service\nmetadata: {name: many, namespace: default}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---",
             "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: many-1\n  namespace: default\n  labels: {kubernetes.io/service-name: many}\naddressType: IPv4\nports: [{name: http, port: 80, protocol: TCP}]\nendpoints:"]
    lines += [f"- addresses: [10.1.0.{i}]" for i in range(1, 101)]
    (tmp_path / "many.yaml").write_text("\n".join(lines) + "\n")
    server = serve(tmp_path)
    out = server.dig("+noedns", "+ignore", "many.default.svc.cluster.local")
    assert "flags: qr aa tc rd" in out
    full = server.dig("+noedns", "many.default.svc.cluster.local")  # dig retries over TCP on TC
    assert "ANSWER: 100" in full and "(TCP)" in full


def test_server_logs_what_it_loaded(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local")
    assert server.wait_for_output(r"loaded .*: 4 added.* 10 services")


def test_workers_share_the_port(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", "--workers", "2")
    assert server.wait_for_output("2 worker processes share each port")
    children = [str(pid) for pid in server.workers()]
    assert len(children) == 1, "one forked worker beside the first process"
    wait_until(lambda: udp_sockets(server.port) == 2, "the worker bound its own socket")

    def wakeups(pid: str) -> int:  # the worker's main thread: one wakeup per batch of queries it answers
        status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
        return int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]

    before = wakeups(children[0])
    for _ in range(40):  # each from a new source port: the kernel spreads them over both processes' sockets
        assert server.query("svc1.testns.svc.cluster.local", "A").answer[0][0].to_text() == "10.0.0.1"
        assert server.query("svc1.testns.svc.cluster.local", "A", tcp=True).answer[0][0].to_text() == "10.0.0.1"
    assert wakeups(children[0]) - before >= 5, "the forked worker answered none of 80 queries"
    server.stop()
    assert not Path(f"/proc/{children[0]}").exists() or "zombie" in Path(f"/proc/{children[0]}/status").read_text()
