"""Derive what the cluster's controllers would make of the manifests (spec Part 2)."""

from __future__ import annotations

import gc
import hashlib
import ipaddress
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clusterdns import objects as k8s
from clusterdns.config import Config
from clusterdns.errors import ManifestError, Problem
from clusterdns.manifests import Entry, read_directory
from clusterdns.model import ClusterState, EndpointAddress, EndpointGroup, EndpointPort, Pod, Service, ServicePort, Source

# The alphabet of generated names and pod-template-hash: no vowels, no 0/1/3
# (k8s.io/apimachinery pkg/util/rand/rand.go, spec 2.2).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5  # names.SimpleNameGenerator appends 5 random characters
MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH  # generateName is cut to 58 characters
ALWAYS_NAMESPACES = frozenset({"default", "kube-system"})

# Addresses a cluster hands out by convention (spec 2.1): kubernetes.default gets the
# first one, kubeadm's DNS Service the tenth. No other Service is given these.
WELL_KNOWN_OFFSETS = {("default", "kubernetes"): 1, ("kube-system", "kube-dns"): 10}
RESERVED_OFFSETS = (1, 10)

_ALLOCATION_ROUNDS = 32  # hashed candidates per key before a linear scan

Key = tuple[str, str]  # (namespace, name)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- entry points ---------------------------------------------------------------------


def load(root: str | Path, config: Config) -> ClusterState:
    """Read every manifest under `root` and derive the cluster; problems are collected, never raised."""
    problems: list[Problem] = []
    return derive(read_objects(read_directory(root), problems), config, problems)


def read_objects(entries: Iterable[Entry], problems: list[Problem]) -> list[k8s.KubeObject | k8s.ObjectRef]:
    """The objects of read documents; Problems (parse errors, invalid objects) go to `problems`.

    Documents of other kinds become ObjectRefs when they name a namespace, because any
    object in a namespace shows that the namespace exists.
    """
    out: list[k8s.KubeObject | k8s.ObjectRef] = []
    for entry in entries:
        if isinstance(entry, Problem):
            problems.append(entry)
            continue
        try:
            obj = k8s.from_manifest(entry, problems)
        except ManifestError as e:
            problems.append(e.problem)
            continue
        if obj is None:
            ref = k8s.object_ref(entry)
            if ref is not None:
                out.append(ref)
        else:
            out.append(obj)
    return out


def derive(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem] | None = None) -> ClusterState:
    """The ClusterState the controllers would produce from these objects.

    A pure function of the objects and the config. `problems` (those found while reading,
    for instance) are extended with the derivation's warnings and returned in the state.
    """
    problems = problems if problems is not None else []
    with _gc_paused():
        return _derive(objects, config, problems)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while tens of thousands of objects are built.

    Derivation makes no reference cycles (frozen dataclasses and tuples), so nothing
    waits for the collector; without the pause, full collections cost a third of the time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _derive(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem]) -> ClusterState:
    objs = _dedupe(objects, problems)
    pod_objects = _all_pods(objs, problems)
    taken = _explicit_addresses(pod_objects, objs)
    pods = _pods_with_ips(pod_objects, config, taken, problems)
    services = _services(objs.services, config, problems)
    services = _with_endpoints(services, objs, pods, pod_objects, problems)
    _check_stateful_sets(objs.stateful_sets, services, problems)
    return ClusterState(
        services=tuple(sorted(services, key=lambda s: s.key)),
        pods=tuple(pods),
        namespaces=_namespaces(objs),
        problems=tuple(problems),
    )


# --- duplicates and namespaces -----------------------------------------------------------


def _source_order(source: Source) -> tuple[str, tuple[int, ...]]:
    """Sort key of where an object was read: path, then document ("2" < "10", "0/3")."""
    return source.file, tuple(int(p) for p in source.doc.split("/") if p.isdigit())


