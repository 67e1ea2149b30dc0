"""Derive what the cluster's controllers would make of the manifests (spec Part 2)."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from clusterdns.objects import kinds as k8s
from clusterdns.config.settings import Config
from clusterdns.errors import Problem
from clusterdns.manifests.files import gc_paused
from clusterdns.names import external_target
from clusterdns.model import ALWAYS_NAMESPACES, ClusterState, EndpointAddress, EndpointGroup, EndpointPort, Pod, Service, ServicePort, Source

# The alphabet of generated names and pod-template-hash: no vowels, no 0/1/3
# (k8s.io/apimachinery pkg/util/rand/rand.go, spec 2.2).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5  # names.SimpleNameGenerator appends 5 random characters
MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH  # generateName is cut to 58 characters

# Addresses a cluster hands out by convention (spec 2.1): kubernetes.default gets the
# first one, kubeadm's DNS Service the tenth. No other Service is given these.
WELL_KNOWN_OFFSETS = {("default", "kubernetes"): 1, ("kube-system", "kube-dns"): 10}
RESERVED_OFFSETS = (1, 10)

_ALLOCATION_ROUNDS = 32  # hashed candidates per key before a linear scan

Key = tuple[str, str]  # (namespace, name)
_T = TypeVar("_T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- entry points ---------------------------------------------------------------------














def derive(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem] | None = None) -> ClusterState:
    """The ClusterState the controllers would produce from these objects.

    A pure function of the objects and the config. `problems` (those found while reading,
    for instance) are extended with the derivation's warnings and returned in the state.
    """
    problems = problems if problems is not None else []
    with gc_paused():
        return _derive(objects, config, problems)


def _derive(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem]) -> ClusterState:
    global _previous
    previous = _previous
    memo = _Memo(config, previous if previous is not None and previous.config == config else None)
    objs = _dedupe(objects, problems)
    pod_specs = _all_pods(objs, problems, memo)
    taken = _explicit_addresses(objs.pods, objs)  # Pods a workload would make have no address yet
    pods, pod_ports = _pods_with_ips(pod_specs, config, taken, problems, memo)
    services = _services(objs.services, config, problems, memo)
    services = _with_endpoints(services, objs, pods, pod_ports, problems, memo)
    _check_stateful_sets(objs.stateful_sets, services, problems)
    state = ClusterState(
        services=tuple(sorted(services, key=lambda s: s.key)),
        pods=tuple(pods),
        namespaces=_namespaces(objs),
        problems=tuple(problems),
    )
    memo.old = None  # keep only what this run used
    _previous = memo
    return state


class _Memo:
    """What one derive() computed, for the next derive() to reuse: reloads redo little.

    The store passes the very same objects for files that did not change, and equal ones
    for the unchanged documents of a changed file. So after a one-file change almost every
    workload's Pods, the Pod list and index, the address allocations and every Service's
    endpoints are what the previous run computed. Reuse needs the same inputs: the very
    same objects (`is`), or for one object an equal one (`==`, only when not the same),
    and equal other inputs; so the result is always the one a fresh run gives
    (tests/test_cluster.py checks). Each run keeps only what it used.

    10,000 Services + 50,000 Pods, one Service's port changed in a file of 100 Services
    and 100 Deployments: derive 0.65 s (a first run) -> 0.08 s (CPU, median of 5); with
    the 50,000 Pods written out as manifests, 0.13 s.
    """

    def __init__(self, config: Config, old: _Memo | None) -> None:
        self.config = config
        self.old = old
        # Whole steps: step -> (input lists, other inputs, (result, problems found))
        self.steps: dict[str, tuple[tuple[Sequence[object], ...], object, tuple[Any, list[Problem]]]] = {}
        # Per object, by (kind, namespace, name): (object, other inputs, result)
        self.stamped: dict[tuple[type, str, str], tuple[object, object, Any]] = {}  # a workload's Pods
        self.wants: dict[tuple[type, str, str], tuple[object, object, Any]] = {}  # a Service's IP families
        self.services: dict[tuple[type, str, str], tuple[object, object, Any]] = {}  # a Service with its ClusterIPs
        self.endpoints: dict[tuple[type, str, str], tuple[object, object, Any]] = {}  # and with its selected endpoints
        # Service address allocations by IP family: (keys, taken before, result)
        self.service_ips: dict[int, tuple[list[Key], frozenset[int], dict[Key, int]]] = {}

    def reuse(self, table: str, obj: Any, inputs: object, compute: Callable[[], _T]) -> _T:
        """`compute()`, or what the previous run computed from this object (or an equal one) and equal `inputs`."""
        key = (type(obj), obj.namespace, obj.name)
        entry = getattr(self.old, table).get(key) if self.old is not None else None
        if entry is None or entry[1] != inputs or not (entry[0] is obj or entry[0] == obj):
            entry = (obj, inputs, compute())
        elif entry[0] is not obj:
            entry = (obj, inputs, entry[2])  # the same object next time
        getattr(self, table)[key] = entry
        return entry[2]  # type: ignore[no-any-return]

    def reuse_step(
        self,
        step: str,
        lists: tuple[Sequence[object], ...],
        inputs: object,
        problems: list[Problem],
        compute: Callable[[list[Problem]], _T],
        tables: tuple[str, ...] = (),
    ) -> _T:
        """`compute(found)`, or the previous run's result when `lists` hold the same (or equal)
        objects in the same order and `inputs` are equal. The problems it found are added
        to `problems` either way; the per-object `tables` it filled are kept for the next run."""
        old = self.old
        entry = old.steps.get(step) if old is not None else None
        if entry is not None and entry[1] == inputs and len(entry[0]) == len(lists) and all(map(_same, entry[0], lists)):
            assert old is not None
            for table in tables:
                setattr(self, table, getattr(old, table))
            result, found = entry[2]
        else:
            found = []
            result = compute(found)
            entry = (lists, inputs, (result, found))
        self.steps[step] = entry
        problems.extend(found)
        return result  # type: ignore[no-any-return]

    def allocation(
        self, previous: tuple[list[Key], frozenset[int], _T] | None, keys: list[Key], taken: frozenset[int], compute: Callable[[], _T]
    ) -> tuple[list[Key], frozenset[int], _T]:
        """(keys, taken, compute()), or `previous` when it was computed for equal keys and taken addresses."""
        if previous is not None and previous[1] == taken and previous[0] == keys:
            return previous
        return keys, taken, compute()


def _same(a: Sequence[object], b: Sequence[object]) -> bool:
    """The same or equal objects in the same order (list ==: `is` first, __eq__ only for
    objects read again; 50,000 Pods in 1 ms)."""
    return a is b or a == b


_previous: _Memo | None = None  # the last derive()'s memo


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
        kind = _LISTS.get(type(obj))
        if kind is not None:
            getattr(self, kind).append(obj)

    def namespaced(self) -> Iterator[Sequence[k8s.KubeObject | k8s.ObjectRef]]:
        yield from (self.services, self.endpoints, self.slices, self.pods, self.deployments, self.replica_sets)
        yield from (self.stateful_sets, self.daemon_sets, self.refs)


_LISTS = {
    k8s.Namespace: "namespaces",
    k8s.Node: "nodes",
    k8s.Service: "services",
    k8s.Endpoints: "endpoints",
    k8s.EndpointSlice: "slices",
    k8s.Pod: "pods",
    k8s.Deployment: "deployments",
    k8s.ReplicaSet: "replica_sets",
    k8s.StatefulSet: "stateful_sets",
    k8s.DaemonSet: "daemon_sets",
}  # _Objects.add: one look-up, not a match over ten classes (60,000 objects: 40 -> 10 ms)


def _dedupe(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], problems: list[Problem]) -> _Objects:
    """One object per (kind, namespace, name): the one read last (by path, then document) wins.

    Each kind keeps first-seen order, except Services, sorted by (namespace, name).
    ObjectRefs are kept as they come (only their namespaces count).
    """
    winners: dict[tuple[type, str, str], tuple[int, k8s.KubeObject]] = {}
    out = _Objects()
    for index, obj in enumerate(objects):
        if type(obj) is k8s.ObjectRef:
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
        names.update(map(attrgetter("namespace"), group))
    return frozenset(names)


def _problem(obj: k8s.KubeObject | _Stamped | Service, level: str, message: str, field: str = "") -> Problem:
    s = obj.source
    kind = "Pod" if isinstance(obj, _Stamped) else type(obj).__name__
    return Problem(level, message, file=s.file, doc=s.doc, line=s.line, kind=kind, name=_display_name(obj), field=field)


def _display_name(obj: k8s.KubeObject | Service) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name


# --- Pods from workloads ----------------------------------------------------------------

# Pairs of ALPHABET characters, so `_encode` does half the divisions: _PAIRS[d0 + 27 * d1]
# is ALPHABET[d0] + ALPHABET[d1] (0.8 -> 0.2 µs per 5-character suffix).
_PAIRS = tuple(a + b for b in ALPHABET for a in ALPHABET)


def _encode(number: int, length: int) -> str:
    """`length` characters of ALPHABET from a number (base 27, least significant digit first)."""
    if length == 5:  # a generated name's suffix: three look-ups (0.8 -> 0.3 µs)
        number %= len(_PAIRS) ** 2 * len(ALPHABET)
        return _PAIRS[number % len(_PAIRS)] + _PAIRS[number // len(_PAIRS) % len(_PAIRS)] + ALPHABET[number // len(_PAIRS) ** 2]
    chars = []
    for _ in range(length // 2):
        number, pair = divmod(number, len(_PAIRS))
        chars.append(_PAIRS[pair])
    if length % 2:
        chars.append(ALPHABET[number % len(ALPHABET)])
    return "".join(chars)


def _digest_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


# Each decimal digit's byte through ALPHABET, as SafeEncodeString does (see template_hash).
_DIGIT_CHARS = str.maketrans({d: ALPHABET[ord(d) % len(ALPHABET)] for d in "0123456789"})


def template_hash(digest: str) -> str:
    """A pod-template-hash look-alike: 10 characters, as ComputeHash's output looks (spec 2.2).

    Kubernetes prints an FNV-32a as decimal and maps each digit byte through ALPHABET
    (SafeEncodeString: alphabet[byte % 27], so 0-9 become 4-9,b,c,d,f). Go's struct dump
    cannot be reproduced, so the number comes from the template's sha256 instead.
    """
    number = int(digest[:16], 16) % 10**10
    return f"{number:010d}".translate(_DIGIT_CHARS)


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


class _Stamped(NamedTuple):
    """A Pod a workload would create. A tuple, not a k8s.Pod: at scale (50,000 Pods) the
    frozen dataclass cost 2.3 µs each to build and was only read once, in `_pods_with_ips`."""

    owner: k8s.Workload
    name: str
    labels: k8s.Labels
    hostname: str
    subdomain: str
    node_name: str = ""

    @property
    def namespace(self) -> str:
        return self.owner.namespace

    @property
    def source(self) -> Source:
        return self.owner.source

    @property
    def owner_ref(self) -> tuple[str, str]:
        return (type(self.owner).__name__, self.owner.name)


PodSpec = k8s.Pod | _Stamped  # a Pod from a manifest, or one a workload would make


def _with_labels(labels: k8s.Labels, *extra: tuple[str, str]) -> k8s.Labels:
    merged = dict(labels)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def _deployment_pods(d: k8s.Deployment) -> list[_Stamped]:
    # The Deployment controller makes ReplicaSet <deploy>-<pod-template-hash> and labels
    # its Pods with pod-template-hash (pkg/controller/deployment/sync.go, spec 2.2).
    t = d.template
    pod_hash = template_hash(t.digest)
    labels = _with_labels(t.labels, ("pod-template-hash", pod_hash))
    return [_Stamped(d, name, labels, t.hostname, t.subdomain) for name in _generated_names(f"{d.name}-{pod_hash}-", d.replicas)]


def _replica_set_pods(rs: k8s.ReplicaSet) -> list[_Stamped]:
    t = rs.template
    return [_Stamped(rs, name, t.labels, t.hostname, t.subdomain) for name in _generated_names(f"{rs.name}-", rs.replicas)]


def _stateful_set_pods(sts: k8s.StatefulSet) -> list[_Stamped]:
    # Names <sts>-<ordinal> from ordinals.start; initIdentity sets hostname = pod name and
    # subdomain = serviceName; updateIdentity adds two labels (spec 2.3).
    pods = []
    for ordinal in range(sts.ordinals_start, sts.ordinals_start + sts.replicas):
        name = f"{sts.name}-{ordinal}"
        labels = _with_labels(
            sts.template.labels, ("statefulset.kubernetes.io/pod-name", name), ("apps.kubernetes.io/pod-index", str(ordinal))
        )
        pods.append(_Stamped(sts, name, labels, name, sts.service_name))
    return pods


def _daemon_set_pods(ds: k8s.DaemonSet, nodes: Sequence[str]) -> list[_Stamped]:
    """One Pod per Node (node selectors and taints are not modelled); one Pod when there are no Nodes."""
    t = ds.template
    if not nodes:
        return [_Stamped(ds, _generated_names(f"{ds.name}-", 1)[0], t.labels, t.hostname, t.subdomain)]
    pods = []
    for node in nodes:
        name = f"{ds.name}-"[:MAX_GENERATED_BASE] + _encode(_digest_int(f"{ds.name}\x00{node}"), GENERATED_SUFFIX_LENGTH)
        pods.append(_Stamped(ds, name, t.labels, t.hostname, t.subdomain, node))
    return pods


def _all_pods(objs: _Objects, problems: list[Problem], memo: _Memo) -> list[PodSpec]:
    """Bare Pods plus the Pods of every workload whose own Pods are not in the manifests, by (namespace, name).

    A `kubectl get -A -o yaml` dump holds Deployments, their ReplicaSets and their Pods:
    a workload whose Pods (or, for a Deployment, whose ReplicaSet) are present adds nothing.
    """
    controlled = {(p.namespace, *p.owners[0]) for p in objs.pods if p.owners}
    controlled |= {(rs.namespace, *rs.owners[0]) for rs in objs.replica_sets if rs.owners}
    nodes = sorted(n.name for n in objs.nodes)
    groups: list[list[_Stamped]] = []  # each workload's Pods
    reuse = memo.reuse
    for d in objs.deployments:
        if (d.namespace, "Deployment", d.name) not in controlled:
            groups.append(reuse("stamped", d, None, lambda: _deployment_pods(d)))  # noqa: B023 (called at once)
    for rs in objs.replica_sets:
        if (rs.namespace, "ReplicaSet", rs.name) not in controlled:
            groups.append(reuse("stamped", rs, None, lambda: _replica_set_pods(rs)))  # noqa: B023
    for sts in objs.stateful_sets:
        if (sts.namespace, "StatefulSet", sts.name) not in controlled:
            groups.append(reuse("stamped", sts, None, lambda: _stateful_set_pods(sts)))  # noqa: B023
    for ds in objs.daemon_sets:
        if (ds.namespace, "DaemonSet", ds.name) not in controlled:
            groups.append(reuse("stamped", ds, nodes, lambda: _daemon_set_pods(ds, nodes)))  # noqa: B023
    return memo.reuse_step("all_pods", (objs.pods, groups), None, problems, lambda found: _merge_pods(objs.pods, groups, found))


def _merge_pods(bare: list[k8s.Pod], groups: list[list[_Stamped]], problems: list[Problem]) -> list[PodSpec]:
    """Pod manifests first, then workloads' Pods of other names, sorted by (namespace, name)."""
    by_key: dict[Key, PodSpec] = {(p.namespace, p.name): p for p in bare}
    for group in groups:
        for pod in group:
            key = (pod.owner.namespace, pod.name)
            other = by_key.setdefault(key, pod)
            if other is not pod:
                problems.append(_problem(other, "warning", f"a Pod of {'/'.join(pod.owner_ref)} has the same name; the Pod manifest is used"))
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
    # (key, h1, h1 mod size, step): both hash terms reduced once per key, not once per round
    # ((h1 + r*step) % size is the same address); with plain tuples the loop is 2x faster.
    size = band.size or 1
    step_range = max(band.size - 1, 1)
    pending = [(key, h1, h1 % size, h2 % step_range + 1) for key in keys for h1, h2 in (_key_hashes(key),)]
    if band.size > 0:
        first = band.first
        for round_ in range(_ALLOCATION_ROUNDS):
            claimed: dict[int, Key] = {}
            later = []
            for item in pending:
                address = first + (item[2] + round_ * item[3]) % size
                if address in taken or address in claimed:
                    later.append(item)
                else:
                    claimed[address] = item[0]
            for address, key in claimed.items():
                result[key] = address
            taken.update(claimed)
            pending = later
            if not pending:
                break
    for key, h1, _, _ in pending:
        found = _scan(bands, h1, taken)
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


