"""PTR corners of CoreDNS's reverse lookup (plugin/kubernetes/reverse.go serviceRecordForIP)."""

from __future__ import annotations

from pathlib import Path

from clusterdns.codes import NOERROR, NXDOMAIN, PTR, SRV, A
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