@dataclass
class _Objects:
    """The objects of each kind, one per (namespace, name)."""

    namespaces: list[k8s.Namespace] = field(default_factory=list)
    nodes: list[k8s.Node] = field(default_factory=list)
    services: list[k8s.Service] = field(default_factory=list)  # sorted by (namespace, name)
    endpoints: list[k8s.Endpoints] = field(default_factory=list)
    slices: list[k8s.EndpointSlice] = field(default_factory=list)
    pods: list[k8s.Pod] = field(default_factory=list)
    deployments: list[k8s.Deployment] = field(default_factory=list)
    replica_sets: list[k8s.ReplicaSet] = field(default_factory=list)
    stateful_sets: list[k8s.StatefulSet] = field(default_factory=list)
    daemon_sets: list[k8s.DaemonSet] = field(default_factory=list)
    refs: list[k8s.ObjectRef] = field(default_factory=list)

    def add(self, obj: k8s.KubeObject) -> None:
        match obj:
            case k8s.Namespace():
                self.namespaces.append(obj)
            case k8s.Node():
                self.nodes.append(obj)
            case k8s.Service():
                self.services.append(obj)
            case k8s.Endpoints():
                self.endpoints.append(obj)
            case k8s.EndpointSlice():
                self.slices.append(obj)
            case k8s.Pod():
                self.pods.append(obj)
            case k8s.Deployment():
                self.deployments.append(obj)
            case k8s.ReplicaSet():
                self.replica_sets.append(obj)
            case k8s.StatefulSet():
                self.stateful_sets.append(obj)
            case k8s.DaemonSet():
                self.daemon_sets.append(obj)

    def namespaced(self) -> Iterator[Sequence[k8s.KubeObject | k8s.ObjectRef]]:
        yield from (self.services, self.endpoints, self.slices, self.pods, self.deployments, self.replica_sets)
        yield from (self.stateful_sets, self.daemon_sets, self.refs)


def _dedupe(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], problems: list[Problem]) -> _Objects:
    """One object per (kind, namespace, name): the one read last (by path, then document) wins.

    Each kind keeps first-seen order, except Services, sorted by (namespace, name).
    ObjectRefs are kept as they come (only their namespaces count).
    """
    winners: dict[tuple[type, str, str], tuple[int, k8s.KubeObject]] = {}
    out = _Objects()
    for index, obj in enumerate(objects):
        if isinstance(obj, k8s.ObjectRef):
            out.refs.append(obj)
            continue
        key = (type(obj), obj.namespace, obj.name)
        other = winners.get(key)
        if other is None:
            winners[key] = (index, obj)
            continue
        first, last = sorted((other, (index, obj)), key=lambda t: (_source_order(t[1].source), t[0]))
        winners[key] = last
        problems.append(_problem(last[1], "warning", f"defined twice: {first[1].source} and {last[1].source}; the later one is used"))
    for _, obj in winners.values():
        out.add(obj)
    out.services.sort(key=lambda s: (s.namespace, s.name))
    return out


def _namespaces(objs: _Objects) -> frozenset[str]:
    """A namespace exists when a Namespace object or any object in it exists (spec C4)."""
    names = set(ALWAYS_NAMESPACES)
    names.update(n.name for n in objs.namespaces)
    for group in objs.namespaced():
        names.update(o.namespace for o in group)
    return frozenset(names)


def _problem(obj: k8s.KubeObject, level: str, message: str, field: str = "") -> Problem:
    s = obj.source
    return Problem(level, message, file=s.file, doc=s.doc, line=s.line, kind=type(obj).__name__, name=_display_name(obj), field=field)


def _display_name(obj: k8s.KubeObject) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


# --- Pods from workloads ----------------------------------------------------------------


def _encode(number: int, length: int) -> str:
    """`length` characters of ALPHABET from a number (base 27)."""
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return "".join(chars)


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def template_hash(digest: str) -> str:
    """A pod-template-hash look-alike: 10 characters, as ComputeHash's output looks (spec 2.2).

    Kubernetes prints an FNV-32a as decimal and maps each digit byte through ALPHABET
    (SafeEncodeString: alphabet[byte % 27], so 0-9 become 4-9,b,c,d,f). Go's struct dump
    cannot be reproduced, so the number comes from the template's sha256 instead.
    """
    number = int(digest[:16], 16) % 10**10
    return "".join(ALPHABET[ord(c) % len(ALPHABET)] for c in f"{number:010d}")


def _generated_names(base: str, count: int) -> list[str]:
    """`count` names like the apiserver's generateName: base[:58] + 5 characters, stable per index."""
    prefix = base[:MAX_GENERATED_BASE]
    names: list[str] = []
    seen: set[str] = set()
    for i in range(count):
        attempt = 0
        while True:
            name = prefix + _encode(_digest_int(f"{base}\x00{i}\x00{attempt}"), GENERATED_SUFFIX_LENGTH)
            if name not in seen:
                break
            attempt += 1
        seen.add(name)
        names.append(name)
    return names


