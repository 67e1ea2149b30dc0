"""clusterdns/external.py: CoreDNS's k8s_external answers, from snapshots built from manifests.

The case tables are CoreDNS's (plugin/k8s_external/external_test.go TestExternal,
apex_test.go TestApex; /tmp/specs/plugins-a.md section 4.3, fixture K1), each run through
answer() on a snapshot `serve` would build from manifests this module writes; then the cases
derived from the code (external.go, apex.go, msg_to_dns.go, plugin/kubernetes/external.go).
Sections compare as multisets (CoreDNS's test.SortAndCheck); every reply is authoritative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest
import yaml

from clusterdns.codes import AAAA, NOERROR, NXDOMAIN, A
from clusterdns.config.settings import Config
from clusterdns.external import ADDITIONAL, ANSWER, ExternalAnswer, ExternalOptions, Lookup, answer
from clusterdns.names import address_from_reverse, split
from clusterdns.pipeline import Pipeline, load
from clusterdns.records import RR
from clusterdns.resolver import Answer
from clusterdns.snapshot.build import build
from clusterdns.snapshot.table import Snapshot
from clusterdns.tools.zonefile import rdata_text
from tests.helpers.cases import canonical

ZONES = (("example", "com"), ("in-addr", "arpa"))
K1 = ExternalOptions(zones=ZONES, headless=True)  # fixture K1's plugin settings
SOA = "example.com. 5 IN SOA ns1.dns.example.com. hostmaster.dns.example.com. SERIAL 7200 1800 86400 5"
REVERSE_SOA = "in-addr.arpa. 5 IN SOA ns1.dns.in-addr.arpa. hostmaster.dns.in-addr.arpa. SERIAL 7200 1800 86400 5"


def service(name: str, spec: dict[str, Any], status: dict[str, Any] | None = None, namespace: str = "testns") -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    if status:
        doc["status"] = status
    return doc


def endpoint_slice(service_name: str, endpoints: list[dict[str, Any]], namespace: str = "testns", ports: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service_name}-1", "namespace": namespace, "labels": {"kubernetes.io/service-name": service_name}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}] if ports is None else ports,
    }


HTTP = [{"name": "http", "port": 80, "protocol": "TCP"}]


def k1_documents() -> list[dict[str, Any]]:
    """external_test.go's fake cluster: svc1, svc6, svc11, svc12 with external addresses, and
    svc-headless with two named endpoints (ClusterIPs made distinct; k8s_external never uses them)."""
    return [
        service("svc1", {"clusterIP": "10.96.0.1", "externalIPs": ["1.2.3.4"], "ports": HTTP}),
        service("svc6", {"clusterIP": "10.96.0.3", "externalIPs": ["1:2::5"], "ports": HTTP}),
        service("svc11", {"type": "LoadBalancer", "clusterIP": "10.96.0.4", "ports": HTTP}, {"loadBalancer": {"ingress": [{"ip": "2.3.4.5"}]}}),
        service("svc12", {"type": "LoadBalancer", "clusterIP": "10.96.0.5", "ports": HTTP}, {"loadBalancer": {"ingress": [{"hostname": "dummy.hostname"}]}}),
        service("svc-headless", {"clusterIP": "None", "ports": HTTP}),
        endpoint_slice("svc-headless", [{"addresses": ["1.2.3.4"], "hostname": "endpoint-svc-0"}, {"addresses": ["1.2.3.5"], "hostname": "endpoint-svc-1"}]),
    ]


def write(directory: Path, documents: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cluster.yaml").write_text(yaml.safe_dump_all(documents))
    return directory


def snapshot_of(directory: Path, documents: list[dict[str, Any]], **settings: Any) -> Snapshot:
    return load(Config(manifests=str(write(directory, documents)), **settings))


@pytest.fixture(scope="module")
def k1(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """Fixture K1: the kubernetes plugin exposes only testns (`namespaces testns`)."""
    return snapshot_of(tmp_path_factory.mktemp("k1"), k1_documents(), namespaces=("testns",))


def lines(snap: Snapshot, reply: Answer, records: tuple[RR, ...], qname: str) -> list[str]:
    """Presentation lines, names written as the reply would write them for this question."""
    labels = qname.rstrip(".").split(".")
    zone = ".".join(labels[len(labels) - reply.zone_labels :])
    out = []
    for rr in records:
        owner = qname if rr.owner is None else rr.owner.text(zone)
        out.append(canonical(f"{owner} {rr.ttl} IN {dns.rdatatype.to_text(rr.rtype)} {rdata_text(rr, zone)}", snap.serial))
    return sorted(out)


def expect(snap: Snapshot, lines_: list[str]) -> list[str]:
    return sorted(canonical(line, snap.serial) for line in lines_)


def ask(snap: Snapshot, qname: str, qtype: str, options: ExternalOptions = K1) -> Answer | None:
    return answer(snap, options, split(qname.lower()), dns.rdatatype.from_text(qtype))


def check(snap: Snapshot, case: tuple[Any, ...], options: ExternalOptions = K1) -> Answer:
    qname, qtype, rcode, answer_lines, authority, additional = case
    reply = ask(snap, qname, qtype, options)
    assert reply is not None, "k8s_external passed the question on"
    assert dns.rcode.to_text(reply.rcode) == rcode
    assert not reply.fallthrough
    assert lines(snap, reply, reply.answer, qname) == expect(snap, answer_lines)
    assert lines(snap, reply, reply.authority, qname) == expect(snap, authority)
    assert lines(snap, reply, reply.additional, qname) == expect(snap, additional)
    return reply


# Source: plugin/k8s_external/external_test.go TestExternal (`tests`), rows 1-29.
EXTERNAL_TEST = [
    ("4.3.2.1.in-addr.arpa.", "PTR", "NOERROR", ["4.3.2.1.in-addr.arpa. 5 IN PTR svc1.testns.example.com."], [], []),
    ("svc1.testns.example.com.", "PTR", "NOERROR", [], [SOA], []),
    ("not-existing.testns.example.com.", "PTR", "NXDOMAIN", [], [SOA], []),
    ("svc1.testns.example.com.", "A", "NOERROR", ["svc1.testns.example.com. 5 IN A 1.2.3.4"], [], []),
    ("svc1.testns.example.com.", "SRV", "NOERROR", ["svc1.testns.example.com. 5 IN SRV 0 100 80 svc1.testns.example.com."], [],
     ["svc1.testns.example.com. 5 IN A 1.2.3.4"]),
    ("*._not-udp-or-tcp.svc1.testns.example.com.", "SRV", "NXDOMAIN", [], [SOA], []),
    ("_http._tcp.svc1.testns.example.com.", "SRV", "NOERROR", ["_http._tcp.svc1.testns.example.com. 5 IN SRV 0 100 80 svc1.testns.example.com."], [],
     ["svc1.testns.example.com. 5 IN A 1.2.3.4"]),
    ("svc1.testns.example.com.", "AAAA", "NOERROR", [], [SOA], []),
    ("svc0.testns.example.com.", "AAAA", "NXDOMAIN", [], [SOA], []),
    ("svc0.testns.example.com.", "A", "NXDOMAIN", [], [SOA], []),
    ("svc0.svc-nons.example.com.", "A", "NXDOMAIN", [], [SOA], []),
    ("svc6.testns.example.com.", "AAAA", "NOERROR", ["svc6.testns.example.com. 5 IN AAAA 1:2::5"], [], []),
    ("_http._tcp.svc6.testns.example.com.", "SRV", "NOERROR", ["_http._tcp.svc6.testns.example.com. 5 IN SRV 0 100 80 svc6.testns.example.com."], [],
     ["svc6.testns.example.com. 5 IN AAAA 1:2::5"]),
    ("svc6.testns.example.com.", "SRV", "NOERROR", ["svc6.testns.example.com. 5 IN SRV 0 100 80 svc6.testns.example.com."], [],
     ["svc6.testns.example.com. 5 IN AAAA 1:2::5"]),
    ("testns.example.com.", "A", "NOERROR", [], [SOA], []),
    ("testns.example.com.", "SOA", "NOERROR", [], [SOA], []),
    ("svc11.testns.example.com.", "A", "NOERROR", ["svc11.testns.example.com. 5 IN A 2.3.4.5"], [], []),
    ("_http._tcp.svc11.testns.example.com.", "SRV", "NOERROR", ["_http._tcp.svc11.testns.example.com. 5 IN SRV 0 100 80 svc11.testns.example.com."], [],
     ["svc11.testns.example.com. 5 IN A 2.3.4.5"]),
    ("svc11.testns.example.com.", "SRV", "NOERROR", ["svc11.testns.example.com. 5 IN SRV 0 100 80 svc11.testns.example.com."], [],
     ["svc11.testns.example.com. 5 IN A 2.3.4.5"]),
    # 20-22: the chain's own answers for dummy.hostname are Lookups (test_lb_hostname_lookups).
    ("svc12.testns.example.com.", "A", "NOERROR", ["svc12.testns.example.com. 5 IN CNAME dummy.hostname."], [], []),
    ("_http._tcp.svc12.testns.example.com.", "SRV", "NOERROR", ["_http._tcp.svc12.testns.example.com. 5 IN SRV 0 100 80 dummy.hostname."], [], []),
    ("svc12.testns.example.com.", "SRV", "NOERROR", ["svc12.testns.example.com. 5 IN SRV 0 100 80 dummy.hostname."], [], []),
    ("svc-headless.testns.example.com.", "A", "NOERROR",
     ["svc-headless.testns.example.com. 5 IN A 1.2.3.4", "svc-headless.testns.example.com. 5 IN A 1.2.3.5"], [], []),
    ("svc-headless.testns.example.com.", "SRV", "NOERROR",
     ["svc-headless.testns.example.com. 5 IN SRV 0 50 80 endpoint-svc-0.svc-headless.testns.example.com.",
      "svc-headless.testns.example.com. 5 IN SRV 0 50 80 endpoint-svc-1.svc-headless.testns.example.com."], [],
     ["endpoint-svc-0.svc-headless.testns.example.com. 5 IN A 1.2.3.4", "endpoint-svc-1.svc-headless.testns.example.com. 5 IN A 1.2.3.5"]),
    ("_http._tcp.svc-headless.testns.example.com.", "SRV", "NOERROR",
     ["_http._tcp.svc-headless.testns.example.com. 5 IN SRV 0 50 80 endpoint-svc-0.svc-headless.testns.example.com.",
      "_http._tcp.svc-headless.testns.example.com. 5 IN SRV 0 50 80 endpoint-svc-1.svc-headless.testns.example.com."], [],
     ["endpoint-svc-0.svc-headless.testns.example.com. 5 IN A 1.2.3.4", "endpoint-svc-1.svc-headless.testns.example.com. 5 IN A 1.2.3.5"]),
    ("endpoint-svc-0.svc-headless.testns.example.com.", "SRV", "NOERROR",
     ["endpoint-svc-0.svc-headless.testns.example.com. 5 IN SRV 0 100 80 endpoint-svc-0.svc-headless.testns.example.com."], [],
     ["endpoint-svc-0.svc-headless.testns.example.com. 5 IN A 1.2.3.4"]),
    ("endpoint-svc-1.svc-headless.testns.example.com.", "SRV", "NOERROR",
     ["endpoint-svc-1.svc-headless.testns.example.com. 5 IN SRV 0 100 80 endpoint-svc-1.svc-headless.testns.example.com."], [],
     ["endpoint-svc-1.svc-headless.testns.example.com. 5 IN A 1.2.3.5"]),
    ("endpoint-svc-0.svc-headless.testns.example.com.", "A", "NOERROR", ["endpoint-svc-0.svc-headless.testns.example.com. 5 IN A 1.2.3.4"], [], []),
    ("endpoint-svc-1.svc-headless.testns.example.com.", "A", "NOERROR", ["endpoint-svc-1.svc-headless.testns.example.com. 5 IN A 1.2.3.5"], [], []),
]

# Source: plugin/k8s_external/apex_test.go TestApex (`testsApex`); ns1's address is the
# server's own (127.0.0.1, the listen address) since no endpoint of the fixture holds it.
APEX_TEST = [
    ("example.com.", "SOA", "NOERROR", [SOA], [], []),
    ("example.com.", "NS", "NOERROR", ["example.com. 5 IN NS ns1.dns.example.com."], [], ["ns1.dns.example.com. 5 IN A 127.0.0.1"]),
    ("example.com.", "SRV", "NOERROR", [], [SOA], []),
    ("dns.example.com.", "SRV", "NOERROR", [], [SOA], []),
    ("dns.example.com.", "NS", "NOERROR", [], [SOA], []),
    ("ns1.dns.example.com.", "SRV", "NOERROR", [], [SOA], []),
    ("ns1.dns.example.com.", "NS", "NOERROR", [], [SOA], []),
    ("ns1.dns.example.com.", "AAAA", "NOERROR", [], [SOA], []),
    ("ns1.dns.example.com.", "A", "NOERROR", ["ns1.dns.example.com. 5 IN A 127.0.0.1"], [], []),
]

# Derived from external.go, apex.go and plugin/kubernetes/external.go (spec 4.3, "derived").
DERIVED = [
    ("ns2.dns.example.com.", "A", "NXDOMAIN", [], [SOA], []),
    ("a.ns1.dns.example.com.", "A", "NXDOMAIN", [], [SOA], []),
    ("example.com.", "A", "NOERROR", [], [SOA], []),
    ("svc1.testns.example.com.", "TXT", "NOERROR", [], [SOA], []),
    ("a.b.svc1.testns.example.com.", "A", "NXDOMAIN", [], [SOA], []),  # port "a", protocol "b": no such port
    ("a.b.c.svc1.testns.example.com.", "A", "NXDOMAIN", [], [SOA], []),  # five labels below the zone
    ("foo.svc1.testns.example.com.", "A", "NOERROR", ["foo.svc1.testns.example.com. 5 IN A 1.2.3.4"], [], []),  # endpoint label ignored
    ("_https._tcp.svc1.testns.example.com.", "SRV", "NXDOMAIN", [], [SOA], []),
    ("1.1.1.1.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REVERSE_SOA], []),
    ("SVC1.TestNS.Example.COM.", "A", "NOERROR", ["SVC1.TestNS.Example.COM. 5 IN A 1.2.3.4"], [], []),
    ("http.tcp.svc1.testns.example.com.", "SRV", "NOERROR", ["http.tcp.svc1.testns.example.com. 5 IN SRV 0 100 80 svc1.testns.example.com."], [],
     ["svc1.testns.example.com. 5 IN A 1.2.3.4"]),  # the underscores are optional (stripUnderscore)
    ("svc12.testns.example.com.", "CNAME", "NOERROR", [], [SOA], []),  # only A and AAAA make the CNAME
    ("dns.in-addr.arpa.", "A", "NOERROR", [], [REVERSE_SOA], []),  # every zone has its `dns` sub-apex
]


@pytest.mark.parametrize("case", EXTERNAL_TEST, ids=[f"{i}:{c[0]}:{c[1]}" for i, c in enumerate(EXTERNAL_TEST, 1)])
def test_external_test_go(k1: Snapshot, case: tuple[Any, ...]) -> None:
    check(k1, case)


@pytest.mark.parametrize("case", APEX_TEST, ids=[f"{c[0]}:{c[1]}" for c in APEX_TEST])
def test_apex_test_go(k1: Snapshot, case: tuple[Any, ...]) -> None:
    reply = check(k1, case, ExternalOptions(zones=(("example", "com"),), headless=True))
    soa = [rr.rdata for rr in reply.answer + reply.authority if rr.rtype == 6]
    assert all(data.serial == k1.serial > 0 for data in soa)


@pytest.mark.parametrize("case", DERIVED, ids=[f"{c[0]}:{c[1]}" for c in DERIVED])
def test_derived(k1: Snapshot, case: tuple[Any, ...]) -> None:
    check(k1, case)


def test_not_in_a_zone_goes_to_the_next_plugin(k1: Snapshot) -> None:
    assert ask(k1, "svc1.testns.svc.cluster.local.", "A") is None
    assert ask(k1, "com.", "SOA") is None


def test_headless_off(k1: Snapshot) -> None:
    """Without `headless`, a headless Service without external addresses is not served (README)."""
    plain = ExternalOptions(zones=ZONES)
    check(k1, ("svc-headless.testns.example.com.", "A", "NXDOMAIN", [], [SOA], []), plain)
    check(k1, ("endpoint-svc-0.svc-headless.testns.example.com.", "A", "NXDOMAIN", [], [SOA], []), plain)
    check(k1, ("svc1.testns.example.com.", "A", "NOERROR", ["svc1.testns.example.com. 5 IN A 1.2.3.4"], [], []), plain)


def test_fallthrough_only_on_nxdomain(k1: Snapshot) -> None:
    through = ExternalOptions(zones=ZONES, headless=True, fallthrough=((),))
    reply = ask(k1, "svc0.testns.example.com.", "A", through)
    assert reply is not None and reply.fallthrough and reply.rcode == NXDOMAIN
    nodata = ask(k1, "svc1.testns.example.com.", "AAAA", through)
    assert nodata is not None and not nodata.fallthrough and nodata.rcode == NOERROR and nodata.authority
    apex = ask(k1, "ns2.dns.example.com.", "A", through)
    assert apex is not None and not apex.fallthrough and apex.rcode == NXDOMAIN  # the sub-apex never falls through
    elsewhere = ExternalOptions(zones=ZONES, headless=True, fallthrough=(("other", "org"),))
    reply = ask(k1, "svc0.testns.example.com.", "A", elsewhere)
    assert reply is not None and not reply.fallthrough


def test_ttls(k1: Snapshot) -> None:
    """k8s_external's ttl for A/AAAA/PTR/SOA/NS and SRV targets; the kubernetes ttl for SRV and CNAME."""
    options = ExternalOptions(zones=ZONES, headless=True, ttl=30, kubernetes_ttl=7)
    check(k1, ("svc1.testns.example.com.", "A", "NOERROR", ["svc1.testns.example.com. 30 IN A 1.2.3.4"], [], []), options)
    check(k1, ("svc1.testns.example.com.", "SRV", "NOERROR", ["svc1.testns.example.com. 7 IN SRV 0 100 80 svc1.testns.example.com."], [],
               ["svc1.testns.example.com. 30 IN A 1.2.3.4"]), options)
    check(k1, ("svc12.testns.example.com.", "A", "NOERROR", ["svc12.testns.example.com. 7 IN CNAME dummy.hostname."], [], []), options)
    check(k1, ("4.3.2.1.in-addr.arpa.", "PTR", "NOERROR", ["4.3.2.1.in-addr.arpa. 30 IN PTR svc1.testns.example.com."], [], []), options)
    check(k1, ("svc0.testns.example.com.", "A", "NXDOMAIN", [],
               ["example.com. 30 IN SOA ns1.dns.example.com. hostmaster.dns.example.com. SERIAL 7200 1800 86400 30"], []), options)
    # Without kubernetes_ttl, the snapshot's (--ttl) is the kubernetes plugin's.
    check(k1, ("svc1.testns.example.com.", "SRV", "NOERROR", ["svc1.testns.example.com. 5 IN SRV 0 100 80 svc1.testns.example.com."], [],
               ["svc1.testns.example.com. 30 IN A 1.2.3.4"]), ExternalOptions(zones=ZONES, ttl=30))


