"""`k8s_external` through `clusterdns serve`: a Service's external IPs and LoadBalancer addresses
under another zone, the zone's SOA and NS, and an ingress hostname followed through the server's
own chain (CoreDNS plugin/k8s_external: external.go, apex.go, msg_to_dns.go)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.rcode
import pytest

from tests.helpers.process import Server, clusterdns_argv
from tests.helpers.upstream import Upstream

MANIFESTS = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, protocol: TCP}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.10}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIP: 10.96.0.21
  externalIPs: [192.0.2.21, "2001:db8::21"]
  ports: [{name: https, port: 443, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: elb, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.22
  ports: [{name: http, port: 80, protocol: TCP}]
status:
  loadBalancer:
    ingress: [{hostname: lb-1.elb.interwebs.test}]
---
apiVersion: v1
kind: Service
metadata: {name: internal, namespace: shop}
spec:
  clusterIP: 10.96.0.23
  ports: [{name: http, port: 80}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ext")
    (root / "shop.yaml").write_text(MANIFESTS)
    with Upstream(["lb-1.elb.interwebs.test. 60 IN A 198.51.100.7"]) as up:
        server = Server(clusterdns_argv("serve", "--manifests", str(root), "--listen", "127.0.0.1:0", "--upstream", f"{up.address[0]}:{up.address[1]}",
                                        "--external-zone", "example.org"))
        yield server
        server.stop()


def records(server: Server, qname: str, qtype: str, section: str = "answer") -> tuple[int, list[str]]:
    msg = server.query(qname, qtype)
    return msg.rcode(), [f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rd}" for rrset in getattr(msg, section) for rd in rrset]


CASES = [
    ("web.shop.example.org.", "A", dns.rcode.NOERROR, ["web.shop.example.org. 5 A 203.0.113.10"]),
    ("api.shop.example.org.", "A", dns.rcode.NOERROR, ["api.shop.example.org. 5 A 192.0.2.21"]),
    ("api.shop.example.org.", "AAAA", dns.rcode.NOERROR, ["api.shop.example.org. 5 AAAA 2001:db8::21"]),
    ("_https._tcp.api.shop.example.org.", "SRV", dns.rcode.NOERROR, ["_https._tcp.api.shop.example.org. 5 SRV 0 50 443 api.shop.example.org."]),
    ("internal.shop.example.org.", "A", dns.rcode.NXDOMAIN, []),  # no external address: NXDOMAIN
    ("web.shop.example.org.", "TXT", dns.rcode.NOERROR, []),
    # the LB hostname: a CNAME, then what the chain says of the hostname (here the upstream,
    # through the cache of `--cache 30`, which caps the TTL)
    ("elb.shop.example.org.", "A", dns.rcode.NOERROR,
     ["elb.shop.example.org. 5 CNAME lb-1.elb.interwebs.test.", "lb-1.elb.interwebs.test. 30 A 198.51.100.7"]),
]


@pytest.mark.parametrize(("qname", "qtype", "rcode", "want"), CASES)
def test_external_names(server: Server, qname: str, qtype: str, rcode: int, want: list[str]) -> None:
    got = records(server, qname, qtype)
    assert got == (rcode, want)
    assert server.query(qname, qtype).flags & dns.flags.AA


def test_the_zone_apex(server: Server) -> None:
    """apex.go: SOA `ns1.dns.<zone> hostmaster.dns.<zone>` 7200 1800 86400, NS ns1.dns.<zone>."""
    rcode, soa = records(server, "example.org.", "SOA")
    assert rcode == 0 and len(soa) == 1
    fields = soa[0].split()
    assert fields[:5] == ["example.org.", "5", "SOA", "ns1.dns.example.org.", "hostmaster.dns.example.org."] and fields[6:] == ["7200", "1800", "86400", "5"]
    assert records(server, "example.org.", "NS")[1] == ["example.org. 5 NS ns1.dns.example.org."]
    assert records(server, "nothere.shop.example.org.", "A", "authority")[1][0].startswith("example.org. 5 SOA ns1.dns.example.org.")


def test_a_corefile_with_k8s_external(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "shop.yaml").write_text(MANIFESTS)
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:53 {{\n    k8s_external example.org {{\n        ttl 30\n    }}\n    kubernetes cluster.local {{\n"
                        f"        manifests {tmp_path / 'm'}\n    }}\n}}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0"))
    try:
        assert records(server, "web.shop.example.org.", "A") == (0, ["web.shop.example.org. 30 A 203.0.113.10"])
        assert records(server, "web.shop.svc.cluster.local.", "A") == (0, ["web.shop.svc.cluster.local. 5 A 10.96.0.20"])
    finally:
        server.stop()