def _template_pod(owner: k8s.Workload, name: str, labels: k8s.Labels, **identity: str) -> k8s.Pod:
    """A Pod stamped from a workload template: no status, so Running and Ready (spec 2.4)."""
    t = owner.template
    return k8s.Pod(
        namespace=owner.namespace,
        name=name,
        labels=labels,
        hostname=identity.get("hostname", t.hostname),
        subdomain=identity.get("subdomain", t.subdomain),
        node_name=identity.get("node_name", ""),
        ports=t.ports,
        owners=((type(owner).__name__, owner.name),),
        source=owner.source,
    )


def _with_labels(labels: k8s.Labels, *extra: tuple[str, str]) -> k8s.Labels:
    merged = dict(labels)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def _deployment_pods(d: k8s.Deployment) -> list[k8s.Pod]:
    # The Deployment controller makes ReplicaSet <deploy>-<pod-template-hash> and labels
    # its Pods with pod-template-hash (pkg/controller/deployment/sync.go, spec 2.2).
    pod_hash = template_hash(d.template.digest)
    rs_name = f"{d.name}-{pod_hash}"
    labels = _with_labels(d.template.labels, ("pod-template-hash", pod_hash))
    return [_template_pod(d, name, labels) for name in _generated_names(f"{rs_name}-", d.replicas)]


def _replica_set_pods(rs: k8s.ReplicaSet) -> list[k8s.Pod]:
    return [_template_pod(rs, name, rs.template.labels) for name in _generated_names(f"{rs.name}-", rs.replicas)]


def _stateful_set_pods(sts: k8s.StatefulSet) -> list[k8s.Pod]:
    # Names <sts>-<ordinal> from ordinals.start; initIdentity sets hostname = pod name and
    # subdomain = serviceName; updateIdentity adds two labels (spec 2.3).
    pods = []
    for ordinal in range(sts.ordinals_start, sts.ordinals_start + sts.replicas):
        name = f"{sts.name}-{ordinal}"
        labels = _with_labels(
            sts.template.labels, ("statefulset.kubernetes.io/pod-name", name), ("apps.kubernetes.io/pod-index", str(ordinal))
        )
        pods.append(_template_pod(sts, name, labels, hostname=name, subdomain=sts.service_name))
    return pods


def _daemon_set_pods(ds: k8s.DaemonSet, nodes: Sequence[str]) -> list[k8s.Pod]:
    """One Pod per Node (node selectors and taints are not modelled); one Pod when there are no Nodes."""
    if not nodes:
        return [_template_pod(ds, _generated_names(f"{ds.name}-", 1)[0], ds.template.labels)]
    pods = []
    for node in nodes:
        name = f"{ds.name}-"[:MAX_GENERATED_BASE] + _encode(_digest_int(f"{ds.name}\x00{node}"), GENERATED_SUFFIX_LENGTH)
        pods.append(_template_pod(ds, name, ds.template.labels, node_name=node))
    return pods


def _all_pods(objs: _Objects, problems: list[Problem]) -> list[k8s.Pod]:
    """Bare Pods plus the Pods of every workload whose own Pods are not in the manifests.

    A `kubectl get -A -o yaml` dump holds Deployments, their ReplicaSets and their Pods:
    a workload whose Pods (or, for a Deployment, whose ReplicaSet) are present adds nothing.
    """
    controlled = {(p.namespace, *p.owners[0]) for p in objs.pods if p.owners}
    controlled |= {(rs.namespace, *rs.owners[0]) for rs in objs.replica_sets if rs.owners}
    nodes = sorted(n.name for n in objs.nodes)
    stamped: list[k8s.Pod] = []
    for d in objs.deployments:
        if (d.namespace, "Deployment", d.name) not in controlled:
            stamped += _deployment_pods(d)
    for rs in objs.replica_sets:
        if (rs.namespace, "ReplicaSet", rs.name) not in controlled:
            stamped += _replica_set_pods(rs)
    for sts in objs.stateful_sets:
        if (sts.namespace, "StatefulSet", sts.name) not in controlled:
            stamped += _stateful_set_pods(sts)
    for ds in objs.daemon_sets:
        if (ds.namespace, "DaemonSet", ds.name) not in controlled:
            stamped += _daemon_set_pods(ds, nodes)
    by_key = {(p.namespace, p.name): p for p in objs.pods}
    for pod in stamped:
        key = (pod.namespace, pod.name)
        if key in by_key:
            problems.append(
                _problem(by_key[key], "warning", f"a Pod of {'/'.join(pod.owners[0])} has the same name; the Pod manifest is used")
            )
            continue
        by_key[key] = pod
    return [by_key[k] for k in sorted(by_key)]