def test_apex_option_and_zone_spelling(k1: Snapshot) -> None:
    """SOA and NS names come from the configured zone; the NS glue is named below the question's spelling (apex.go)."""
    options = ExternalOptions(zones=ZONES, apex="testdns")
    soa = "example.com. 5 IN SOA ns1.testdns.example.com. hostmaster.testdns.example.com. SERIAL 7200 1800 86400 5"
    check(k1, ("Example.COM.", "NS", "NOERROR", ["example.com. 5 IN NS ns1.testdns.example.com."], [], ["ns1.testdns.Example.COM. 5 IN A 127.0.0.1"]), options)
    check(k1, ("SVC0.testns.EXAMPLE.com.", "A", "NXDOMAIN", [], [soa], []), options)
    check(k1, ("ns1.testdns.example.com.", "A", "NOERROR", ["ns1.testdns.example.com. 5 IN A 127.0.0.1"], [], []), options)
    check(k1, ("dns.example.com.", "A", "NXDOMAIN", [], [soa], []), options)  # `dns` is now just a namespace, and not one of ours


def test_every_zone_has_a_sub_apex(k1: Snapshot) -> None:
    """The apex loop tries every configured zone, and the SOA is that of the zone that matched (external.go)."""
    options = ExternalOptions(zones=(("example", "com"), ("sub", "example", "com")))
    soa = "sub.example.com. 5 IN SOA ns1.dns.sub.example.com. hostmaster.dns.sub.example.com. SERIAL 7200 1800 86400 5"
    check(k1, ("ns1.dns.sub.example.com.", "A", "NOERROR", ["ns1.dns.sub.example.com. 5 IN A 127.0.0.1"], [], []), options)
    check(k1, ("x.y.dns.sub.example.com.", "A", "NXDOMAIN", [], [soa], []), options)


