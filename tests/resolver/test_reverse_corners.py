"""PTR corners of CoreDNS's reverse lookup (plugin/kubernetes/reverse.go serviceRecordForIP)."""

from __future__ import annotations

from pathlib import Path

from clusterdns.codes import NOERROR, NXDOMAIN, PTR, A
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
