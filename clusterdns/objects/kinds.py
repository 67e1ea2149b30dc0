"""The Kubernetes kinds DNS reads, slim and frozen: only the fields cluster DNS needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field

from clusterdns.frozen import frozen
from clusterdns.model import ContainerPort, EndpointAddress, EndpointPort, Pod, ServicePort, Source  # Pod: one type with derive's

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs

PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # ties an EndpointSlice to its Service
# Deprecated in 1.11 (kubernetes/kubernetes PR #63742), removed by PR #108020; the DNS
# spec still names it (S20), so it counts as publishNotReadyAddresses (spec 2.6).
TOLERATE_UNREADY = "service.alpha.kubernetes.io/tolerate-unready-endpoints"


@frozen
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


@frozen
class PodTemplate:
    """A workload's `spec.template`, reduced; `digest` is sha256 of its canonical JSON."""

    labels: Labels = ()
    hostname: str = ""
    subdomain: str = ""
    ports: tuple[ContainerPort, ...] = ()
    digest: str = ""


@frozen
class Namespace:
    name: str
    source: Source = field(default_factory=Source)
    namespace: str = ""  # cluster-scoped


@frozen
class Node:
    name: str
    source: Source = field(default_factory=Source)
    namespace: str = ""  # cluster-scoped


@frozen
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
    # spec.externalIPs, then one entry per status.loadBalancer.ingress (its ip, else its
    # hostname), as CoreDNS's object/service.go ToService lists them for k8s_external.
    external_addresses: tuple[str, ...] = ()


@frozen
class EndpointsSubset:
    """One `subsets[]` entry: `addresses` (ready) then `notReadyAddresses` (ready=False)."""

    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...] = ()


@frozen
class Endpoints:
    """The legacy Endpoints of a Service (same name); the mirroring controller makes slices of it."""

    namespace: str
    name: str
    subsets: tuple[EndpointsSubset, ...] = ()
    source: Source = field(default_factory=Source)


@frozen
class EndpointSlice:
    """A slice of a Service's endpoints (discovery.k8s.io), tied to it by a label."""

    namespace: str
    name: str
    service_name: str  # label kubernetes.io/service-name; "" when missing
    address_type: str = "IPv4"
    endpoints: tuple[EndpointAddress, ...] = ()  # one per address
    ports: tuple[EndpointPort, ...] = ()
    source: Source = field(default_factory=Source)


@frozen
class Workload:
    """What every workload kind has: a Pod template, the selector of its Pods, their number."""

    namespace: str
    name: str
    replicas: int = 1  # a DaemonSet has one Pod per Node instead (derive/workloads.py)
    selector: LabelSelector = LabelSelector()
    template: PodTemplate = PodTemplate()
    source: Source = field(default_factory=Source)


@frozen
class Deployment(Workload):
    pass


@frozen
class ReplicaSet(Workload):
    owners: tuple[tuple[str, str], ...] = ()


@frozen
class StatefulSet(Workload):
    service_name: str = ""
    ordinals_start: int = 0


@frozen
class DaemonSet(Workload):
    pass


@frozen
class ObjectRef:
    """An object of a kind DNS does not read: only its namespace matters (it exists, spec C4)."""

    kind: str
    namespace: str
    name: str
    source: Source = field(default_factory=Source)


KubeObject = Namespace | Node | Service | Endpoints | EndpointSlice | Pod | Deployment | ReplicaSet | StatefulSet | DaemonSet
