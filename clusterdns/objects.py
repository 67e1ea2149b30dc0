"""Slim, validated Kubernetes objects: only what cluster DNS needs, read from one manifest."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from clusterdns.errors import ManifestError, Problem
from clusterdns.manifests import Document
from clusterdns.model import EndpointAddress, EndpointPort, ServicePort, Source

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs
_V = TypeVar("_V")

PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # ties an EndpointSlice to its Service
# Deprecated in 1.11 (kubernetes/kubernetes PR #63742), removed by PR #108020; the DNS
# spec still names it (S20), so it counts as publishNotReadyAddresses (spec 2.6).
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"

# Name grammars of k8s.io/apimachinery/pkg/util/validation (spec 2.5).
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


# --- the objects ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A workload's `spec.selector`: matchLabels plus matchExpressions (In/NotIn/Exists/DoesNotExist)."""

    match_labels: Labels = ()
    match_expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self.match_labels:
            if labels.get(key) != value:
                return False
        for key, op, values in self.match_expressions:
            present = key in labels
            if op == "In" and not (present and labels[key] in values):
                return False
            if op == "NotIn" and present and labels[key] in values:
                return False
            if op == "Exists" and not present:
                return False
            if op == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True, slots=True)
class ContainerPort:
    """`containers[].ports[]`: what a named targetPort resolves against."""

    name: str
    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """A workload's `spec.template`, reduced; `digest` is sha256 of its canonical JSON."""

    labels: Labels = ()
    hostname: str = ""
    subdomain: str = ""
    ports: tuple[ContainerPort, ...] = ()
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    source: Source = field(default_factory=Source)
    namespace: str = ""  # cluster-scoped


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    source: Source = field(default_factory=Source)
    namespace: str = ""  # cluster-scoped


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    cluster_ips: tuple[str, ...] = ()  # as written (canonical); empty: allocate, or headless
    headless: bool = False
    ip_families: tuple[str, ...] = ()  # "IPv4" / "IPv6" as written
    ip_family_policy: str = ""  # "" when not written (SingleStack)
    external_name: str = ""
    ports: tuple[ServicePort, ...] = ()
    selector: Labels | None = None  # None: no selector (also for `selector: {}`)
    publish_not_ready: bool = False
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class EndpointsSubset:
    """One `subsets[]` entry: `addresses` (ready) then `notReadyAddresses` (ready=False)."""

    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoints:
    namespace: str
    name: str
    subsets: tuple[EndpointsSubset, ...] = ()
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class EndpointSlice:
    namespace: str
    name: str
    service_name: str  # label kubernetes.io/service-name; "" when missing
    address_type: str = "IPv4"
    endpoints: tuple[EndpointAddress, ...] = ()  # one per address
    ports: tuple[EndpointPort, ...] = ()
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: Labels = ()
    hostname: str = ""
    subdomain: str = ""
    node_name: str = ""
    ports: tuple[ContainerPort, ...] = ()
    ips: tuple[str, ...] = ()  # status.podIPs / podIP, IPv4 first; empty: to be assigned
    phase: str = "Running"
    ready: bool = True
    terminating: bool = False
    owners: tuple[tuple[str, str], ...] = ()  # ownerReferences (kind, name), controller first
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class Deployment:
    namespace: str
    name: str
    replicas: int = 1
    selector: LabelSelector = LabelSelector()
    template: PodTemplate = PodTemplate()
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class ReplicaSet:
    namespace: str
    name: str
    replicas: int = 1
    selector: LabelSelector = LabelSelector()
    template: PodTemplate = PodTemplate()
    owners: tuple[tuple[str, str], ...] = ()
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class StatefulSet:
    namespace: str
    name: str
    replicas: int = 1
    selector: LabelSelector = LabelSelector()
    template: PodTemplate = PodTemplate()
    service_name: str = ""
    ordinals_start: int = 0
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class DaemonSet:
    namespace: str
    name: str
    selector: LabelSelector = LabelSelector()
    template: PodTemplate = PodTemplate()
    source: Source = field(default_factory=Source)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object of a kind DNS does not read: only its namespace matters (it exists, spec C4)."""

    kind: str
    namespace: str
    name: str
    source: Source = field(default_factory=Source)


def object_ref(doc: Document) -> ObjectRef | None:
    """The namespace reference of any namespaced document (None when it names no namespace)."""
    meta = doc.data.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not isinstance(namespace, str) or not _DNS1123_LABEL.fullmatch(namespace):
        return None
    return ObjectRef(str(doc.data.get("kind", "")), namespace, str(meta.get("name", "")), Source(doc.file, doc.doc, doc.line))  # type: ignore[union-attr]


KubeObject = Namespace | Node | Service | Endpoints | EndpointSlice | Pod | Deployment | ReplicaSet | StatefulSet | DaemonSet
Workload = Deployment | ReplicaSet | StatefulSet | DaemonSet


# --- reading helpers ----------------------------------------------------------------


class _Reader:
    """Validation context for one document: raises ManifestError naming file, line and field."""

    def __init__(self, doc: Document, kind: str, problems: list[Problem] | None, relaxed_service_names: bool = False) -> None:
        self.doc = doc
        self.kind = kind
        self.name = ""
        self.problems = problems
        self.relaxed_service_names = relaxed_service_names
        self.source = Source(doc.file, doc.doc, doc.line)

    def problem(self, level: str, field: str, message: str) -> Problem:
        d = self.doc
        return Problem(level, message, file=d.file, doc=d.doc, line=d.line, kind=self.kind, name=self.name, field=field)

    def fail(self, field: str, message: str) -> ManifestError:
        return ManifestError(self.problem("error", field, message))

    def warn(self, field: str, message: str) -> None:
        if self.problems is not None:
            self.problems.append(self.problem("warning", field, message))

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a mapping, not {_type_name(value)}")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(field, f"must be a list, not {_type_name(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(field, f"must be a string, not {_type_name(value)}")
        return str(value)

    def flag(self, value: Any, field: str) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(field, f"must be true or false, not {value!r}")

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"must be an integer, not {_type_name(value)} {value!r}")
        if not low <= value <= high:
            raise self.fail(field, f"{value} is out of range {low}-{high}")
        return value

    def port(self, value: Any, field: str) -> int:
        if value is None:
            raise self.fail(field, "required")
        return self.integer(value, field, 1, 65535)

    def protocol(self, value: Any, field: str) -> str:
        if value is None:
            return "TCP"  # API default
        proto = _PROTOCOLS.get(self.string(value, field).upper())
        if proto is None:
            raise self.fail(field, f"unsupported protocol {value!r} (TCP, UDP or SCTP)")
        return proto

    def ip(self, value: Any, field: str) -> str:
        text = self.string(value, field).strip()
        try:
            if "%" in text:  # zone-scoped IPv6 is never a Kubernetes address
                raise ValueError(text)
            return ipaddress.ip_address(text).compressed
        except ValueError:
            raise self.fail(field, f"{value!r} is not an IP address") from None

    def dns_name(self, value: Any, field: str, grammar: re.Pattern[str], what: str, required: bool = True) -> str:
        text = self.string(value, field)
        if not text:
            if required:
                raise self.fail(field, "required")
            return ""
        limit = 253 if grammar is _DNS1123_SUBDOMAIN else 63
        if len(text) > limit or not grammar.fullmatch(text):
            raise self.fail(field, f"{text!r} is not a valid {what}")
        return text

    def hostname(self, value: Any, field: str) -> str:
        """An optional hostname (Pod spec.hostname, an endpoint's hostname): one DNS-1123 label."""
        return self.dns_name(value, field, _DNS1123_LABEL, "hostname (DNS-1123 label)", required=False)

    def labels(self, value: Any, field: str) -> Labels:
        return _share(tuple(sorted((str(k), label_value(v)) for k, v in self.mapping(value, field).items())))


_PROTOCOLS = {p: p for p in PROTOCOLS}  # one string each, not one per port
# Equal label sets and port lists, as a workload's Pods and the Services that select them
# have, are kept once: 10,000 Services + 50,000 Pod manifests, 63 -> 36 MB of objects.
_shared: dict[Any, Any] = {}
_SHARED_MAX = 50_000


def _share(value: _V) -> _V:
    """An equal value seen before (immutable and hashable), or this one."""
    found = _shared.get(value)
    if found is None:
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        _shared[value] = found = value
    return found  # type: ignore[no-any-return]


def label_value(value: Any) -> str:
    """A label value as the API would hold it (YAML may have read `true` or `1` as non-strings)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _group(api_version: Any) -> str | None:
    """The API group of an apiVersion ("" for core v1); None when it is not a string."""
    if not isinstance(api_version, str):
        return None
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def _metadata(
    r: _Reader, data: dict[str, Any], namespaced: bool, name_grammar: re.Pattern[str], what: str
) -> tuple[str, str, dict[str, Any]]:
    meta = r.mapping(data.get("metadata"), "metadata")
    name = r.string(meta.get("name"), "metadata.name")
    r.name = name
    r.dns_name(name, "metadata.name", name_grammar, what)
    namespace = ""
    if namespaced:
        # No metadata.namespace means the namespace kubectl applies to: `default`.
        namespace = r.dns_name(meta.get("namespace") or "default", "metadata.namespace", _DNS1123_LABEL, "namespace name (DNS-1123 label)")
        namespace = sys.intern(namespace)
        r.name = f"{namespace}/{name}"
    return namespace, name, meta


def _owners(r: _Reader, meta: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    refs = [
        r.mapping(ref, f"metadata.ownerReferences[{i}]")
        for i, ref in enumerate(r.sequence(meta.get("ownerReferences"), "metadata.ownerReferences"))
    ]
    refs.sort(key=lambda ref: not ref.get("controller"))  # the managing controller first
    return tuple((str(ref.get("kind", "")), str(ref.get("name", ""))) for ref in refs)


# --- converters, one per kind ---------------------------------------------------------


def _namespace(r: _Reader, data: dict[str, Any]) -> Namespace:
    _, name, _ = _metadata(r, data, False, _DNS1123_LABEL, "namespace name (DNS-1123 label)")
    return Namespace(name, r.source)


def _node(r: _Reader, data: dict[str, Any]) -> Node:
    _, name, _ = _metadata(r, data, False, _DNS1123_SUBDOMAIN, "node name (DNS-1123 subdomain)")
    return Node(name, r.source)


def _service(r: _Reader, data: dict[str, Any]) -> Service:
    # Service names are DNS-1035 labels (ValidateServiceName = NameIsDNS1035Label, spec 2.5);
    # with the RelaxedServiceNameValidation feature gate, DNS-1123 labels: a leading digit is
    # allowed (KEP-5311; the e2e test "should work with a service name that starts with a digit").
    if r.relaxed_service_names:
        namespace, name, meta = _metadata(r, data, True, _DNS1123_LABEL, "Service name (DNS-1123 label)")
    else:
        namespace, name, meta = _metadata(r, data, True, _DNS1035_LABEL, "Service name (DNS-1035 label; --relaxed-service-names admits a leading digit)")
    spec = r.mapping(data.get("spec"), "spec")
    svc_type = r.string(spec.get("type"), "spec.type") or "ClusterIP"
    if svc_type not in SERVICE_TYPES:
        raise r.fail("spec.type", f"unknown Service type {svc_type!r}")
    annotations = r.mapping(meta.get("annotations"), "metadata.annotations")
    publish = r.flag(spec.get("publishNotReadyAddresses"), "spec.publishNotReadyAddresses")
    publish = publish or label_value(annotations.get(TOLERATE_UNREADY)).lower() == "true"
    external_name = ""
    cluster_ips: tuple[str, ...] = ()
    headless = False
    if svc_type == "ExternalName":
        external_name = _external_name(r, spec.get("externalName"))
    else:
        cluster_ips, headless = _cluster_ips(r, spec)
    selector = r.labels(spec.get("selector"), "spec.selector") or None  # `{}` is no selector (spec 2.4)
    return Service(
        namespace=namespace,
        name=name,
        type=svc_type,
        cluster_ips=cluster_ips,
        headless=headless,
        ip_families=_ip_families(r, spec.get("ipFamilies")),
        ip_family_policy=_ip_family_policy(r, spec.get("ipFamilyPolicy")),
        external_name=external_name,
        ports=_service_ports(r, spec.get("ports")),
        selector=selector,
        publish_not_ready=publish,
        source=r.source,
    )


def _external_name(r: _Reader, value: Any) -> str:
    field = "spec.externalName"
    text = r.string(value, field).strip().lower().rstrip(".")  # an FQDN may end in "."
    if not text:
        raise r.fail(field, "required for type ExternalName")
    if len(text) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(text):
        raise r.fail(field, f"{value!r} is not a valid DNS name")
    return text


def _cluster_ips(r: _Reader, spec: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """spec.clusterIP / spec.clusterIPs: ("None" is headless, "" or absent: allocate)."""
    single = r.string(spec.get("clusterIP"), "spec.clusterIP").strip()
    many = [r.string(v, f"spec.clusterIPs[{i}]").strip() for i, v in enumerate(r.sequence(spec.get("clusterIPs"), "spec.clusterIPs"))]
    many = [v for v in many if v]
    if single and many and single != many[0]:
        raise r.fail("spec.clusterIPs[0]", f"{many[0]!r} must match spec.clusterIP {single!r}")
    written = many or ([single] if single else [])
    if any(v == "None" for v in written):
        if len(written) > 1:
            raise r.fail("spec.clusterIPs", "a headless Service (None) can have only one entry")
        return (), True
    if len(written) > 2:
        raise r.fail("spec.clusterIPs", "at most two addresses, one per IP family")
    field = "spec.clusterIPs" if many else "spec.clusterIP"
    ips = tuple(r.ip(v, f"{field}[{i}]" if many else field) for i, v in enumerate(written))
    if len(ips) == 2 and (":" in ips[0]) == (":" in ips[1]):
        raise r.fail("spec.clusterIPs", "the two addresses must be of different IP families")
    return ips, False


def _ip_families(r: _Reader, value: Any) -> tuple[str, ...]:
    families = tuple(r.string(v, f"spec.ipFamilies[{i}]") for i, v in enumerate(r.sequence(value, "spec.ipFamilies")))
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            raise r.fail(f"spec.ipFamilies[{i}]", f"unknown IP family {family!r} (IPv4 or IPv6)")
    if len(set(families)) != len(families):
        raise r.fail("spec.ipFamilies", "an IP family is listed twice")
    return families


def _ip_family_policy(r: _Reader, value: Any) -> str:
    policy = r.string(value, "spec.ipFamilyPolicy")
    if policy and policy not in IP_FAMILY_POLICIES:
        raise r.fail("spec.ipFamilyPolicy", f"unknown policy {policy!r}")
    return policy


def _service_ports(r: _Reader, value: Any) -> tuple[ServicePort, ...]:
    ports = []
    entries = r.sequence(value, "spec.ports")
    for i, raw in enumerate(entries):
        field = f"spec.ports[{i}]"
        entry = r.mapping(raw, field)
        name = r.dns_name(entry.get("name"), f"{field}.name", _DNS1123_LABEL, "port name (DNS-1123 label)", required=False)
        if not name and len(entries) > 1:
            r.warn(f"{field}.name", "a Service with several ports must name each one; this port gets no SRV record")
        ports.append(
            ServicePort(
                name=name,
                protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
                port=r.port(entry.get("port"), f"{field}.port"),
                target_port=_target_port(r, entry.get("targetPort"), f"{field}.targetPort"),
            )
        )
    names = [p.name for p in ports if p.name]
    if len(set(names)) != len(names):
        r.warn("spec.ports", "port names are not unique")
    return _share(tuple(ports))


def _target_port(r: _Reader, value: Any, field: str) -> int | str | None:
    """targetPort is an IntOrString: a number, or the name of a container port."""
    if value is None or value == "":
        return None  # the API defaults it to `port`
    if isinstance(value, str):
        if value.isdigit():
            return r.integer(int(value), field, 1, 65535)
        return value
    return r.integer(value, field, 1, 65535)


def _endpoint_port(r: _Reader, raw: Any, field: str, port_required: bool) -> EndpointPort | None:
    entry = r.mapping(raw, field)
    if entry.get("port") is None and not port_required:
        r.warn(f"{field}.port", "a port without a number is ignored")
        return None
    return EndpointPort(
        name=r.string(entry.get("name"), f"{field}.name"),
        protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
        port=r.port(entry.get("port"), f"{field}.port"),
    )


def _endpoint_ports(r: _Reader, value: Any, field: str, port_required: bool) -> tuple[EndpointPort, ...]:
    ports = (_endpoint_port(r, raw, f"{field}[{i}]", port_required) for i, raw in enumerate(r.sequence(value, field)))
    return tuple(p for p in ports if p is not None)


def _target_pod(r: _Reader, raw: Any, field: str, namespace: str) -> tuple[str, str]:
    """(pod name, pod namespace) of a targetRef that points at a Pod, else ("", "")."""
    ref = r.mapping(raw, field)
    if ref and ref.get("kind", "Pod") == "Pod":
        return r.string(ref.get("name"), f"{field}.name"), r.string(ref.get("namespace"), f"{field}.namespace") or namespace
    return "", ""


def _endpoints(r: _Reader, data: dict[str, Any]) -> Endpoints:
    namespace, name, _ = _metadata(r, data, True, _DNS1123_SUBDOMAIN, "Endpoints name (DNS-1123 subdomain)")
    subsets = []
    for i, raw in enumerate(r.sequence(data.get("subsets"), "subsets")):
        field = f"subsets[{i}]"
        subset = r.mapping(raw, field)
        addresses = [
            _endpoints_address(r, a, f"{field}.addresses[{j}]", namespace, True)
            for j, a in enumerate(r.sequence(subset.get("addresses"), f"{field}.addresses"))
        ]
        addresses += [
            _endpoints_address(r, a, f"{field}.notReadyAddresses[{j}]", namespace, False)
            for j, a in enumerate(r.sequence(subset.get("notReadyAddresses"), f"{field}.notReadyAddresses"))
        ]
        ports = _endpoint_ports(r, subset.get("ports"), f"{field}.ports", port_required=True)
        subsets.append(EndpointsSubset(tuple(addresses), ports))
    return Endpoints(namespace, name, tuple(subsets), r.source)


def _endpoints_address(r: _Reader, raw: Any, field: str, namespace: str, ready: bool) -> EndpointAddress:
    entry = r.mapping(raw, field)
    pod_name, pod_namespace = _target_pod(r, entry.get("targetRef"), f"{field}.targetRef", namespace)
    return EndpointAddress(
        ip=r.ip(entry.get("ip"), f"{field}.ip"),
        hostname=r.hostname(entry.get("hostname"), f"{field}.hostname"),
        pod_name=pod_name,
        pod_namespace=pod_namespace,
        node_name=r.string(entry.get("nodeName"), f"{field}.nodeName"),
        ready=ready,
        serving=ready,
        terminating=False,
    )


def _endpoint_slice(r: _Reader, data: dict[str, Any]) -> EndpointSlice | None:
    namespace, name, meta = _metadata(r, data, True, _DNS1123_SUBDOMAIN, "EndpointSlice name (DNS-1123 subdomain)")
    labels = dict(r.labels(meta.get("labels"), "metadata.labels"))
    address_type = r.string(data.get("addressType"), "addressType") or "IPv4"
    if address_type not in ("IPv4", "IPv6", "FQDN"):
        raise r.fail("addressType", f"unknown address type {address_type!r}")
    if address_type == "FQDN":  # deprecated and never read by CoreDNS
        r.warn("addressType", "FQDN EndpointSlices are ignored")
        return None
    endpoints: list[EndpointAddress] = []
    for i, raw in enumerate(r.sequence(data.get("endpoints"), "endpoints")):
        endpoints.extend(_slice_endpoint(r, raw, f"endpoints[{i}]", namespace))
    ports = _endpoint_ports(r, data.get("ports"), "ports", port_required=False)
    return EndpointSlice(namespace, name, labels.get(SERVICE_NAME_LABEL, ""), address_type, tuple(endpoints), ports, r.source)


def _slice_endpoint(r: _Reader, raw: Any, field: str, namespace: str) -> list[EndpointAddress]:
    entry = r.mapping(raw, field)
    conditions = r.mapping(entry.get("conditions"), f"{field}.conditions")
    # discovery.k8s.io/v1: "ready" nil means ready (CoreDNS C15); "serving" nil means
    # the same as ready; "terminating" nil means false.
    ready_raw = conditions.get("ready")
    ready = True if ready_raw is None else r.flag(ready_raw, f"{field}.conditions.ready")
    serving_raw = conditions.get("serving")
    serving = ready if serving_raw is None else r.flag(serving_raw, f"{field}.conditions.serving")
    terminating = r.flag(conditions.get("terminating"), f"{field}.conditions.terminating")
    pod_name, pod_namespace = _target_pod(r, entry.get("targetRef"), f"{field}.targetRef", namespace)
    node_name = r.string(entry.get("nodeName"), f"{field}.nodeName")
    if not node_name:  # discovery.k8s.io/v1beta1 kept it in topology
        node_name = r.string(r.mapping(entry.get("topology"), f"{field}.topology").get("kubernetes.io/hostname"), f"{field}.topology")
    hostname = r.hostname(entry.get("hostname"), f"{field}.hostname")
    addresses = r.sequence(entry.get("addresses"), f"{field}.addresses")
    if not addresses:
        raise r.fail(f"{field}.addresses", "required: at least one address")
    return [
        EndpointAddress(
            ip=r.ip(a, f"{field}.addresses[{j}]"),
            hostname=hostname,
            pod_name=pod_name,
            pod_namespace=pod_namespace,
            node_name=node_name,
            ready=ready,
            serving=serving,
            terminating=terminating,
        )
        for j, a in enumerate(addresses)
    ]


def _container_ports(r: _Reader, pod_spec: dict[str, Any], prefix: str) -> tuple[ContainerPort, ...]:
    ports = []
    for i, raw in enumerate(r.sequence(pod_spec.get("containers"), f"{prefix}.containers")):
        container = r.mapping(raw, f"{prefix}.containers[{i}]")
        for j, p in enumerate(r.sequence(container.get("ports"), f"{prefix}.containers[{i}].ports")):
            field = f"{prefix}.containers[{i}].ports[{j}]"
            entry = r.mapping(p, field)
            ports.append(
                ContainerPort(
                    name=r.string(entry.get("name"), f"{field}.name"),
                    port=r.port(entry.get("containerPort"), f"{field}.containerPort"),
                    protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
                )
            )
    return _share(tuple(ports))


def _pod_identity(r: _Reader, pod_spec: dict[str, Any], prefix: str) -> tuple[str, str]:
    """spec.hostname and spec.subdomain: DNS-1123 labels (ValidatePodSpec, spec 2.5)."""
    hostname = r.hostname(pod_spec.get("hostname"), f"{prefix}.hostname")
    subdomain = r.dns_name(pod_spec.get("subdomain"), f"{prefix}.subdomain", _DNS1123_LABEL, "subdomain (DNS-1123 label)", required=False)
    return hostname, subdomain


def _pod(r: _Reader, data: dict[str, Any]) -> Pod:
    namespace, name, meta = _metadata(r, data, True, _DNS1123_SUBDOMAIN, "Pod name (DNS-1123 subdomain)")
    spec = r.mapping(data.get("spec"), "spec")
    status = r.mapping(data.get("status"), "status")
    hostname, subdomain = _pod_identity(r, spec, "spec")
    phase = sys.intern(r.string(status.get("phase"), "status.phase") or "Running")
    return Pod(
        namespace=namespace,
        name=name,
        labels=r.labels(meta.get("labels"), "metadata.labels"),
        hostname=hostname,
        subdomain=subdomain,
        node_name=r.string(spec.get("nodeName"), "spec.nodeName"),
        ports=_container_ports(r, spec, "spec"),
        ips=_pod_ips(r, status),
        phase=phase,
        ready=_pod_ready(r, status, phase),
        terminating=meta.get("deletionTimestamp") is not None,
        owners=_owners(r, meta),
        source=r.source,
    )


def _pod_ips(r: _Reader, status: dict[str, Any]) -> tuple[str, ...]:
    """status.podIPs (or podIP), canonical, deduplicated, IPv4 first."""
    ips: list[str] = []
    if status.get("podIP"):
        ips.append(r.ip(status["podIP"], "status.podIP"))
    for i, raw in enumerate(r.sequence(status.get("podIPs"), "status.podIPs")):
        entry = raw if isinstance(raw, str) else r.mapping(raw, f"status.podIPs[{i}]").get("ip")
        ip = r.ip(entry, f"status.podIPs[{i}].ip")
        if ip not in ips:
            ips.append(ip)
    return tuple(sorted(ips, key=lambda ip: ":" in ip))


def _pod_ready(r: _Reader, status: dict[str, Any], phase: str) -> bool:
    """The PodReady condition when written; otherwise a status-less Pod counts as Ready (spec 2.4)."""
    for i, raw in enumerate(r.sequence(status.get("conditions"), "status.conditions")):
        condition = r.mapping(raw, f"status.conditions[{i}]")
        if condition.get("type") == "Ready":
            return label_value(condition.get("status")).lower() == "true"
    return phase == "Running"


# The template digest's JSON (sorted keys, no spaces); one encoder, not one per call as
# json.dumps(...) with options makes (3.9 -> 3.1 µs per Deployment).
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _template(r: _Reader, spec: dict[str, Any]) -> PodTemplate:
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


def _selector(r: _Reader, spec: dict[str, Any], template: PodTemplate) -> LabelSelector:
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
            raise r.fail(f"{field}.operator", f"unknown operator {op!r}")
        values = tuple(label_value(v) for v in r.sequence(entry.get("values"), f"{field}.values"))
        expressions.append((r.string(entry.get("key"), f"{field}.key"), op, values))
    result = LabelSelector(r.labels(selector.get("matchLabels"), "spec.selector.matchLabels"), tuple(expressions))
    if not result.match_labels and not result.match_expressions:
        raise r.fail("spec.selector", "an empty selector is invalid for a workload")
    if not result.matches(dict(template.labels)):
        raise r.fail("spec.selector", "selector does not match template labels")
    return result


def _replicas(r: _Reader, spec: dict[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else r.integer(value, "spec.replicas", 0, 1_000_000)  # API default 1


def _workload_parts(r: _Reader, data: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any], PodTemplate, LabelSelector]:
    namespace, name, meta = _metadata(r, data, True, _DNS1123_SUBDOMAIN, f"{r.kind} name (DNS-1123 subdomain)")
    spec = r.mapping(data.get("spec"), "spec")
    template = _template(r, spec)
    return namespace, name, meta, spec, template, _selector(r, spec, template)


def _deployment(r: _Reader, data: dict[str, Any]) -> Deployment:
    namespace, name, _, spec, template, selector = _workload_parts(r, data)
    return Deployment(namespace, name, _replicas(r, spec), selector, template, r.source)


def _replica_set(r: _Reader, data: dict[str, Any]) -> ReplicaSet:
    namespace, name, meta, spec, template, selector = _workload_parts(r, data)
    return ReplicaSet(namespace, name, _replicas(r, spec), selector, template, _owners(r, meta), r.source)


def _stateful_set(r: _Reader, data: dict[str, Any]) -> StatefulSet:
    namespace, name, _, spec, template, selector = _workload_parts(r, data)
    service_name = r.dns_name(spec.get("serviceName"), "spec.serviceName", _DNS1035_LABEL, "Service name (DNS-1035 label)", required=False)
    ordinals = r.mapping(spec.get("ordinals"), "spec.ordinals")
    start = 0 if ordinals.get("start") is None else r.integer(ordinals.get("start"), "spec.ordinals.start", 0, 2**31 - 1)
    return StatefulSet(namespace, name, _replicas(r, spec), selector, template, service_name, start, r.source)


def _daemon_set(r: _Reader, data: dict[str, Any]) -> DaemonSet:
    namespace, name, _, _, template, selector = _workload_parts(r, data)
    return DaemonSet(namespace, name, selector, template, r.source)


_APPS_GROUPS = ("apps", "extensions")  # extensions/v1beta1 served workloads before apps/v1
_CONVERTERS: dict[tuple[str, str], Callable[[_Reader, dict[str, Any]], KubeObject | None]] = {
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "Service"): _service,
    ("", "Endpoints"): _endpoints,
    ("", "Pod"): _pod,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    **{(g, "Deployment"): _deployment for g in _APPS_GROUPS},
    **{(g, "ReplicaSet"): _replica_set for g in _APPS_GROUPS},
    **{(g, "StatefulSet"): _stateful_set for g in _APPS_GROUPS},
    **{(g, "DaemonSet"): _daemon_set for g in _APPS_GROUPS},
}
_DEFAULT_GROUP = {kind: group for group, kind in _CONVERTERS if group != "extensions"}


def from_manifest(doc: Document, problems: list[Problem] | None = None, relaxed_service_names: bool = False) -> KubeObject | None:
    """The slim object for a manifest document; None for kinds DNS does not read.

    Raises ManifestError (file, document, line, kind, name, field) when a field DNS needs
    is missing or invalid. Warnings about usable-but-odd objects go to `problems`.
    """
    kind = doc.data.get("kind")
    if not isinstance(kind, str):
        return None
    group = _group(doc.data.get("apiVersion"))
    if group is None:  # apiVersion missing: assume the kind's usual group
        group = _DEFAULT_GROUP.get(kind, "")
    converter = _CONVERTERS.get((group, kind))
    if converter is None:  # another kind, or a CRD that reuses a name (Knative's Service)
        return None
    return converter(_Reader(doc, kind, problems, relaxed_service_names), doc.data)
