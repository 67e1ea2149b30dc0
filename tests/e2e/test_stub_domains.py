"""Stub domains through `clusterdns serve`: a zone forwarded to its own upstreams, every other
outside name to the default ones, each group counted on its own in /metrics (CoreDNS picks
the server block by the longest zone, core/dnsserver/server.go ServeDNS; kube-dns
stubDomains as kubernetes.io's dns-custom-nameservers.md translates them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_ops import endpoint, get, samples, value
from tests.helpers.process import UNIT_FIXTURE, Server, clusterdns_argv
from tests.helpers.upstream import Upstream

DEFAULT = ["example.test. 60 IN A 192.0.2.1", "web.consul.local. 60 IN A 192.0.2.99", "notconsul.local. 60 IN A 192.0.2.2"]
CONSUL = ["consul.local. 60 IN SOA ns.consul.local. h.consul.local. 1 7200 1800 86400 30", "web.consul.local. 60 IN A 10.150.0.10"]
DEEP = ["db.dc1.consul.local. 60 IN A 10.151.0.10"]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream, Upstream]]:
    with Upstream(DEFAULT) as default, Upstream(CONSUL) as consul, Upstream(DEEP) as deep:
        yield default, consul, deep


def text(up: Upstream) -> str:
    return f"{up.address[0]}:{up.address[1]}"


def answers(server: Server, qname: str) -> list[str]:
    msg = server.query(qname, "A")
    return [rd.to_text() for rrset in msg.answer for rd in rrset]


# (question, the upstream that answers it: 0 default, 1 consul.local, 2 dc1.consul.local)
ROUTES = [
    ("web.consul.local.", ["10.150.0.10"], 1),
    ("WEB.Consul.Local.", ["10.150.0.10"], 1),  # zones match without regard to case
    ("db.dc1.consul.local.", ["10.151.0.10"], 2),  # the longest zone wins
    ("notconsul.local.", ["192.0.2.2"], 0),  # per label: not under consul.local
    ("example.test.", ["192.0.2.1"], 0),
]


def check_routes(server: Server, ups: tuple[Upstream, Upstream, Upstream]) -> None:
    for qname, want, which in ROUTES:
        before = [up.asked(qname) for up in ups]
        assert answers(server, qname) == want, qname
        after = [up.asked(qname) for up in ups]
        assert [a - b for a, b in zip(after, before)] == [1 if i == which else 0 for i in range(3)] or after == before, qname
    # The cluster's own names never leave the server.
    assert server.query("svc1.testns.svc.cluster.local.", "A").answer


def test_stub_domain_flags(upstreams: tuple[Upstream, Upstream, Upstream]) -> None:
    default, consul, deep = upstreams
    server = Server(clusterdns_argv(
        "serve", "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0", "--upstream", text(default),
        "--stub-domain", f"consul.local={text(consul)}", "--stub-domain", f"dc1.consul.local={text(deep)}",
        "--metrics", "127.0.0.1:0", "--cache", "0",
    ))
    try:
        check_routes(server, upstreams)
        assert f"forwarding names under consul.local to {text(consul)}" in server.output
        metrics = samples(get(endpoint(server, "metrics"))[1])
        for up in upstreams:
            assert value(metrics, "coredns_forward_requests_total", to=text(up)) >= 1
        assert value(metrics, "coredns_forward_requests_total", to=text(consul)) == 2  # web.consul.local, twice spelled
    finally:
        server.stop()


def test_stub_domain_server_blocks_in_a_corefile(upstreams: tuple[Upstream, Upstream, Upstream], tmp_path: Path) -> None:
    """kube-dns's stubDomains as the Kubernetes docs write them in a Corefile, each with its cache."""
    default, consul, deep = upstreams
    corefile = tmp_path / "Corefile"
    corefile.write_text(
        ".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n"
        f"        manifests {UNIT_FIXTURE}\n    }}\n    forward . {text(default)}\n    cache 30\n}}\n"
        f"consul.local:53 {{\n    errors\n    cache 30\n    forward . {text(consul)}\n}}\n"
        f"dc1.consul.local:53 {{\n    forward . {text(deep)}\n}}\n"
    )
    # --metrics: the tests' environment turns the endpoints off, and flags beat the Corefile.
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"))
    try:
        check_routes(server, upstreams)
        metrics = samples(get(endpoint(server, "metrics"))[1])
        # Each group has its own cache, labelled by its zone (coredns_cache_* {zones}).
        assert value(metrics, "coredns_cache_requests_total", zones="consul.local.") >= 2
        assert value(metrics, "coredns_cache_requests_total", zones=".") >= 2
        assert value(metrics, "coredns_cache_hits_total", zones="consul.local.") >= 1  # the second spelling
    finally:
        server.stop()


def test_a_block_for_the_cluster_zone_refuses_other_names(tmp_path: Path) -> None:
    """`cluster.local { kubernetes }`: names outside every block are REFUSED (server.go)."""
    corefile = tmp_path / "Corefile"
    corefile.write_text(f"cluster.local {{\n    kubernetes {{\n        manifests {UNIT_FIXTURE}\n    }}\n}}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0"))
    try:
        assert server.query("example.test.", "A").rcode() == 5
        assert server.query("svc1.testns.svc.cluster.local.", "A").answer
    finally:
        server.stop()