def _int(ip: str) -> int:
    """An address (canonical text, as objects.py stores it) as a number: int(ipaddress.ip_address(ip)), 6x faster."""
    return int.from_bytes(socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip), "big")


def _text(value: int, family: int) -> str:
    """Canonical text of an address (what ipaddress's `.compressed` gives, faster for IPv4)."""
    if family == 4:
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return ipaddress.IPv6Address(value).compressed


# --- Pod IPs -----------------------------------------------------------------------------


def _explicit_addresses(pods: Sequence[k8s.Pod], objs: _Objects) -> set[int]:
    """Every address a manifest gives a Pod or an endpoint: never handed out again."""
    taken = {_int(ip) for p in pods for ip in p.ips}
    for s in objs.slices:
        taken.update(_int(a.ip) for a in s.endpoints)
    for e in objs.endpoints:
        taken.update(_int(a.ip) for sub in e.subsets for a in sub.addresses)
    return taken


def _pod_bands(net: Network) -> list[_Band]:
    """A Pod CIDR without its network address (and, for IPv4, its broadcast address)."""
    base = int(net.network_address)
    size = net.num_addresses - (2 if net.version == 4 else 1)
    return [_Band(base + 1, max(size, 0))]


def _pods_with_ips(
    pods: list[PodSpec], config: Config, taken: set[int], problems: list[Problem], memo: _Memo
) -> tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]]:
    """status.podIP(s) when written; otherwise one address per configured Pod CIDR family (spec 2.4).

    Returns the Pods and, in the same order, their container ports (for named targetPorts).
    """
    compute = lambda found: _assign_pods(pods, config, taken, found, memo)  # noqa: E731
    return memo.reuse_step("pods", (pods,), frozenset(taken), problems, compute)


