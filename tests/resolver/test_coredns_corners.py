"""Corners of CoreDNS's kubernetes plugin an audit found (each test names its CoreDNS source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterdns.codes import AAAA, NOERROR, NXDOMAIN, PTR, SRV, A
from clusterdns.config.settings import Config
from clusterdns.names import split
from clusterdns.pipeline import load
from clusterdns.resolver import resolve

EMPTY = """apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {clusterIP: 10.96.70.70, selector: {app: nothing}, ports: [{port: 80}]}
"""


def test_ignore_empty_service_keeps_the_clusterip_ptr(tmp_path: Path) -> None:
    """`ignore empty_service` makes a ClusterIP Service without ready endpoints NXDOMAIN
    (kubernetes.go findServices), but serviceRecordForIP never reads the option: its
    ClusterIP's PTR is still the Service name."""
    (tmp_path / "empty.yaml").write_text(EMPTY)
    snap = load(Config(manifests=str(tmp_path), upstream=(), ignore_empty_service=True, zones=("cluster.local", "in-addr.arpa")))
    forward = resolve(snap, split("empty.default.svc.cluster.local"), A)
    assert forward is not None and forward.rcode == NXDOMAIN
    reverse = resolve(snap, split("70.70.96.10.in-addr.arpa"), PTR)
    assert reverse is not None and reverse.rcode == NOERROR
    assert [rr.rdata.text("cluster.local") for rr in reverse.answer] == ["empty.default.svc.cluster.local."]


NO_PORTS = """apiVersion: v1
kind: Service
metadata: {name: noports, namespace: default}
spec: {clusterIP: 10.96.30.32}
"""


def test_a_clusterip_service_without_ports_answers_a_but_no_srv(tmp_path: Path) -> None:
    """The API server refuses it, but CoreDNS gives such a Service the sentinel port -1
    (object/service.go ToService): A from the ClusterIP, no SRV (backend_lookup.go SRV skips
    port -1). `check` warns."""
    (tmp_path / "noports.yaml").write_text(NO_PORTS)
    snap = load(Config(manifests=str(tmp_path), upstream=()))
    a = resolve(snap, split("noports.default.svc.cluster.local"), A)
    assert a is not None and a.rcode == NOERROR and [rr.rdata for rr in a.answer] == [bytes([10, 96, 30, 32])]
    srv = resolve(snap, split("noports.default.svc.cluster.local"), SRV)
    assert srv is not None and srv.rcode == NOERROR and not srv.answer and srv.authority
    assert any(p.field == "spec.ports" and "required" in p.message for p in snap.problems)


PORTS = """apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  clusterIP: 10.96.30.30
  ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}, {name: dnstcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: single, namespace: default}
spec: {clusterIP: 10.96.30.31, ports: [{port: 9090}]}
"""


@pytest.mark.parametrize(
    ("qname", "qtype", "rcode", "ports"),
    [
        ("_._tcp.multi", SRV, NOERROR, [53, 80]),  # every TCP port
        ("_._udp.multi", SRV, NOERROR, [53]),
        ("_http._.multi", SRV, NOERROR, [80]),  # any protocol
        ("_._.multi", SRV, NOERROR, [53, 80]),  # anything (53 twice: one SRV, as duplicates go)
        ("_._tcp.single", SRV, NOERROR, [9090]),  # an unnamed port matches a wild name
        ("_._sctp.multi", SRV, NXDOMAIN, []),  # nothing matches
        ("_nope._.multi", SRV, NXDOMAIN, []),
        ("_._tcp.multi", A, NOERROR, []),  # the ClusterIP (checked below)
        ("_._tcp.nothing", SRV, NXDOMAIN, []),  # no such Service
    ],
)
def test_a_lone_underscore_is_a_wild_port_or_protocol(tmp_path: Path, qname: str, qtype: int, rcode: int, ports: list[int]) -> None:
    """CoreDNS parse.go: stripUnderscore("_") is "", and matchPortAndProtocol lets an empty
    port or protocol in the question match any (kubernetes.go findServices)."""
    (tmp_path / "ports.yaml").write_text(PORTS)
    snap = load(Config(manifests=str(tmp_path), upstream=()))
    answer = resolve(snap, split(f"{qname}.default.svc.cluster.local"), qtype)
    assert answer is not None and answer.rcode == rcode
    if qtype == SRV:
        assert sorted(rr.rdata[2] for rr in answer.answer) == ports
    elif rcode == NOERROR:
        assert [rr.rdata for rr in answer.answer] == [bytes([10, 96, 30, 30])]


HEADLESS = """apiVersion: v1
kind: Service
metadata: {name: hl, namespace: default}
spec: {clusterIP: None, ports: [{name: http, port: 80}, {name: metrics, port: 9100}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: hl-1, namespace: default, labels: {kubernetes.io/service-name: hl}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}, {name: metrics, port: 9100, protocol: UDP}]
endpoints:
- addresses: [10.1.0.1]
- addresses: [10.1.0.2]
  conditions: {ready: false}
"""


def test_a_wild_port_of_a_headless_service_matches_its_endpoints_ports(tmp_path: Path) -> None:
    """Headless: the EndpointSlice's own ports are matched, over its ready endpoints only."""
    (tmp_path / "hl.yaml").write_text(HEADLESS)
    snap = load(Config(manifests=str(tmp_path), upstream=()))
    tcp = resolve(snap, split("_._tcp.hl.default.svc.cluster.local"), SRV)
    assert tcp is not None and tcp.rcode == NOERROR and [rr.rdata[2] for rr in tcp.answer] == [8080]
    both = resolve(snap, split("_._.hl.default.svc.cluster.local"), A)
    assert both is not None and [rr.rdata for rr in both.answer] == [bytes([10, 1, 0, 1])]


MAPPED = """apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec: {clusterIP: 10.96.30.30, ports: [{port: 80}]}
"""


def test_an_ipv4_mapped_ipv6_address_is_read_as_ipv4(tmp_path: Path) -> None:
    """CoreDNS reads ::ffff:a.b.c.d as the IPv4 address: a Pod name `--ffff-a01-203` is an A
    (msg.Service.HostType: To4() != nil), and its ip6.arpa name a PTR lookup of a.b.c.d
    (dnsutil/reverse.go reverse6, which prints it as Go does)."""
    (tmp_path / "svc.yaml").write_text(MAPPED)
    snap = load(Config(manifests=str(tmp_path), upstream=(), zones=("cluster.local", "ip6.arpa")))
    a = resolve(snap, split("--ffff-a01-203.default.pod.cluster.local"), A)
    assert a is not None and a.rcode == NOERROR and [rr.rdata for rr in a.answer] == [bytes([10, 1, 2, 3])]
    aaaa = resolve(snap, split("--ffff-a01-203.default.pod.cluster.local"), AAAA)
    assert aaaa is not None and aaaa.rcode == NOERROR and not aaaa.answer
    owner = ".".join(reversed("00000000000000000000ffff0a601e1e")) + ".ip6.arpa"
    ptr = resolve(snap, split(owner), PTR)
    assert ptr is not None and ptr.rcode == NOERROR
    assert [rr.rdata.text("cluster.local") for rr in ptr.answer] == ["multi.default.svc.cluster.local."]