# --- address allocation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Band:
    """A run of candidate addresses: integers first .. first+size-1."""

    first: int
    size: int


def _key_hashes(key: Key) -> tuple[int, int]:
    number = int.from_bytes(hashlib.blake2b(f"{key[0]}/{key[1]}".encode(), digest_size=16).digest(), "big")
    return number >> 64, number & 0xFFFF_FFFF_FFFF_FFFF


def _allocate(keys: Sequence[Key], bands: Sequence[_Band], taken: set[int]) -> dict[Key, int]:
    """Addresses for `keys` (sorted), each a pure function of its key unless hashes collide.

    Round r gives every unplaced key the candidate h1 + r*h2 (double hashing) in the first
    band; a candidate that is taken, or wanted by an earlier key in the same round, sends
    the key to the next round. So adding or removing one key moves no other key's address
    unless their candidates collide. Keys still unplaced after the rounds (a nearly full
    band) scan linearly, then the other bands. `taken` is updated.
    """
    result: dict[Key, int] = {}
    band = bands[0] if bands else _Band(0, 0)
    pending = list(keys)
    hashes = {key: _key_hashes(key) for key in pending}
    if band.size > 0:
        step_range = max(band.size - 1, 1)
        for round_ in range(_ALLOCATION_ROUNDS):
            claimed: dict[int, Key] = {}
            later: list[Key] = []
            for key in pending:
                h1, h2 = hashes[key]
                address = band.first + (h1 + round_ * (h2 % step_range + 1)) % band.size
                if address in taken or address in claimed:
                    later.append(key)
                else:
                    claimed[address] = key
            for address, key in claimed.items():
                result[key] = address
            taken.update(claimed)
            pending = later
            if not pending:
                break
    for key in pending:
        found = _scan(bands, hashes[key][0], taken)
        if found is None:  # every band is full
            break
        result[key] = found
        taken.add(found)
    return result


def _scan(bands: Sequence[_Band], h1: int, taken: set[int]) -> int | None:
    for i, band in enumerate(bands):
        start = h1 % band.size if i == 0 and band.size else 0
        for step in range(band.size):
            address = band.first + (start + step) % band.size
            if address not in taken:
                return address
    return None


def _family(ip: str) -> int:
    return 6 if ":" in ip else 4


def _networks(cidrs: Sequence[str]) -> dict[int, Network]:
    """The first configured CIDR of each IP family, in configuration order (primary first)."""
    networks: dict[int, Network] = {}
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        networks.setdefault(net.version, net)
    return networks


def _text(value: int, family: int) -> str:
    """Canonical text of an address (what ipaddress's `.compressed` gives, faster for IPv4)."""
    if family == 4:
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return ipaddress.IPv6Address(value).compressed


# --- Pod IPs -----------------------------------------------------------------------------


def _explicit_addresses(pods: Sequence[k8s.Pod], objs: _Objects) -> set[int]:
    """Every address a manifest gives a Pod or an endpoint: never handed out again."""
    taken = {int(ipaddress.ip_address(ip)) for p in pods for ip in p.ips}
    for s in objs.slices:
        taken.update(int(ipaddress.ip_address(a.ip)) for a in s.endpoints)
    for e in objs.endpoints:
        taken.update(int(ipaddress.ip_address(a.ip)) for sub in e.subsets for a in sub.addresses)
    return taken


def _pod_bands(net: Network) -> list[_Band]:
    """A Pod CIDR without its network address (and, for IPv4, its broadcast address)."""
    base = int(net.network_address)
    size = net.num_addresses - (2 if net.version == 4 else 1)
    return [_Band(base + 1, max(size, 0))]