def _assign_pods(
    pods: list[PodSpec], config: Config, taken: set[int], problems: list[Problem], memo: _Memo
) -> tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]]:
    needing = [(p.namespace, p.name) for p in pods if type(p) is _Stamped or not p.ips]
    networks = _networks(config.pod_cidr)
    assigned: dict[Key, tuple[str, ...]] = {}
    for family, net in sorted(networks.items()):  # IPv4 first, as the model wants
        for key, address in _allocate(needing, _pod_bands(net), taken).items():
            assigned[key] = assigned.get(key, ()) + (_text(address, family),)
    # The previous run's model Pods, by the spec they were made from: most are reused.
    previous = memo.old.steps.get("pods") if memo.old is not None else None
    made: dict[int, tuple[PodSpec, Pod]] = {}
    if previous is not None:
        made = {id(spec): (spec, pod) for spec, pod in zip(previous[0][0], previous[2][0][0])}
    out: list[Pod] = []
    ports: list[tuple[k8s.ContainerPort, ...]] = []
    owner_texts: dict[int, str] = {}  # id(workload) -> "Deployment/web": one string per workload
    for p in pods:
        if type(p) is _Stamped:
            ips = assigned.get((p.owner.namespace, p.name), ())
            ports.append(p.owner.template.ports)
        else:
            ips = p.ips or assigned.get((p.namespace, p.name), ())
            ports.append(p.ports)
        entry = made.get(id(p))
        if entry is not None and entry[0] is p and entry[1].ips == ips:
            pod = entry[1]
        else:
            pod = _model_pod(p, ips, owner_texts)
        if not ips:
            why = "--pod-cidr is full" if networks else "no --pod-cidr is configured"
            problems.append(_problem(p, "warning", f"no status.podIP and {why}: the Pod has no IP"))
        out.append(pod)
    return out, ports


