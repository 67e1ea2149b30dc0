"""ExternalName chains inside the zone: how many CNAMEs CoreDNS follows before it gives up
(plugin/backend_lookup.go: a CNAME is added while at most maxCnameChainLength = 10 records
precede it, so 11 ExternalNames end in the addresses and 12 end in NODATA), and loops."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterdns.codes import CNAME, NOERROR, A
from clusterdns.config.settings import Config
from clusterdns.names import split
from clusterdns.pipeline import load
from clusterdns.resolver import resolve

TARGET = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.50, ports: [{port: 80}]}
"""


def external(name: str, target: str) -> str:
    return f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: ExternalName, externalName: {target}}}\n"


def chain(tmp_path: Path, length: int) -> Path:
    """ExternalNames c1 -> c2 -> ... -> c<length> -> web (a ClusterIP Service)."""
    hops = [external(f"c{i}", f"c{i + 1}.default.svc.cluster.local") for i in range(1, length)]
    hops.append(external(f"c{length}", "web.default.svc.cluster.local"))
    (tmp_path / "chain.yaml").write_text(TARGET + "".join(hops))
    return tmp_path


@pytest.mark.parametrize(("length", "cnames", "addresses"), [(1, 1, 1), (10, 10, 1), (11, 11, 1), (12, 0, 0)])
def test_a_chain_is_followed_as_far_as_coredns_follows_it(tmp_path: Path, length: int, cnames: int, addresses: int) -> None:
    snap = load(Config(manifests=str(chain(tmp_path, length)), upstream=()))
    answer = resolve(snap, split("c1.default.svc.cluster.local"), A)
    assert answer is not None and answer.rcode == NOERROR and answer.chase is None
    kinds = [rr.rtype for rr in answer.answer]
    assert (kinds.count(CNAME), kinds.count(A)) == (cnames, addresses)
    if not cnames:
        assert answer.authority, "NODATA, with the SOA"


def test_a_loop_ends_in_nodata(tmp_path: Path) -> None:
    (tmp_path / "loop.yaml").write_text(external("a", "b.default.svc.cluster.local") + external("b", "a.default.svc.cluster.local"))
    answer = resolve(load(Config(manifests=str(tmp_path), upstream=())), split("a.default.svc.cluster.local"), A)
    assert answer is not None and answer.rcode == NOERROR and not answer.answer and answer.authority


MULTI = """apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec: {clusterIP: 10.96.30.30, ports: [{name: http, port: 80}, {name: dns, port: 53, protocol: UDP}]}
"""


@pytest.mark.parametrize(
    ("target", "address"),
    [
        ("web.default.svc.cluster.local", "10.96.0.50"),  # a Service
        ("10-1-2-3.default.pod.cluster.local", "10.1.2.3"),  # a Pod name (pods insecure)
        # a port name: without underscores, as externalName is a DNS-1123 subdomain (the API's validation)
        ("http.tcp.multi.default.svc.cluster.local", "10.96.30.30"),
    ],
)
def test_an_in_zone_target_is_looked_up_as_a_question_of_its_own(tmp_path: Path, target: str, address: str) -> None:
    """CoreDNS's A/AAAA follow an in-zone CNAME through Services() again (backend_lookup.go),
    so the target may be any name the plugin answers, a Pod name or a port name included."""
    (tmp_path / "svc.yaml").write_text(TARGET + "---\n" + MULTI + external("ext", target))
    snap = load(Config(manifests=str(tmp_path), upstream=()))
    answer = resolve(snap, split("ext.default.svc.cluster.local"), A)
    assert answer is not None and answer.rcode == NOERROR
    assert [rr.rtype for rr in answer.answer] == [CNAME, A]
    assert ".".join(str(b) for b in answer.answer[1].rdata) == address
