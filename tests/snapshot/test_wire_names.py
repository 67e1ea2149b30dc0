"""No invalid name leaves the server (RFC 1035 2.3.4): every record of every snapshot, over
generated clusters, encodes in a reply and an AXFR that dnspython decodes.

Names are drawn to be as long as Kubernetes allows (63-character Service, namespace, port
and host names; Pod names of up to 253 characters, dotted or not, as `--endpoint-pod-names`
reads them from targetRef) below zones of up to 200 octets.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusterdns.config.settings import Config
from clusterdns.derive.cluster import derive
from clusterdns.manifests.documents import Document
from clusterdns.objects.read import read_objects
from clusterdns.serve import transfer
from clusterdns.serve.handler import Handler
from clusterdns.snapshot.build import build as build_snapshot
from clusterdns.snapshot.table import Snapshot
from clusterdns.tools.zonefile import forward_records, rdata_text, reverse_records
from clusterdns.wire import parse_query

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@st.composite
def labels(draw: st.DrawFn, low: int = 1, high: int = 63, first: str = ALNUM) -> str:
    """A DNS-1123 label (a DNS-1035 one with `first` letters only) of low..high characters."""
    size = draw(st.integers(low, high))
    text = draw(st.sampled_from(first)) + draw(st.text(ALNUM + "-", min_size=size - 1, max_size=size - 1))
    return text if size == 1 else text[:-1] + draw(st.sampled_from(ALNUM))


@st.composite
def zones(draw: st.DrawFn) -> str:
    """A cluster domain of 1-4 labels, up to about 200 octets."""
    return ".".join(draw(st.lists(labels(1, 50, first="abcdefghijklmnopqrstuvwxyz"), min_size=1, max_size=4)))


@st.composite
def services(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """A Service (headless or not) with an EndpointSlice of 1-3 endpoints, or an ExternalName one."""
    name = draw(labels(first="abcdefghijklmnopqrstuvwxyz"))
    namespace = draw(labels())
    if draw(st.integers(0, 4)) == 0:
        spec = {"type": "ExternalName", "externalName": f"{draw(labels(1, 70))}.example.test"}  # over 63: left out
        return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}]
    headless = draw(st.booleans())
    port_name = draw(st.one_of(st.just(""), labels()))
    port = {"name": port_name, "port": 80, "protocol": "TCP"} if port_name else {"port": 80, "protocol": "TCP"}
    spec: dict[str, Any] = {"ports": [port]}
    spec["clusterIP"] = "None" if headless else f"10.96.{index // 250}.{index % 250 + 1}"
    endpoints = []
    for j in range(draw(st.integers(1, 3))):
        entry: dict[str, Any] = {"addresses": [f"10.244.{index}.{j + 1}"]}
        if draw(st.booleans()):
            entry["hostname"] = draw(labels())
        pod = draw(st.one_of(labels(), st.text(ALNUM + "-.", min_size=1, max_size=253)))
        entry["targetRef"] = {"kind": "Pod", "name": pod}
        endpoints.append(entry)
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": f"s{index}", "namespace": namespace, "labels": {"kubernetes.io/service-name": name}},
        "ports": [port], "endpoints": endpoints,
    }
    return [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}, slice_]


@st.composite
def clusters(draw: st.DrawFn) -> tuple[Config, list[dict[str, Any]]]:
    count = draw(st.integers(1, 4))
    docs = [doc for i in range(count) for doc in draw(services(i))]
    config = Config(zones=(draw(zones()), "in-addr.arpa"), endpoint_pod_names=draw(st.booleans()), pods="disabled",
                    ns_address=("10.244.0.1",))  # an endpoint of the first Service: NS names from endpoints
    return config, docs


def build(config: Config, docs: list[dict[str, Any]]) -> Snapshot:
    problems: list[Any] = []
    objects = read_objects([Document("gen.yaml", str(i), i + 1, doc) for i, doc in enumerate(docs)], problems)
    return build_snapshot(derive(objects, config, problems)[0], config)


def reply(handler: Handler, owner: str, rdtype: int, tcp: bool = True) -> dns.message.Message:
    query = dns.message.make_query(owner, rdtype, use_edns=0, payload=1232)
    wire = handler.respond(query.to_wire(), tcp=tcp)
    assert isinstance(wire, bytes), f"{owner} {rdtype}: no reply from the cache-free path"
    return dns.message.from_wire(wire)


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_every_record_encodes_and_decodes(cluster: tuple[Config, list[dict[str, Any]]]) -> None:
    config, docs = cluster
    snap = build(config, docs)
    handler = Handler(snap, config)
    zone = config.cluster_domain
    records = list(forward_records(snap, zone)) + list(reverse_records(snap, "in-addr.arpa"))
    for owner, rr in records:
        # The listing's text is what dnspython accepts, names and all ...
        dns.rrset.from_text(owner, rr.ttl, "IN", dns.rdatatype.to_text(rr.rtype), rdata_text(rr, zone))
        # ... and so is the reply the server sends for that owner and type.
        msg = reply(handler, owner, rr.rtype)
        assert msg.rcode() == 0 and msg.answer, msg.to_text()
    for target in [rr.rdata[3] for _, rr in records if rr.rtype == dns.rdatatype.SRV]:
        assert len(dns.name.from_text(target.text(zone)).to_wire()) <= 255
    wire = dns.message.make_query(zone, "AXFR").to_wire()
    for message in transfer.messages(snap, wire, parse_query(wire), len(zone.split("."))):
        dns.message.from_wire(message)


def test_a_long_pod_name_is_a_dashed_ip() -> None:
    """The issue's report: a 66-character Pod name became a 66-octet label that dnspython and
    dig reject (BadLabelType) in SRV answers and AXFR."""
    pod = "p" * 66
    docs = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
         "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
         "ports": [{"name": "http", "port": 80}],
         "endpoints": [{"addresses": ["10.244.1.5"], "targetRef": {"kind": "Pod", "name": pod}}]},
    ]
    config = Config(endpoint_pod_names=True)
    snap = build(config, docs)
    msg = reply(Handler(snap, config), "_http._tcp.web.default.svc.cluster.local", dns.rdatatype.SRV, tcp=False)
    assert [rd.target.to_text() for rd in msg.answer[0]] == ["10-244-1-5.web.default.svc.cluster.local."]
    assert ipaddress.ip_address(msg.additional[0][0].address) == ipaddress.ip_address("10.244.1.5")


def test_an_externalname_too_long_for_the_zone_is_left_out() -> None:
    """Its CNAME's owner would be over 255 octets below this zone: not in the transfer (which a
    secondary would reject whole), and a warning names the Service (review of issue 14's xfr)."""
    zone = ".".join(["z" * 60, "y" * 60, "cluster", "local"])
    name, namespace = "e" * 63, "n" * 63
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
             "spec": {"type": "ExternalName", "externalName": "long.example.test"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "short", "namespace": "default"},
             "spec": {"type": "ExternalName", "externalName": "short.example.test"}}]
    config = Config(zones=(zone,))
    snap = build(config, docs)
    assert [p.message for p in snap.problems if name in p.message] == [f"{name}.{namespace}.svc.<zone>: the name has 269 octets (at most 255): its records are not served"]
    wire = dns.message.make_query(zone, "AXFR").to_wire()
    owners = {r.name.to_text() for m in transfer.messages(snap, wire, parse_query(wire), 4) for r in dns.message.from_wire(m).answer}
    assert f"short.default.svc.{zone}." in owners and not any(o.startswith(name) for o in owners)


def test_an_externalname_with_a_label_over_63_octets_is_left_out() -> None:
    """Found by make fuzz-manifests: the API takes it (IsDNS1123Subdomain counts only the 253
    octets), and the CNAME went out with a 70-octet label, which dnspython and dig reject
    (BadLabelType). Now a warning names the field, and the name is answered as one whose
    externalName CoreDNS cannot serve (an IP address: NXDOMAIN)."""
    target = "x" * 70 + ".example.com"
    docs = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
             "spec": {"type": "ExternalName", "externalName": target}}]
    config = Config()
    snap = build(config, docs)
    assert [(p.field, p.message) for p in snap.problems] == [
        ("spec.externalName", f"externalName '{target[:59]}... (82 characters): label xxxxxxxxxxxxxxxx... has 70 octets (at most 63): its CNAME is not served")]
    msg = reply(Handler(snap, config), "ext.default.svc.cluster.local", dns.rdatatype.A)
    assert msg.rcode() == dns.rcode.NXDOMAIN and not msg.answer