def _model_pod(p: PodSpec, ips: tuple[str, ...], owner_texts: dict[int, str]) -> Pod:
    # Positional (field order checked below, at import): 1.7x faster than keywords.
    if type(p) is _Stamped:
        owner = p.owner
        owner_text = owner_texts.get(id(owner))
        if owner_text is None:
            owner_text = owner_texts[id(owner)] = "/".join(p.owner_ref)
        # A stamped Pod has no status: Ready, Running, not terminating (spec 2.4).
        return Pod(owner.namespace, p.name, ips, p.labels, p.hostname, p.subdomain, True, "Running", False, p.node_name, owner_text, owner.source)
    owner_text = "/".join(p.owners[0]) if p.owners else ""
    return Pod(p.namespace, p.name, ips, p.labels, p.hostname, p.subdomain, p.ready, p.phase, p.terminating, p.node_name, owner_text, p.source)


def _check_field_order(cls: type, *names: str) -> None:
    """Hot loops build these model types with positional arguments: fail loudly if their fields move."""
    actual = tuple(f.name for f in fields(cls))
    if actual != names:
        raise RuntimeError(f"cluster.py builds {cls.__name__} positionally as {names}, but its fields are {actual}")


_check_field_order(Pod, "namespace", "name", "ips", "labels", "hostname", "subdomain", "ready", "phase", "terminating", "node_name", "owner", "source")
_check_field_order(
    Service,
    "namespace", "name", "type", "cluster_ips", "headless", "external_name", "ports", "selector", "publish_not_ready",
    "endpoints", "endpoints_source", "source",
)  # fmt: skip
_check_field_order(EndpointAddress, "ip", "hostname", "pod_name", "pod_namespace", "node_name", "ready", "serving", "terminating")


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