def _pods_with_ips(pods: list[k8s.Pod], config: Config, taken: set[int], problems: list[Problem]) -> list[Pod]:
    """status.podIP(s) when written; otherwise one address per configured Pod CIDR family (spec 2.4)."""
    needing = [(p.namespace, p.name) for p in pods if not p.ips]
    networks = _networks(config.pod_cidr)
    assigned: dict[Key, list[str]] = defaultdict(list)
    for family, net in sorted(networks.items()):  # IPv4 first, as the model wants
        for key, address in _allocate(needing, _pod_bands(net), taken).items():
            assigned[key].append(_text(address, family))
    out = []
    for p in pods:
        ips = p.ips or tuple(assigned.get((p.namespace, p.name), ()))
        if not ips:
            why = "--pod-cidr is full" if networks else "no --pod-cidr is configured"
            problems.append(_problem(p, "warning", f"no status.podIP and {why}: the Pod has no IP"))
        owner = "/".join(p.owners[0]) if p.owners else ""
        out.append(
            Pod(
                namespace=p.namespace,
                name=p.name,
                ips=ips,
                labels=p.labels,
                hostname=p.hostname,
                subdomain=p.subdomain,
                ready=p.ready,
                phase=p.phase,
                terminating=p.terminating,
                node_name=p.node_name,
                owner=owner,
                source=p.source,
            )
        )
    return out


# --- ClusterIPs ----------------------------------------------------------------------------


