"""Pod and workload (Deployment, ReplicaSet, StatefulSet, DaemonSet) manifests read into their
slim kinds; a workload keeps its Pod template, from which derive/ makes its Pods."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from typing import Any

from clusterdns.errors import shown
from clusterdns.model import make_pod
from clusterdns.objects.fields import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, PROTOCOL_OF, Reader, label_value, metadata, owners
from clusterdns.objects.kinds import ContainerPort, DaemonSet, Deployment, LabelSelector, Pod, PodTemplate, ReplicaSet, StatefulSet


def _container_ports(r: Reader, pod_spec: dict[str, Any], prefix: str) -> tuple[ContainerPort, ...]:
    ports = []
    for i, raw in enumerate(r.sequence(pod_spec.get("containers"), f"{prefix}.containers")):
        container = r.entry(raw, f"{prefix}.containers", i)
        for j, p in enumerate(r.sequence(container.get("ports"), f"{prefix}.containers[{i}].ports")):
            ports.append(_plain_port(p) or _container_port(r, p, f"{prefix}.containers[{i}].ports[{j}]"))
    return r.share(tuple(ports))


def _plain_port(entry: Any) -> ContainerPort | None:
    """A port as nearly every manifest writes it (a name or none, a port number, TCP, UDP, SCTP or
    no protocol), read without naming its fields for errors it cannot have; None otherwise."""
    if type(entry) is not dict:
        return None
    name, port, protocol = entry.get("name"), entry.get("containerPort"), entry.get("protocol", "TCP")
    protocol = PROTOCOL_OF.get(protocol) if type(protocol) is str else None
    if (name is None or type(name) is str) and type(port) is int and 1 <= port <= 65535 and protocol is not None:
        return ContainerPort(name or "", port, protocol)
    return None


def _container_port(r: Reader, raw: Any, field: str) -> ContainerPort:
    entry = r.mapping(raw, field)
    return ContainerPort(
        name=r.string(entry.get("name"), f"{field}.name"),
        port=r.port(entry.get("containerPort"), f"{field}.containerPort"),
        protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
    )


def _pod_identity(r: Reader, pod_spec: dict[str, Any], prefix: str) -> tuple[str, str]:
    """spec.hostname and spec.subdomain: DNS-1123 labels (ValidatePodSpec, spec 2.5)."""
    hostname = r.hostname(pod_spec.get("hostname"), f"{prefix}.hostname")
    subdomain = r.dns_name(pod_spec.get("subdomain"), f"{prefix}.subdomain", DNS1123_LABEL, "subdomain (DNS-1123 label)", required=False)
    return hostname, subdomain


def pod(r: Reader, data: dict[str, Any]) -> Pod:
    namespace, name, meta = metadata(r, data, True, DNS1123_SUBDOMAIN, "Pod name (DNS-1123 subdomain)")
    spec = r.mapping(data.get("spec"), "spec")
    status = r.mapping(data.get("status"), "status")
    hostname, subdomain = _pod_identity(r, spec, "spec")
    phase = sys.intern(r.string(status.get("phase"), "status.phase") or "Running")
    labels = r.labels(meta.get("labels"), "metadata.labels")
    node_name = r.share(r.string(spec.get("nodeName"), "spec.nodeName"))  # a Node's Pods share its name
    ports = _container_ports(r, spec, "spec")
    ips = _pod_ips(r, status)
    ready = _pod_ready(r, status, phase)
    terminating = meta.get("deletionTimestamp") is not None
    return make_pod(namespace, name, labels, hostname, subdomain, node_name, ports, ips, phase, ready, terminating, owners(r, meta), r.source)


def _pod_ips(r: Reader, status: dict[str, Any]) -> tuple[str, ...]:
    """status.podIPs (or podIP), canonical, deduplicated, IPv4 first."""
    ips: list[str] = []
    first = status.get("podIP")
    if first:
        ips.append(r.ip(first, "status.podIP"))
    for i, raw in enumerate(r.sequence(status.get("podIPs"), "status.podIPs")):
        entry = raw if isinstance(raw, str) else r.entry(raw, "status.podIPs", i).get("ip")
        # podIPs[0] is podIP (the API server keeps them so): the same text, read once.
        ip = ips[0] if first and entry == first else r.ip(entry, f"status.podIPs[{i}].ip")
        if ip not in ips:
            ips.append(ip)
    return tuple(sorted(ips, key=lambda ip: ":" in ip)) if len(ips) > 1 else tuple(ips)


def _pod_ready(r: Reader, status: dict[str, Any], phase: str) -> bool:
    """The PodReady condition when written; otherwise a status-less Pod counts as Ready (spec 2.4)."""
    for i, raw in enumerate(r.sequence(status.get("conditions"), "status.conditions")):
        condition = r.entry(raw, "status.conditions", i)
        if condition.get("type") == "Ready":
            return label_value(condition.get("status")).lower() == "true"
    return phase == "Running"


# The template digest's JSON (sorted keys, no spaces); one encoder, not one per call as
# json.dumps(...) with options makes (3.9 -> 3.1 µs per Deployment).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _template(r: Reader, spec: dict[str, Any]) -> PodTemplate:
    raw = r.mapping(spec.get("template"), "spec.template")
    meta = r.mapping(raw.get("metadata"), "spec.template.metadata")
    pod_spec = r.mapping(raw.get("spec"), "spec.template.spec")
    hostname, subdomain = _pod_identity(r, pod_spec, "spec.template.spec")
    canonical = _CANONICAL_JSON.encode(raw)
    return PodTemplate(
        labels=r.labels(meta.get("labels"), "spec.template.metadata.labels"),
        hostname=hostname,
        subdomain=subdomain,
        ports=_container_ports(r, pod_spec, "spec.template.spec"),
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _selector(r: Reader, spec: dict[str, Any], template: PodTemplate) -> LabelSelector:
    """spec.selector (required by apps/v1 and must select the template's labels)."""
    raw = spec.get("selector")
    if raw is None:
        # extensions/v1beta1 defaulted the selector to the template labels; be as liberal.
        r.warn("spec.selector", "missing; using the template labels")
        return LabelSelector(template.labels)
    selector = r.mapping(raw, "spec.selector")
    expressions = []
    for i, e in enumerate(r.sequence(selector.get("matchExpressions"), "spec.selector.matchExpressions")):
        field = f"spec.selector.matchExpressions[{i}]"
        entry = r.mapping(e, field)
        op = r.string(entry.get("operator"), f"{field}.operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise r.fail(f"{field}.operator", f"unknown operator {shown(op)}")
        values = tuple(label_value(v) for v in r.sequence(entry.get("values"), f"{field}.values"))
        expressions.append((r.string(entry.get("key"), f"{field}.key"), op, values))
    result = LabelSelector(r.labels(selector.get("matchLabels"), "spec.selector.matchLabels"), tuple(expressions))
    if not result.match_labels and not result.match_expressions:
        raise r.fail("spec.selector", "an empty selector is invalid for a workload")
    if not result.matches(dict(template.labels)):
        raise r.fail("spec.selector", "selector does not match template labels")
    return result


def _replicas(r: Reader, spec: dict[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else r.integer(value, "spec.replicas", 0, 1_000_000)  # API default 1


def _workload_parts(r: Reader, data: dict[str, Any], grammar: re.Pattern[str] = DNS1123_SUBDOMAIN, what: str = "name (DNS-1123 subdomain)"
                    ) -> tuple[str, str, dict[str, Any], dict[str, Any], PodTemplate, LabelSelector]:
    namespace, name, meta = metadata(r, data, True, grammar, f"{r.kind} {what}")
    spec = r.mapping(data.get("spec"), "spec")
    template = _template(r, spec)
    return namespace, name, meta, spec, template, _selector(r, spec, template)


def deployment(r: Reader, data: dict[str, Any]) -> Deployment:
    namespace, name, _, spec, template, selector = _workload_parts(r, data)
    return Deployment(namespace, name, _replicas(r, spec), selector, template, r.source)


def replica_set(r: Reader, data: dict[str, Any]) -> ReplicaSet:
    namespace, name, meta, spec, template, selector = _workload_parts(r, data)
    return ReplicaSet(namespace, name, _replicas(r, spec), selector, template, r.source, owners(r, meta))


def stateful_set(r: Reader, data: dict[str, Any]) -> StatefulSet:
    # Its Pods are named <name>-<ordinal> and take that as their hostname, a DNS-1123 label
    # (apps ValidateStatefulSetName, Pod spec.hostname): a dotted name can make no Pod.
    namespace, name, _, spec, template, selector = _workload_parts(r, data, DNS1123_LABEL, "name (DNS-1123 label: its Pods' hostnames)")
    service_name = r.dns_name(spec.get("serviceName"), "spec.serviceName", DNS1035_LABEL, "Service name (DNS-1035 label)", required=False)
    ordinals = r.mapping(spec.get("ordinals"), "spec.ordinals")
    start = 0 if ordinals.get("start") is None else r.integer(ordinals.get("start"), "spec.ordinals.start", 0, 2**31 - 1)
    return StatefulSet(namespace, name, _replicas(r, spec), selector, template, r.source, service_name, start)


def daemon_set(r: Reader, data: dict[str, Any]) -> DaemonSet:
    namespace, name, _, _, template, selector = _workload_parts(r, data)
    return DaemonSet(namespace, name, 1, selector, template, r.source)