@dataclass(frozen=True, slots=True)
class _ServiceIPs:
    """What one Service wants: explicit addresses, and the families still to allocate."""

    obj: k8s.Service
    explicit: Mapping[int, str]
    families: tuple[int, ...]  # in the Service's order; allocated unless explicit


_NO_ADDRESSES: Mapping[int, str] = MappingProxyType({})
_FAMILY_TUPLES: dict[tuple[int, ...], tuple[int, ...]] = {}  # one (4,) for 10,000 Services: they are kept between runs


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
        if svc.type == "ExternalName" and svc.external_name and not external_target(svc.external_name):
            message = f"externalName {svc.external_name!r} is an IP address; CoreDNS does not serve it"
            problems.append(_problem(svc, "warning", message, "spec.externalName"))


def _services(objs: list[k8s.Service], config: Config, problems: list[Problem], memo: _Memo) -> list[Service]:
    """Every Service with its ClusterIPs: as written, or allocated (spec 2.1); endpoints come later."""
    compute = lambda found: _services_with_ips(objs, config, found, memo)  # noqa: E731
    return memo.reuse_step("services", (objs,), None, problems, compute, ("wants", "services", "service_ips"))


def _services_with_ips(objs: list[k8s.Service], config: Config, problems: list[Problem], memo: _Memo) -> list[Service]:
    networks = _networks(config.service_cidr)
    configured = list(networks)
    _check_explicit_ips(objs, networks, problems)
    _check_external_names(objs, problems)
    wants = []
    for svc in objs:
        want, found = memo.reuse("wants", svc, None, lambda: _service_wants(svc, configured))  # noqa: B023 (called at once)
        wants.append(want)
        problems.extend(found)
    taken = {_int(ip) for s in objs for ip in s.cluster_ips}
    allocated: dict[tuple[int, Key], str] = {}
    for family, net in networks.items():
        keys = [(w.obj.namespace, w.obj.name) for w in wants if family in w.families and family not in w.explicit]
        old = memo.old.service_ips.get(family) if memo.old is not None else None
        before = frozenset(taken)
        memo.service_ips[family] = done = memo.allocation(old, keys, before, lambda: _allocate_service_ips(keys, net, taken))  # noqa: B023
        if done is old:  # `taken` gets what _allocate_service_ips hands out
            taken.update(done[2].values())
        allocated.update({(family, k): _text(a, family) for k, a in done[2].items()})
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
        cluster_ips = tuple(ip for ip in ips if ip)
        out.append(memo.reuse("services", w.obj, cluster_ips, lambda: _service(w.obj, cluster_ips)))  # noqa: B023
    return out


