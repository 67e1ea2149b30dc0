"""The derived cluster: what the controllers would have made of the manifests.

These frozen types are the contract between derive/ (derive/cluster.py's derive() makes
them from manifest objects) and snapshot/ (snapshot/build.py compiles them into the table
the resolver answers from). Nothing here knows about DNS wire formats; nothing in
snapshot/ knows about YAML.
"""

from __future__ import annotations

from dataclasses import field

from clusterdns.errors import Problem
from clusterdns.frozen import frozen, maker


@frozen
class Source:
    """Where an object was read: manifest file, document index, first line."""

    file: str = ""
    doc: str = ""
    line: int = 0

    def __str__(self) -> str:
        text = self.file or "<derived>"
        if self.line:
            text += f":{self.line}"
        return text


@frozen
class ServicePort:
    """One entry of a Service's `spec.ports` (name is "" when the port is unnamed)."""

    name: str
    protocol: str  # upper case as the API writes it: TCP, UDP, SCTP
    port: int
    target_port: int | str | None = None


@frozen
class EndpointPort:
    """A port of an EndpointSlice (or Endpoints subset): the resolved target port."""

    name: str
    protocol: str
    port: int


@frozen
class EndpointAddress:
    """One endpoint address with the conditions the EndpointSlice controller sets.

    `ready` is the EndpointSlice `conditions.ready` (publishNotReadyAddresses already
    applied); only ready addresses are published in DNS (spec S20, CoreDNS C15).
    """

    ip: str  # canonical text form (ipaddress.ip_address(...).compressed)
    hostname: str = ""  # endpoint hostname; "" when the controller would not set one
    pod_name: str = ""  # targetRef.name when the target is a Pod
    pod_namespace: str = ""
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@frozen
class EndpointGroup:
    """Addresses that share one port list: an EndpointSlice, or an Endpoints subset.

    `ports` empty means the slice declares no ports: addresses still get A/AAAA records,
    but no SRV (CoreDNS records a "no port" sentinel for this case).
    """

    addresses: tuple[EndpointAddress, ...]
    ports: tuple[EndpointPort, ...] = ()
    name: str = ""  # the EndpointSlice/Endpoints name, or "" when derived
    source: Source = field(default_factory=Source)


@frozen
class Service:
    """A Service with its ClusterIPs and the endpoints the cluster would publish for it."""

    namespace: str
    name: str
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    cluster_ips: tuple[str, ...] = ()  # canonical text; empty when headless or ExternalName
    headless: bool = False  # spec.clusterIP == "None"
    external_name: str = ""  # ExternalName target without the trailing dot
    ports: tuple[ServicePort, ...] = ()
    selector: tuple[tuple[str, str], ...] | None = None  # None: no selector
    publish_not_ready: bool = False
    endpoints: tuple[EndpointGroup, ...] = ()
    endpoints_source: str = ""  # "EndpointSlice" | "Endpoints" | "selector" | ""
    source: Source = field(default_factory=Source)
    # spec.externalIPs then status.loadBalancer.ingress (ip, else hostname), in that order:
    # what CoreDNS's k8s_external serves (plugin/kubernetes/object/service.go ToService).
    external_addresses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@frozen
class ContainerPort:
    """`containers[].ports[]`: what a named targetPort resolves against."""

    name: str
    port: int
    protocol: str = "TCP"


@frozen
class Pod:
    """A Pod: as a manifest writes it (objects/pods.py reads it; derive/ keeps that very object
    when it has its IPs) or as derive/ makes it for a workload. One type for both: 150,000
    Pod manifests are not kept twice (18 MB)."""

    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...] = ()
    hostname: str = ""  # spec.hostname
    subdomain: str = ""  # spec.subdomain
    node_name: str = ""
    ports: tuple[ContainerPort, ...] = ()  # its containers' ports
    ips: tuple[str, ...] = ()  # status.podIPs / podIP (or assigned), canonical, IPv4 first; empty: to be assigned
    phase: str = "Running"
    ready: bool = True
    terminating: bool = False
    owners: tuple[tuple[str, str], ...] = ()  # ownerReferences (kind, name), controller first
    source: Source = field(default_factory=Source)

    @property
    def owner(self) -> str:
        """"Deployment/web", "ReplicaSet/web-5d9c8", ... or "" for a Pod of no controller."""
        return "/".join(self.owners[0]) if self.owners else ""


# A Pod from every field, in order: in C where it was built (frozen.py), for the 150,000 Pods
# objects/pods.py reads and derive/pod_ips.py makes at the envelope.
make_pod = maker(
    Pod, "namespace", "name", "labels", "hostname", "subdomain", "node_name", "ports", "ips", "phase", "ready", "terminating", "owners", "source"
)  # fmt: skip


ALWAYS_NAMESPACES = frozenset({"default", "kube-system"})  # exist in every cluster, written or not


@frozen
class ClusterState:
    """Everything DNS needs from the manifests, derived and validated."""

    services: tuple[Service, ...] = ()  # sorted by (namespace, name)
    pods: tuple[Pod, ...] = ()  # sorted by (namespace, name)
    namespaces: frozenset[str] = ALWAYS_NAMESPACES
    problems: tuple[Problem, ...] = ()