def _range_offset(net: Network) -> int:
    """KEP-3070 calculateRangeOffset: min(max(16, size/16), 256); 0 below 16 addresses."""
    size = net.num_addresses
    if size < 16:
        return 0
    return min(max(16, size // 16), 256)


def _service_bands(net: Network) -> list[_Band]:
    """Dynamic band first, then the static band (ipallocator bitmap.go, spec 2.1).

    Offsets 1..max are usable: the network address never, the IPv4 broadcast never, and
    the IPv6 bitmap holds at most 65536 addresses.
    """
    base = int(net.network_address)
    last = net.num_addresses - 2 if net.version == 4 else min(net.num_addresses, 65536) - 1
    if last < 1:
        return []
    offset = _range_offset(net)
    if offset == 0 or offset >= last:
        return [_Band(base + 1, last)]
    return [_Band(base + offset + 1, last - offset), _Band(base + 1, offset)]


@dataclass
class _ServiceIPs:
    """What one Service wants: explicit addresses, and the families still to allocate."""

    obj: k8s.Service
    explicit: dict[int, str]
    families: list[int]  # in the Service's order; allocated unless explicit


def _wanted_families(svc: k8s.Service, configured: Sequence[int], problems: list[Problem]) -> list[int]:
    """IP families per ipFamilies / ipFamilyPolicy (KEP-563); primary = first --service-cidr."""
    explicit = [_family(ip) for ip in svc.cluster_ips]
    if svc.ip_families:
        families = [6 if f == "IPv6" else 4 for f in svc.ip_families]
    elif explicit:
        families = explicit
    else:
        families = list(configured[:1])
    policy = svc.ip_family_policy or ("RequireDualStack" if len(families) > 1 else "SingleStack")
    if policy == "SingleStack":
        return families[: max(1, len(explicit))]
    for other in (4, 6):
        if other in families:
            continue
        if other in configured:
            families.append(other)
        elif policy == "RequireDualStack":
            problems.append(
                _problem(svc, "warning", f"RequireDualStack but no IPv{other} --service-cidr is configured", "spec.ipFamilyPolicy")
            )
    return families


def _check_explicit_ips(services: Sequence[k8s.Service], networks: dict[int, Network], problems: list[Problem]) -> None:
    """Warn about written ClusterIPs outside --service-cidr, and about one IP on two Services."""
    owners: dict[str, k8s.Service] = {}
    for svc in services:
        for i, ip in enumerate(svc.cluster_ips):
            field = f"spec.clusterIPs[{i}]" if i else "spec.clusterIP"
            net = networks.get(_family(ip))
            if net is None:
                problems.append(_problem(svc, "warning", f"clusterIP {ip}: no IPv{_family(ip)} --service-cidr is configured", field))
            elif ipaddress.ip_address(ip) not in net:
                problems.append(_problem(svc, "warning", f"clusterIP {ip} is outside --service-cidr {net}", field))
            first = owners.setdefault(ip, svc)
            if first is not svc:
                problems.append(
                    _problem(svc, "warning", f"clusterIP {ip} is also used by Service {_display_name(first)} ({first.source})", field)
                )


def _check_external_names(services: Sequence[k8s.Service], problems: list[Problem]) -> None:
    """CoreDNS does not serve an IP written as externalName (coredns/coredns#2164, spec C10)."""
    for svc in services:
        if svc.type == "ExternalName" and _is_ip(svc.external_name):
            message = f"externalName {svc.external_name!r} is an IP address; CoreDNS does not serve it"
            problems.append(_problem(svc, "warning", message, "spec.externalName"))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _services(objs: Sequence[k8s.Service], config: Config, problems: list[Problem]) -> list[Service]:
    """Every Service with its ClusterIPs: as written, or allocated (spec 2.1); endpoints come later."""
    networks = _networks(config.service_cidr)
    configured = list(networks)
    _check_explicit_ips(objs, networks, problems)
    _check_external_names(objs, problems)
    wants = [_ServiceIPs(s, {_family(ip): ip for ip in s.cluster_ips}, []) for s in objs]
    for w in wants:
        if w.obj.type != "ExternalName" and not w.obj.headless:
            w.families = _wanted_families(w.obj, configured, problems)
    taken = {int(ipaddress.ip_address(ip)) for s in objs for ip in s.cluster_ips}
    allocated: dict[tuple[int, Key], str] = {}
    for family, net in networks.items():
        keys = [(w.obj.namespace, w.obj.name) for w in wants if family in w.families and family not in w.explicit]
        allocated.update({(family, k): _text(a, family) for k, a in _allocate_service_ips(keys, net, taken).items()})
    out = []
    for w in wants:
        key = (w.obj.namespace, w.obj.name)
        ips = tuple(w.explicit.get(f) or allocated.get((f, key), "") for f in w.families)
        for ip, family in zip(ips, w.families, strict=True):
            if ip:
                continue
            if family in networks:
                problems.append(_problem(w.obj, "warning", "no free address left in --service-cidr"))
            else:
                problems.append(
                    _problem(w.obj, "warning", f"asks for IPv{family} but no IPv{family} --service-cidr is configured", "spec.ipFamilies")
                )
        out.append(_service(w.obj, tuple(ip for ip in ips if ip)))
    return out


def _allocate_service_ips(keys: list[Key], net: Network, taken: set[int]) -> dict[Key, int]:
    base = int(net.network_address)
    result: dict[Key, int] = {}
    for key, offset in WELL_KNOWN_OFFSETS.items():
        if key in keys and base + offset not in taken and offset < net.num_addresses - 1:
            result[key] = base + offset
            taken.add(base + offset)
    reserved = {base + o for o in RESERVED_OFFSETS} - taken
    taken |= reserved
    rest = [k for k in keys if k not in result]
    result.update(_allocate(rest, _service_bands(net), taken))
    taken -= reserved
    return result


def _service(obj: k8s.Service, cluster_ips: tuple[str, ...]) -> Service:
    return Service(
        namespace=obj.namespace,
        name=obj.name,
        type=obj.type,
        cluster_ips=cluster_ips,
        headless=obj.headless,
        external_name=obj.external_name,
        ports=obj.ports,
        selector=obj.selector,
        publish_not_ready=obj.publish_not_ready,
        source=obj.source,
    )


# --- endpoints -------------------------------------------------------------------------------


class _PodIndex:
    """Pods by (namespace, label key, label value), for selectors without a scan of every Pod."""

    def __init__(self, pods: Sequence[Pod], objs: Sequence[k8s.Pod]) -> None:
        self.pods = pods
        self.ports = [o.ports for o in objs]  # same order as `pods`
        self.labels = [dict(p.labels) for p in pods]
        self.by_label: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, p in enumerate(pods):
            for k, v in p.labels:
                self.by_label[(p.namespace, k, v)].append(i)

    def select(self, namespace: str, selector: k8s.Labels) -> list[int]:
        """Indexes (in Pod order) of the Pods in `namespace` whose labels match every pair."""
        candidates = [self.by_label.get((namespace, k, v), []) for k, v in selector]
        smallest = min(candidates, key=len)
        if len(candidates) == 1:
            return smallest
        return [i for i in smallest if all(self.labels[i].get(k) == v for k, v in selector)]


def _with_endpoints(
    services: list[Service], objs: _Objects, pods: Sequence[Pod], pod_objects: Sequence[k8s.Pod], problems: list[Problem]
) -> list[Service]:
    """Each Service's endpoints (spec 2.4, C15): its EndpointSlices, else its Endpoints, else its selector."""
    by_key = {s.key: s for s in services}
    slices: defaultdict[Key, list[k8s.EndpointSlice]] = defaultdict(list)
    for s in objs.slices:
        if not s.service_name:
            problems.append(_problem(s, "warning", f"no {k8s.SERVICE_NAME_LABEL} label: ignored", "metadata.labels"))
        elif (s.namespace, s.service_name) not in by_key:
            problems.append(_problem(s, "warning", f"its Service {s.namespace}/{s.service_name} does not exist: ignored"))
        else:
            slices[(s.namespace, s.service_name)].append(s)
    endpoints: dict[Key, k8s.Endpoints] = {}
    for e in objs.endpoints:
        if (e.namespace, e.name) in by_key:
            endpoints[(e.namespace, e.name)] = e
        else:
            problems.append(_problem(e, "warning", f"no Service {e.namespace}/{e.name} to attach these Endpoints to: ignored"))
    index = _PodIndex(pods, pod_objects)
    families = {(s.namespace, s.name): s.ip_families for s in objs.services}
    out = []
    for svc in services:
        groups, source = _endpoints_of(svc, families[svc.key], slices.get(svc.key), endpoints.get(svc.key), index, problems)
        if source in ("EndpointSlice", "Endpoints"):
            _check_named_ports(svc, groups, problems)
        out.append(_replace_endpoints(svc, groups, source))
    return out


def _replace_endpoints(svc: Service, groups: tuple[EndpointGroup, ...], source: str) -> Service:
    if not groups and not source:
        return svc
    return Service(
        namespace=svc.namespace,
        name=svc.name,
        type=svc.type,
        cluster_ips=svc.cluster_ips,
        headless=svc.headless,
        external_name=svc.external_name,
        ports=svc.ports,
        selector=svc.selector,
        publish_not_ready=svc.publish_not_ready,
        endpoints=groups,
        endpoints_source=source,
        source=svc.source,
    )


def _endpoints_of(
    svc: Service,
    ip_families: tuple[str, ...],
    slices: list[k8s.EndpointSlice] | None,
    endpoints: k8s.Endpoints | None,
    index: _PodIndex,
    problems: list[Problem],
) -> tuple[tuple[EndpointGroup, ...], str]:
    if svc.type == "ExternalName":  # no endpoints, whatever the manifests hold (spec 2.4)
        return (), ""
    if slices:  # every slice of the Service, merged (C15); one group per slice
        ordered = sorted(slices, key=lambda s: s.name)
        return tuple(EndpointGroup(s.endpoints, s.ports, s.name, s.source) for s in ordered), "EndpointSlice"
    if endpoints is not None:  # one group per subset; notReadyAddresses already ready=False
        return tuple(EndpointGroup(sub.addresses, sub.ports, endpoints.name, endpoints.source) for sub in endpoints.subsets), "Endpoints"
    if svc.selector is None:  # endpoints only "out of band" (spec 2.4)
        return (), ""
    return _selector_endpoints(svc, _endpoint_families(svc, ip_families), index, problems), "selector"


def _check_named_ports(svc: Service, groups: Sequence[EndpointGroup], problems: list[Problem]) -> None:
    """A named Service port with no endpoint port of that name gets no endpoint SRV (kubernetes#80175)."""
    endpoint_names = {p.name for g in groups for p in g.ports}
    if not any(g.ports for g in groups):
        return
    for i, port in enumerate(svc.ports):
        if port.name and port.name not in endpoint_names:
            message = f"port {port.name!r} has no endpoint port of the same name: its endpoints get no SRV record"
            problems.append(_service_problem(svc, message, f"spec.ports[{i}].name"))


def _service_problem(svc: Service, message: str, field: str = "") -> Problem:
    s = svc.source
    return Problem("warning", message, file=s.file, doc=s.doc, line=s.line, kind="Service", name=f"{svc.namespace}/{svc.name}", field=field)


def _endpoint_families(svc: Service, ip_families: tuple[str, ...]) -> frozenset[int] | None:
    """Families the endpoints carry: one slice per ipFamilies entry (spec 2.4); None = every family.

    Without ipFamilies: the families of the ClusterIPs; a headless Service gets every
    family its Pods have.
    """
    if ip_families:
        return frozenset(6 if f == "IPv6" else 4 for f in ip_families)
    if svc.cluster_ips:
        return frozenset(_family(ip) for ip in svc.cluster_ips)
    return None


def _resolve_ports(svc_ports: Sequence[ServicePort], container_ports: tuple[k8s.ContainerPort, ...]) -> tuple[EndpointPort, ...]:
    """One port per Service port: targetPort as a number, or the container port of that name
    and protocol (podutil.FindPort); an unknown name drops that port for this Pod (spec 2.4)."""
    out = []
    for sp in svc_ports:
        target = sp.target_port
        if target is None:
            number: int | None = sp.port
        elif isinstance(target, int):
            number = target
        else:
            number = next((cp.port for cp in container_ports if cp.name == target and cp.protocol == sp.protocol), None)
        if number is not None:
            out.append(EndpointPort(sp.name, sp.protocol, number))
    return tuple(out)


def _selector_endpoints(
    svc: Service, families: frozenset[int] | None, index: _PodIndex, problems: list[Problem]
) -> tuple[EndpointGroup, ...]:
    """What the EndpointSlice controller writes for a selector (endpointslice/utils.go podToEndpoint)."""
    assert svc.selector is not None
    selected = index.select(svc.namespace, svc.selector)
    if not selected:
        shown = ",".join(f"{k}={v}" for k, v in svc.selector)
        problems.append(_service_problem(svc, f"selector {shown} matches no Pods", "spec.selector"))
        return ()
    groups: dict[tuple[int, tuple[EndpointPort, ...]], list[EndpointAddress]] = {}
    # Pods of one workload share their ports tuple: resolve once per tuple (by identity,
    # which the index keeps alive, to avoid hashing dataclasses).
    port_cache: dict[int, tuple[EndpointPort, ...]] = {}
    resolved: set[int] = set()  # indexes of Service ports with a named targetPort found
    eligible = 0
    for i in selected:
        pod = index.pods[i]
        if pod.phase in ("Succeeded", "Failed") or not pod.ips:  # ShouldPodBeInEndpoints
            continue
        eligible += 1
        container_ports = index.ports[i]
        ports = port_cache.get(id(container_ports))
        if ports is None:
            ports = port_cache[id(container_ports)] = _resolve_ports(svc.ports, container_ports)
            resolved.update(_named_targets_found(svc.ports, container_ports))
        for ip in pod.ips:
            family = _family(ip)
            if families is None or family in families:
                groups.setdefault((family, ports), []).append(_endpoint_address(svc, pod, ip))
    if eligible:
        _check_target_ports(svc, resolved, problems)
    ordered = sorted(groups.items(), key=lambda item: item[0][0])  # IPv4 groups first; stable otherwise
    return tuple(EndpointGroup(tuple(addresses), ports) for (_, ports), addresses in ordered)


def _endpoint_address(svc: Service, pod: Pod, ip: str) -> EndpointAddress:
    # serving = PodReady; terminating = deletionTimestamp set; ready =
    # publishNotReadyAddresses || (serving && !terminating) (spec 2.4, 2.6).
    # hostname only when ShouldSetHostname: spec.hostname set and subdomain == Service name.
    return EndpointAddress(
        ip=ip,
        hostname=pod.hostname if pod.hostname and pod.subdomain == svc.name else "",
        pod_name=pod.name,
        pod_namespace=pod.namespace,
        node_name=pod.node_name,
        ready=svc.publish_not_ready or (pod.ready and not pod.terminating),
        serving=pod.ready,
        terminating=pod.terminating,
    )


def _named_targets_found(svc_ports: Sequence[ServicePort], container_ports: tuple[k8s.ContainerPort, ...]) -> set[int]:
    return {
        i
        for i, sp in enumerate(svc_ports)
        if isinstance(sp.target_port, str) and any(cp.name == sp.target_port and cp.protocol == sp.protocol for cp in container_ports)
    }


def _check_target_ports(svc: Service, resolved: set[int], problems: list[Problem]) -> None:
    for i, sp in enumerate(svc.ports):
        if isinstance(sp.target_port, str) and i not in resolved:
            problems.append(
                _service_problem(
                    svc, f"targetPort {sp.target_port!r} is not a container port of any selected Pod", f"spec.ports[{i}].targetPort"
                )
            )


def _check_stateful_sets(sets: Sequence[k8s.StatefulSet], services: Sequence[Service], problems: list[Problem]) -> None:
    """Per-Pod names need a headless Service named serviceName in the namespace (spec 2.3)."""
    by_key = {s.key: s for s in services}
    for sts in sets:
        if not sts.service_name:
            continue
        svc = by_key.get((sts.namespace, sts.service_name))
        if svc is None:
            problems.append(
                _problem(
                    sts, "warning", f"serviceName {sts.service_name!r}: no such Service; its Pods get no DNS names", "spec.serviceName"
                )
            )
        elif not svc.headless:
            problems.append(
                _problem(
                    sts,
                    "warning",
                    f"serviceName {sts.service_name!r} is not headless (clusterIP: None); its Pods get no DNS names",
                    "spec.serviceName",
                )
            )