def test_lb_hostname_lookups(k1: Snapshot) -> None:
    """A hostname is a CNAME plus the server's own answer for it (A/AAAA, TC copied), or an SRV
    target with the A and AAAA answers in Additional (msg_to_dns.go)."""
    reply = ask(k1, "svc12.testns.example.com.", "A")
    assert isinstance(reply, ExternalAnswer)
    assert reply.lookups == (Lookup("dummy.hostname", A, ANSWER, 1, True),)
    reply = ask(k1, "svc12.testns.example.com.", "AAAA")
    assert isinstance(reply, ExternalAnswer) and reply.lookups == (Lookup("dummy.hostname", AAAA, ANSWER, 1, True),)
    reply = ask(k1, "_http._tcp.svc12.testns.example.com.", "SRV")
    assert isinstance(reply, ExternalAnswer)
    assert reply.lookups == (Lookup("dummy.hostname", A, ADDITIONAL, 0, False), Lookup("dummy.hostname", AAAA, ADDITIONAL, 0, False))
    assert not isinstance(ask(k1, "svc11.testns.example.com.", "A"), ExternalAnswer)
    assert not isinstance(ask(k1, "svc12.testns.example.com.", "TXT"), ExternalAnswer)


def test_address_from_reverse() -> None:
    """dnsutil.ExtractAddressFromReverse: full reverse names only; IPv4-mapped IPv6 reads as IPv4."""
    v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    mapped = "4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
    assert address_from_reverse(split("4.3.2.1.in-addr.arpa")) == "1.2.3.4"
    assert address_from_reverse(split(v6)) == "2001:db8::1"
    assert address_from_reverse(split(mapped)) == "1.2.3.4"
    for name in ("3.2.1.in-addr.arpa", "in-addr.arpa", "256.3.2.1.in-addr.arpa", "0.8.b.d.0.1.0.0.2.ip6.arpa", "4.3.2.1.example.com"):
        assert address_from_reverse(split(name)) == "", name


