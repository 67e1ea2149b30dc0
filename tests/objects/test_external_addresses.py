"""objects/external.py: spec.externalIPs and status.loadBalancer.ingress into a Service's
external_addresses, carried through derive() into the model (CoreDNS object/service.go ToService)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from clusterdns.config.settings import Config
from clusterdns.errors import Problem
from clusterdns.manifests.documents import Document
from clusterdns.objects import kinds as k8s
from clusterdns.objects.convert import from_manifest
from tests.helpers.manifests import load_state


def manifest(spec: dict[str, Any], status: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "shop"}, "spec": {"ports": [{"port": 80}], **spec}}
    if status is not None:
        data["status"] = status
    return data


def convert(spec: dict[str, Any], status: Any = None) -> tuple[k8s.Service, list[Problem]]:
    problems: list[Problem] = []
    svc = from_manifest(Document("lb.yaml", "2", 7, manifest(spec, status)), problems)
    assert isinstance(svc, k8s.Service)
    return svc, problems


def ingress(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"loadBalancer": {"ingress": list(entries)}}


def test_external_ips_then_ingress_in_order() -> None:
    """externalIPs first, then one entry per ingress: its ip when set, else its hostname."""
    svc, problems = convert(
        {"type": "LoadBalancer", "externalIPs": ["198.51.100.1", "2001:DB8:0::1"]},
        ingress({"hostname": "LB-1.Example.NET."}, {"ip": "203.0.113.7", "hostname": "ignored.example.net"}, {"ip": "2001:db8::7"}),
    )
    assert svc.external_addresses == ("198.51.100.1", "2001:db8::1", "lb-1.example.net", "203.0.113.7", "2001:db8::7")
    assert problems == []


def test_no_external_addresses_share_the_empty_tuple() -> None:
    svc, problems = convert({})
    assert svc.external_addresses is () and problems == []  # noqa: F632 (the shared empty tuple is the point)
    svc, problems = convert({"externalIPs": []}, {"loadBalancer": {}})
    assert svc.external_addresses is () and problems == []  # noqa: F632


def test_invalid_entries_are_reported_and_left_out() -> None:
    """A bad entry costs that entry, not the Service: a warning naming file, document, line and field."""
    svc, problems = convert(
        {"externalIPs": ["198.51.100.1", "not-an-ip", "127.0.0.1", "0.0.0.0", "169.254.1.1", "224.0.0.5"]},
        ingress({"hostname": "Bad_Host"}, {"hostname": "192.0.2.1"}, {"ip": "300.1.1.1"}, {}, {"hostname": "x" * 254}, "nonsense"),
    )
    assert svc.external_addresses == ("198.51.100.1",)
    assert svc.ports and svc.name == "lb"  # the rest of the Service is read as before
    fields = [p.field for p in problems]
    assert fields == [
        "spec.externalIPs[1]",
        "spec.externalIPs[2]",
        "spec.externalIPs[3]",
        "spec.externalIPs[4]",
        "spec.externalIPs[5]",
        "status.loadBalancer.ingress[0].hostname",
        "status.loadBalancer.ingress[1].hostname",
        "status.loadBalancer.ingress[2].ip",
        "status.loadBalancer.ingress[3]",
        "status.loadBalancer.ingress[4].hostname",
        "status.loadBalancer.ingress[5]",
    ]
    assert all((p.level, p.file, p.doc, p.line, p.kind, p.name) == ("warning", "lb.yaml", "2", 7, "Service", "shop/lb") for p in problems)
    assert "'not-an-ip' is not an IP address" in problems[0].message
    assert "loopback" in problems[1].message and "unspecified" in problems[2].message
    assert "link-local range" in problems[3].message and "multicast" in problems[4].message
    assert "not a valid DNS name" in problems[5].message and "not an IP address" in problems[6].message
    assert "neither ip nor hostname" in problems[8].message


def test_malformed_fields_are_reported_and_ignored() -> None:
    svc, problems = convert({"externalIPs": "198.51.100.1"}, {"loadBalancer": {"ingress": {"ip": "198.51.100.2"}}})
    assert svc.external_addresses == ()
    assert [p.field for p in problems] == ["spec.externalIPs", "status.loadBalancer.ingress"]
    svc, problems = convert({"externalIPs": ["198.51.100.1"]}, "pending")
    assert svc.external_addresses == ("198.51.100.1",) and [p.field for p in problems] == ["status"]


def test_derive_carries_them_into_the_model(tmp_path: Path) -> None:
    docs = [
        manifest({"clusterIP": "10.96.5.5", "externalIPs": ["198.51.100.1"]}, ingress({"hostname": "lb.example.net"})),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain", "namespace": "shop"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "shop", "labels": {"app": "x"}}, "spec": {}},
    ]
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump_all(docs))
    state = load_state(tmp_path, Config(manifests=str(tmp_path)))
    by_name = {s.name: s for s in state.services}
    assert by_name["lb"].external_addresses == ("198.51.100.1", "lb.example.net")
    assert by_name["lb"].cluster_ips == ("10.96.5.5",)
    plain = by_name["plain"]
    assert plain.external_addresses == () and plain.endpoints_source == "selector" and plain.endpoints
