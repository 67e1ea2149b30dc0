"""The kubectl dump compare's docs start from (tests/clusters/kubectl-dump-compare/, `kubectl get
... -A -o yaml` of a kind cluster) as a snapshot: it loads as is, and with a CoreDNS Pod's IP as
--ns-address the zone's nameservers are the cluster's (docs/compare.md, CoreDNS ns.go)."""

from __future__ import annotations

import dns.rdatatype

from clusterdns.codes import NOERROR
from clusterdns.config.settings import Config
from clusterdns.names import split
from clusterdns.resolver import resolve
from clusterdns.tools.offline import load_snapshot
from tests.helpers.process import ROOT

DUMP = ROOT / "tests" / "clusters" / "kubectl-dump-compare"


def test_kubectl_dump_loads_as_is() -> None:
    snap = load_snapshot(Config(manifests=str(DUMP), pods="insecure", ttl=30))
    state = snap.state
    assert [str(p) for p in state.problems] == []
    assert sorted(state.namespaces) == ["default", "kube-node-lease", "kube-public", "kube-system", "shop"]
    # Every Pod is the dump's own: the Deployments, ReplicaSets, StatefulSet and DaemonSet add none.
    assert len(state.pods) == 9
    assert {s.name: s.cluster_ips for s in state.services} == {
        "kubernetes": ("10.96.0.1",), "kube-dns": ("10.96.0.10",), "db": (), "payments": (), "web": ("10.96.44.12",),
    }
    assert {s.name: s.endpoints_source for s in state.services if s.endpoints} == {
        "kubernetes": "EndpointSlice", "kube-dns": "EndpointSlice", "db": "EndpointSlice", "web": "EndpointSlice",
    }
    # The not-ready web Pod is not published; the StatefulSet's Pods are, by hostname.
    assert "10-244-0-9.web.shop.svc" not in snap.entries and "db-1.db.shop.svc" in snap.entries


def test_a_coredns_pod_ip_names_kube_dns_as_the_cluster_does() -> None:
    """docs/compare.md step 2: with a CoreDNS Pod's IP as --ns-address, the apex NS and
    ns.dns.<zone> are what that CoreDNS answers (plugin/kubernetes/ns.go)."""
    snap = load_snapshot(Config(manifests=str(DUMP), pods="insecure", ttl=30, ns_address=("10.244.0.2",)))
    apex = resolve(snap, split("cluster.local"), dns.rdatatype.NS)
    assert apex is not None and apex.rcode == NOERROR
    assert [rr.rdata.labels for rr in apex.answer] == [("kube-dns", "kube-system", "svc")]
    ns_a = resolve(snap, split("ns.dns.cluster.local"), dns.rdatatype.A)
    assert ns_a is not None and [rr.rdata for rr in ns_a.answer] == [bytes([10, 96, 0, 10])]