def k2_documents(dns_spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Cases no CoreDNS table has: the server's own Service (--ns-address 10.244.0.10), several
    addresses and ports, no ports, an ingress hostname among addresses, a shared address."""
    kube_dns = dns_spec or {"clusterIP": "10.96.0.10", "externalIPs": ["203.0.113.53", "2001:db8::53"], "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    return [
        service("kube-dns", kube_dns, namespace="kube-system"),
        endpoint_slice("kube-dns", [{"addresses": ["10.244.0.10"]}], namespace="kube-system", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]),
        service("two", {"clusterIP": "10.96.1.1", "externalIPs": ["198.51.100.1", "198.51.100.2"],
                        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}, namespace="shop"),
        service("noports", {"clusterIP": "10.96.1.2", "externalIPs": ["198.51.100.3"]}, namespace="shop"),
        service("mixed", {"type": "LoadBalancer", "clusterIP": "10.96.1.3", "externalIPs": ["198.51.100.4"], "ports": HTTP},
                {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}, {"ip": "198.51.100.5"}]}}, namespace="shop"),
        service("shared", {"clusterIP": "10.96.1.4", "externalIPs": ["198.51.100.1"], "ports": HTTP}, namespace="shop"),
        service("web", {"clusterIP": "10.96.1.5", "ports": HTTP}, namespace="shop"),
        endpoint_slice("web", [{"addresses": ["10.244.1.1"], "targetRef": {"kind": "Pod", "name": "web-0"}},
                               {"addresses": ["10.244.1.2"], "conditions": {"ready": False}}], namespace="shop"),
        service("mapped", {"clusterIP": "10.96.1.6", "externalIPs": ["::ffff:1.2.3.4"], "ports": HTTP}, namespace="shop"),
        service("hidden", {"clusterIP": "10.96.1.7", "externalIPs": ["198.51.100.9"], "ports": HTTP}, namespace="backstage"),
    ]


PLAIN = ExternalOptions(zones=ZONES)
HEADLESS = ExternalOptions(zones=ZONES, headless=True)


@pytest.fixture(scope="module")
def k2(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    return snapshot_of(tmp_path_factory.mktemp("k2"), k2_documents(), ns_address=("10.244.0.10",))


def test_ns1_is_our_services_external_addresses(k2: Snapshot) -> None:
    """ns.go nsAddrs(external=true): the external addresses of the Service whose endpoint is ours."""
    glue = ["ns1.dns.example.com. 5 IN A 203.0.113.53", "ns1.dns.example.com. 5 IN AAAA 2001:db8::53"]
    check(k2, ("example.com.", "NS", "NOERROR", ["example.com. 5 IN NS ns1.dns.example.com."], [], glue), PLAIN)
    check(k2, ("ns1.dns.example.com.", "AAAA", "NOERROR", ["ns1.dns.example.com. 5 IN AAAA 2001:db8::53"], [], []), HEADLESS)
    check(k2, ("ns1.dns.example.com.", "A", "NOERROR", ["ns1.dns.example.com. 5 IN A 203.0.113.53"], [], []), PLAIN)


def test_ns1_without_external_addresses(tmp_path: Path) -> None:
    """Our Service has no external address: NS without glue and ns1 NODATA; under `headless`, a
    headless Service of ours gives its endpoints' addresses."""
    headless_dns = {"clusterIP": "None", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    snap = snapshot_of(tmp_path, k2_documents(headless_dns), ns_address=("10.244.0.10",))
    check(snap, ("example.com.", "NS", "NOERROR", ["example.com. 5 IN NS ns1.dns.example.com."], [], []), PLAIN)
    check(snap, ("ns1.dns.example.com.", "A", "NOERROR", [], [SOA], []), PLAIN)
    check(snap, ("ns1.dns.example.com.", "A", "NOERROR", ["ns1.dns.example.com. 5 IN A 10.244.0.10"], [], []), HEADLESS)


def test_two_addresses_two_ports(k2: Snapshot) -> None:
    """One A per address; an SRV per (target, port), weighted over every entry: 4 entries, 25 each (msg_to_dns.go)."""
    check(k2, ("two.shop.example.com.", "A", "NOERROR", ["two.shop.example.com. 5 IN A 198.51.100.1", "two.shop.example.com. 5 IN A 198.51.100.2"], [], []))
    check(k2, ("two.shop.example.com.", "SRV", "NOERROR",
               ["two.shop.example.com. 5 IN SRV 0 25 80 two.shop.example.com.", "two.shop.example.com. 5 IN SRV 0 25 443 two.shop.example.com."], [],
               ["two.shop.example.com. 5 IN A 198.51.100.1", "two.shop.example.com. 5 IN A 198.51.100.2"]))
    # One port: two entries for one (target, port), so one SRV of weight 50 (the spec's example).
    check(k2, ("_https._tcp.two.shop.example.com.", "SRV", "NOERROR", ["_https._tcp.two.shop.example.com. 5 IN SRV 0 50 443 two.shop.example.com."], [],
               ["two.shop.example.com. 5 IN A 198.51.100.1", "two.shop.example.com. 5 IN A 198.51.100.2"]))
    check(k2, ("_https._udp.two.shop.example.com.", "SRV", "NXDOMAIN", [], [SOA], []))


def test_service_without_ports(k2: Snapshot) -> None:
    """The port -1 sentinel (object/service.go): addresses yes, SRV no, and no port name matches it."""
    check(k2, ("noports.shop.example.com.", "A", "NOERROR", ["noports.shop.example.com. 5 IN A 198.51.100.3"], [], []))
    check(k2, ("noports.shop.example.com.", "SRV", "NOERROR", [], [SOA], []))
    check(k2, ("_http._tcp.noports.shop.example.com.", "A", "NXDOMAIN", [], [SOA], []))


def test_hostname_among_addresses(k2: Snapshot) -> None:
    """Entries in order: externalIPs, then ingress (hostname, then ip); the lookup goes right after its CNAME."""
    reply = check(k2, ("mixed.shop.example.com.", "A", "NOERROR",
                       ["mixed.shop.example.com. 5 IN A 198.51.100.4", "mixed.shop.example.com. 5 IN CNAME lb.example.net.",
                        "mixed.shop.example.com. 5 IN A 198.51.100.5"], [], []))
    assert [rr.rtype for rr in reply.answer] == [A, 5, A]
    assert isinstance(reply, ExternalAnswer) and reply.lookups == (Lookup("lb.example.net", A, ANSWER, 2, True),)
    reply = check(k2, ("mixed.shop.example.com.", "SRV", "NOERROR",
                       ["mixed.shop.example.com. 5 IN SRV 0 33 80 mixed.shop.example.com.", "mixed.shop.example.com. 5 IN SRV 0 33 80 lb.example.net."], [],
                       ["mixed.shop.example.com. 5 IN A 198.51.100.4", "mixed.shop.example.com. 5 IN A 198.51.100.5"]))
    assert isinstance(reply, ExternalAnswer)
    assert [(x.qtype, x.section, x.position) for x in reply.lookups] == [(A, ADDITIONAL, 1), (AAAA, ADDITIONAL, 1)]


def test_ptr(k2: Snapshot) -> None:
    """ExternalReverse: every Service listing the address, in order; PTR targets use the first zone."""
    check(k2, ("1.100.51.198.in-addr.arpa.", "PTR", "NOERROR",
               ["1.100.51.198.in-addr.arpa. 5 IN PTR two.shop.example.com.", "1.100.51.198.in-addr.arpa. 5 IN PTR shared.shop.example.com."], [], []))
    # An ingress address has a PTR; a ClusterIP or an endpoint has none here.
    check(k2, ("5.100.51.198.in-addr.arpa.", "PTR", "NOERROR", ["5.100.51.198.in-addr.arpa. 5 IN PTR mixed.shop.example.com."], [], []))
    check(k2, ("1.1.96.10.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REVERSE_SOA], []))
    v6 = ".".join(reversed("20010db8000000000000000000000053")) + ".ip6.arpa."
    zones = ExternalOptions(zones=(("example", "com"), ("ip6", "arpa")))
    check(k2, (v6, "PTR", "NOERROR", [f"{v6} 5 IN PTR kube-dns.kube-system.example.com."], [], []), zones)


def test_namespaces(k2: Snapshot) -> None:
    """Exposure: the snapshot's namespaces by default, or the kubernetes `namespaces` given; and they must exist."""
    check(k2, ("hidden.backstage.example.com.", "A", "NOERROR", ["hidden.backstage.example.com. 5 IN A 198.51.100.9"], [], []))
    only_shop = ExternalOptions(zones=ZONES, namespaces=("shop",))
    check(k2, ("hidden.backstage.example.com.", "A", "NXDOMAIN", [], [SOA], []), only_shop)
    check(k2, ("9.100.51.198.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REVERSE_SOA], []), only_shop)
    check(k2, ("nowhere.example.com.", "A", "NXDOMAIN", [], [SOA], []), ExternalOptions(zones=ZONES, namespaces=()))
    check(k2, ("backstage.example.com.", "A", "NOERROR", [], [SOA], []), ExternalOptions(zones=ZONES, namespaces=()))


def test_endpoint_names_of_a_clusterip_service(k2: Snapshot) -> None:
    """Under `headless`, `<endpoint>.<svc>.<ns>` answers for a ClusterIP Service without external
    addresses from its ready endpoints; the Service name itself is still NXDOMAIN (external.go)."""
    check(k2, ("10-244-1-1.web.shop.example.com.", "A", "NOERROR", ["10-244-1-1.web.shop.example.com. 5 IN A 10.244.1.1"], [], []), HEADLESS)
    check(k2, ("10-244-1-2.web.shop.example.com.", "A", "NXDOMAIN", [], [SOA], []), HEADLESS)  # not ready
    check(k2, ("web.shop.example.com.", "A", "NXDOMAIN", [], [SOA], []), HEADLESS)
    check(k2, ("10-244-1-1.web.shop.example.com.", "A", "NXDOMAIN", [], [SOA], []), PLAIN)


def test_endpoint_pod_names(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, k2_documents(), endpoint_pod_names=True)
    check(snap, ("web-0.web.shop.example.com.", "SRV", "NOERROR", ["web-0.web.shop.example.com. 5 IN SRV 0 100 80 web-0.web.shop.example.com."], [],
                 ["web-0.web.shop.example.com. 5 IN A 10.244.1.1"]), HEADLESS)
    snap = snapshot_of(tmp_path / "noendpoints", k2_documents(), noendpoints=True)
    check(snap, ("10-244-1-1.web.shop.example.com.", "A", "NXDOMAIN", [], [SOA], []), HEADLESS)


def test_ipv4_mapped_address_is_an_a_record(k2: Snapshot) -> None:
    """HostType: an address Go's To4 accepts is served as A (msg/type.go)."""
    check(k2, ("mapped.shop.example.com.", "A", "NOERROR", ["mapped.shop.example.com. 5 IN A 1.2.3.4"], [], []))
    check(k2, ("mapped.shop.example.com.", "AAAA", "NOERROR", [], [SOA], []))


def test_serial_follows_external_addresses(tmp_path: Path) -> None:
    """The SOA serial is the snapshot's: it grows when only an external address changes, and not on a rebuild with no change."""
    pipeline = Pipeline(write(tmp_path, k1_documents()), Config(manifests=str(tmp_path)))
    first = pipeline.refresh(full=True).snapshot
    same = build(first.state, pipeline.config, first)
    assert same.serial == first.serial
    changed = k1_documents()
    changed[0]["spec"]["externalIPs"] = ["1.2.3.9"]
    write(tmp_path, changed)
    second = pipeline.refresh(full=True).snapshot
    assert second.serial > first.serial
    check(second, ("svc1.testns.example.com.", "A", "NOERROR", ["svc1.testns.example.com. 5 IN A 1.2.3.9"], [], []))
    check(second, ("4.3.2.1.in-addr.arpa.", "PTR", "NXDOMAIN", [], [REVERSE_SOA], []))


def test_index_holds_only_services_with_external_addresses(k2: Snapshot) -> None:
    index = k2.external_addresses
    assert sorted(index.by_name) == [("backstage", "hidden"), ("kube-system", "kube-dns"), ("shop", "mapped"), ("shop", "mixed"),
                                     ("shop", "noports"), ("shop", "shared"), ("shop", "two")]
    assert index.by_address["198.51.100.1"] == (("shop", "shared"), ("shop", "two"))  # Service (key) order
    assert "lb.example.net" not in index.by_address
    assert index.ns1 == ("203.0.113.53", "2001:db8::53")
