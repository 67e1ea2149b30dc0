"""The zone transfer's records as snapshot/xfr.py lists them from the snapshot's transfer rows,
without a server: CoreDNS xfr.go's records per Service, SRV weights per EndpointSlice, and the
option that leaves a Service out of answers but not out of the transfer."""

from __future__ import annotations

from pathlib import Path

from clusterdns.codes import type_text
from clusterdns.config.settings import Config
from clusterdns.pipeline import load
from clusterdns.snapshot.xfr import zone_records
from clusterdns.tools.zonefile import rdata_text

MANIFESTS = """\
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}, {port: 9153}]
---
apiVersion: v1
kind: Service
metadata: {name: noports, namespace: default}
spec: {clusterIP: 10.96.0.11}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.12
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: hl, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {name: hl-1, namespace: default, labels: {kubernetes.io/service-name: hl}}
ports: [{name: http, port: 80}, {port: 81}]
endpoints:
- {addresses: [10.1.0.1], hostname: one}
- {addresses: [10.1.0.2]}
- {addresses: [10.1.0.3], conditions: {ready: false}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {name: hl-2, namespace: default, labels: {kubernetes.io/service-name: hl}}
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.1.0.4]}, {addresses: [10.1.0.5]}, {addresses: [10.1.0.6]}]
"""


def transfer(tmp_path: Path, **settings: object) -> list[str]:
    (tmp_path / "all.yaml").write_text(MANIFESTS)
    snap = load(Config(manifests=str(tmp_path), ns_address=("10.0.0.10",), **settings))  # type: ignore[arg-type]
    return [f"{rr.owner.text('cluster.local') if rr.owner else 'cluster.local.'} {rr.ttl} {type_text(rr.rtype)} {rdata_text(rr, 'cluster.local')}"
            for rr in zone_records(snap)]


def test_records_per_service_as_xfr_go_lists_them(tmp_path: Path) -> None:
    svc = "default.svc.cluster.local."
    assert transfer(tmp_path) == [
        "cluster.local. 5 NS ns.dns.cluster.local.",
        "ns.dns.cluster.local. 0 A 10.0.0.10",
        # ClusterIP: every address; weight 100 on each port, one SRV per port even when two share a number.
        f"dns.{svc} 5 A 10.96.0.10", f"dns.{svc} 5 AAAA fd00::10",
        f"dns.{svc} 5 SRV 0 100 53 dns.{svc}", f"_dns._udp.dns.{svc} 5 SRV 0 100 53 dns.{svc}",
        f"dns.{svc} 5 SRV 0 100 53 dns.{svc}", f"_dns-tcp._tcp.dns.{svc} 5 SRV 0 100 53 dns.{svc}",
        f"dns.{svc} 5 SRV 0 100 9153 dns.{svc}",
        f"empty.{svc} 5 A 10.96.0.12",
        f"empty.{svc} 5 SRV 0 100 80 empty.{svc}", f"_http._tcp.empty.{svc} 5 SRV 0 100 80 empty.{svc}",
        # Headless: per ready address, its A at both names and the named ports' SRVs, 100 / the slice's ready addresses.
        f"hl.{svc} 5 A 10.1.0.1", f"one.hl.{svc} 5 A 10.1.0.1", f"_http._tcp.hl.{svc} 5 SRV 0 50 80 one.hl.{svc}",
        f"hl.{svc} 5 A 10.1.0.2", f"10-1-0-2.hl.{svc} 5 A 10.1.0.2", f"_http._tcp.hl.{svc} 5 SRV 0 50 80 10-1-0-2.hl.{svc}",
        f"hl.{svc} 5 A 10.1.0.4", f"10-1-0-4.hl.{svc} 5 A 10.1.0.4", f"_http._tcp.hl.{svc} 5 SRV 0 33 8080 10-1-0-4.hl.{svc}",
        f"hl.{svc} 5 A 10.1.0.5", f"10-1-0-5.hl.{svc} 5 A 10.1.0.5", f"_http._tcp.hl.{svc} 5 SRV 0 33 8080 10-1-0-5.hl.{svc}",
        f"hl.{svc} 5 A 10.1.0.6", f"10-1-0-6.hl.{svc} 5 A 10.1.0.6", f"_http._tcp.hl.{svc} 5 SRV 0 33 8080 10-1-0-6.hl.{svc}",
        # A Service without ports still has its address in the transfer.
        f"noports.{svc} 5 A 10.96.0.11",
    ]


def test_ignore_empty_service_leaves_answers_not_the_transfer(tmp_path: Path) -> None:
    """xfr.go does not look at `ignore empty_service`; the resolver does (coredns#1809)."""
    listed = transfer(tmp_path, ignore_empty_service=True)
    assert "empty.default.svc.cluster.local. 5 A 10.96.0.12" in listed
    assert listed == transfer(tmp_path)
    snap = load(Config(manifests=str(tmp_path), ignore_empty_service=True))
    assert "empty.default.svc" not in snap.entries


def test_noendpoints_lists_no_endpoint(tmp_path: Path) -> None:
    assert not [line for line in transfer(tmp_path, noendpoints=True) if line.startswith(("hl.", "one.", "_http._tcp.hl."))]