def _service_wants(svc: k8s.Service, configured: Sequence[int]) -> tuple[_ServiceIPs, tuple[Problem, ...]]:
    """What a Service asks for (explicit addresses, families to allocate), and the problems with that."""
    found: list[Problem] = []
    families: tuple[int, ...] = ()
    if svc.type != "ExternalName" and not svc.headless:
        families = tuple(_wanted_families(svc, configured, found))
        families = _FAMILY_TUPLES.setdefault(families, families)
    explicit = {_family(ip): ip for ip in svc.cluster_ips} if svc.cluster_ips else _NO_ADDRESSES
    return _ServiceIPs(svc, explicit, families), tuple(found)


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
    o = obj  # positional, as in _replace_endpoints
    return Service(o.namespace, o.name, o.type, cluster_ips, o.headless, o.external_name, o.ports, o.selector, o.publish_not_ready, (), "", o.source)


# --- endpoints -------------------------------------------------------------------------------


class _PodIndex:
    """Pods by (namespace, label key, label value), for selectors without a scan of every Pod."""

    def __init__(self, pods: Sequence[Pod], ports: Sequence[tuple[k8s.ContainerPort, ...]]) -> None:
        self.pods = pods
        self.ports = ports  # each Pod's container ports, same order as `pods`
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
        # Labels are sorted (key, value) pairs, one per key: a selector matches when each
        # of its pairs is one of them.
        wanted = set(selector)
        return [i for i in smallest if wanted.issubset(self.pods[i].labels)]


def _with_endpoints(
    services: list[Service],
    objs: _Objects,
    pods: Sequence[Pod],
    pod_ports: Sequence[tuple[k8s.ContainerPort, ...]],
    problems: list[Problem],
    memo: _Memo,
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
    index = memo.reuse_step("index", (pods, pod_ports), None, problems, lambda found: _PodIndex(pods, pod_ports))
    objects = {(s.namespace, s.name): s for s in objs.services}
    out = []
    for svc in services:
        obj, own_slices, own_endpoints = objects[svc.key], slices.get(svc.key), endpoints.get(svc.key)
        if svc.type != "ExternalName" and not own_slices and own_endpoints is None and svc.selector is not None:
            out.append(_with_selected_endpoints(svc, obj, index, problems, memo))
            continue
        groups, source = _endpoints_of(svc, own_slices, own_endpoints)
        _check_named_ports(svc, groups, problems)
        out.append(_replace_endpoints(svc, groups, source))
    return out


def _with_selected_endpoints(svc: Service, obj: k8s.Service, index: _PodIndex, problems: list[Problem], memo: _Memo) -> Service:
    """The Service with the endpoints of the Pods its selector picks (the previous run's for the same inputs).

    They depend on the Service as written, its ClusterIPs and the chosen Pods with their
    container ports (not part of the model Pod). With the very same Pod index as the
    previous run, the same Pods are chosen: not even the selector is run again.
    """
    assert svc.selector is not None
    key = (type(obj), obj.namespace, obj.name)
    entry = memo.old.endpoints.get(key) if memo.old is not None else None
    if entry is not None and not ((entry[0] is obj or entry[0] == obj) and entry[1][0] == svc.cluster_ips):
        entry = None
    if entry is None or entry[1][1] is not index:
        selected = index.select(svc.namespace, svc.selector)
        chosen = (tuple([index.pods[i] for i in selected]), tuple([index.ports[i] for i in selected]))
        if entry is None or entry[1][2:] != chosen:
            found: list[Problem] = []
            groups = _selector_endpoints(svc, _endpoint_families(svc, obj.ip_families), selected, index, found)
            entry = (obj, (svc.cluster_ips, index, *chosen), (_replace_endpoints(svc, groups, "selector"), tuple(found)))
        else:
            entry = (obj, (svc.cluster_ips, index, *chosen), entry[2])
    elif entry[0] is not obj:
        entry = (obj, entry[1], entry[2])
    memo.endpoints[key] = entry
    result, found = entry[2]
    problems.extend(found)
    return result  # type: ignore[no-any-return]


def _replace_endpoints(svc: Service, groups: tuple[EndpointGroup, ...], source: str) -> Service:
    if not groups and not source:
        return svc
    s = svc  # positional (field order checked at import): 1.7x faster than keywords
    return Service(s.namespace, s.name, s.type, s.cluster_ips, s.headless, s.external_name, s.ports, s.selector, s.publish_not_ready, groups, source, s.source)


def _endpoints_of(svc: Service, slices: list[k8s.EndpointSlice] | None, endpoints: k8s.Endpoints | None) -> tuple[tuple[EndpointGroup, ...], str]:
    """Endpoints written in manifests (a Service with a selector and none written gets
    _with_selected_endpoints instead)."""
    if svc.type == "ExternalName":  # no endpoints, whatever the manifests hold (spec 2.4)
        return (), ""
    if slices:  # every slice of the Service, merged (C15); one group per slice
        ordered = sorted(slices, key=lambda s: s.name)
        return tuple(EndpointGroup(s.endpoints, s.ports, s.name, s.source) for s in ordered), "EndpointSlice"
    if endpoints is not None:  # notReadyAddresses already ready=False
        return _mirrored(endpoints), "Endpoints"
    return (), ""  # no selector: endpoints only "out of band" (spec 2.4)


# The EndpointSlice controllers' packing (kube-controller-manager defaults): a slice holds one
# address family and at most --max-endpoints-per-slice (100) endpoints; the mirroring
# controller copies an Endpoints subset into slices of at most 1000 per family
# (pkg/controller/endpointslicemirroring). CoreDNS reads slices, so a slice is a group here.
MAX_ENDPOINTS_PER_SLICE = 100
MAX_MIRRORED_PER_SLICE = 1000


def _slices(addresses: Sequence[EndpointAddress], size: int) -> Iterator[tuple[EndpointAddress, ...]]:
    """`addresses` cut into slices of at most `size`, in order."""
    for start in range(0, len(addresses), size):
        yield tuple(addresses[start : start + size])


def _mirrored(endpoints: k8s.Endpoints) -> tuple[EndpointGroup, ...]:
    """The EndpointSlices the mirroring controller makes of an Endpoints object: per subset,
    IPv4 then IPv6, at most MAX_MIRRORED_PER_SLICE addresses each."""
    out = []
    for sub in endpoints.subsets:
        for v6 in (False, True):
            family = [a for a in sub.addresses if (":" in a.ip) == v6]
            out += [EndpointGroup(part, sub.ports, endpoints.name, endpoints.source) for part in _slices(family, MAX_MIRRORED_PER_SLICE)]
    return tuple(out)


def _check_named_ports(svc: Service, groups: Sequence[EndpointGroup], problems: list[Problem]) -> None:
    """A named Service port with no endpoint port of that name gets no endpoint SRV (kubernetes#80175)."""
    endpoint_names = {p.name for g in groups for p in g.ports}
    if not any(g.ports for g in groups):
        return
    for i, port in enumerate(svc.ports):
        if port.name and port.name not in endpoint_names:
            message = f"port {port.name!r} has no endpoint port of the same name: its endpoints get no SRV record"
            problems.append(_problem(svc, "warning", message, f"spec.ports[{i}].name"))


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


def _resolve_ports(svc_ports: Sequence[ServicePort], container_ports: tuple[k8s.ContainerPort, ...]) -> tuple[tuple[EndpointPort, ...], set[int]]:
    """One port per Service port: targetPort as a number, or the container port of that name
    and protocol (podutil.FindPort); an unknown name drops that port for this Pod (spec 2.4).
    Also the indexes of the Service ports whose named targetPort was found."""
    out = []
    found = set()
    for i, sp in enumerate(svc_ports):
        target = sp.target_port
        if target is None:
            number: int | None = sp.port
        elif isinstance(target, int):
            number = target
        else:
            number = next((cp.port for cp in container_ports if cp.name == target and cp.protocol == sp.protocol), None)
            if number is not None:
                found.add(i)
        if number is not None:
            out.append(EndpointPort(sp.name, sp.protocol, number))
    return tuple(out), found


def _selector_endpoints(
    svc: Service, families: frozenset[int] | None, selected: list[int], index: _PodIndex, problems: list[Problem]
) -> tuple[EndpointGroup, ...]:
    """What the EndpointSlice controller writes for a selector (endpointslice/utils.go podToEndpoint).

    Per address: serving = PodReady; terminating = deletionTimestamp set; ready =
    publishNotReadyAddresses || (serving && !terminating) (spec 2.4, 2.6); hostname only
    when ShouldSetHostname: spec.hostname set and subdomain == Service name.
    """
    assert svc.selector is not None
    if not selected:
        shown = ",".join(f"{k}={v}" for k, v in svc.selector)
        problems.append(_problem(svc, "warning", f"selector {shown} matches no Pods", "spec.selector"))
        return ()
    groups: dict[tuple[int, tuple[EndpointPort, ...]], list[EndpointAddress]] = {}
    # Pods of one workload share their ports tuple: resolve once per tuple, and find its
    # group once per family. Both caches go by identity (the index keeps the tuples alive):
    # hashing a tuple of dataclasses per address cost more than building the address.
    port_cache: dict[int, tuple[EndpointPort, ...]] = {}
    group_cache: dict[tuple[int, int], list[EndpointAddress]] = {}
    resolved: set[int] = set()  # indexes of Service ports with a named targetPort found
    eligible = 0
    pods, pod_ports, name, publish = index.pods, index.ports, svc.name, svc.publish_not_ready
    for i in selected:
        pod = pods[i]
        if pod.phase in ("Succeeded", "Failed") or not pod.ips:  # ShouldPodBeInEndpoints
            continue
        eligible += 1
        container_ports = pod_ports[i]
        ports = port_cache.get(id(container_ports))
        if ports is None:
            ports, found = _resolve_ports(svc.ports, container_ports)
            port_cache[id(container_ports)] = ports
            resolved |= found
        hostname = pod.hostname if pod.hostname and pod.subdomain == name else ""
        ready = publish or (pod.ready and not pod.terminating)
        for ip in pod.ips:
            family = 6 if ":" in ip else 4
            if families is None or family in families:
                group = group_cache.get((family, id(ports)))
                if group is None:
                    group = group_cache[(family, id(ports))] = groups.setdefault((family, ports), [])
                # Positional (field order checked at import): 1.3x faster than keywords.
                group.append(EndpointAddress(ip, hostname, pod.name, pod.namespace, pod.node_name, ready, pod.ready, pod.terminating))
    if eligible:
        _check_target_ports(svc, resolved, problems)
    ordered = sorted(groups.items(), key=lambda item: item[0][0])  # IPv4 groups first; stable otherwise
    return tuple(EndpointGroup(part, ports) for (_, ports), addresses in ordered for part in _slices(addresses, MAX_ENDPOINTS_PER_SLICE))


def _check_target_ports(svc: Service, resolved: set[int], problems: list[Problem]) -> None:
    for i, sp in enumerate(svc.ports):
        if isinstance(sp.target_port, str) and i not in resolved:
            problems.append(
                _problem(
                    svc, "warning", f"targetPort {sp.target_port!r} is not a container port of any selected Pod", f"spec.ports[{i}].targetPort"
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
