"""One object per (kind, namespace, name), the one read last winning; and which namespaces exist."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter

from clusterdns.derive.changes import changed_at
from clusterdns.derive.problems import problem
from clusterdns.errors import Problem
from clusterdns.model import ALWAYS_NAMESPACES, Source
from clusterdns.objects import kinds as k8s


def source_order(source: Source) -> tuple[str, tuple[int, ...]]:
    """Sort key of where an object was read: path, then document ("2" < "10", "0/3")."""
    return source.file, tuple(int(p) for p in source.doc.split("/") if p.isdigit())


@dataclass
class Objects:
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
        kind = LISTS.get(type(obj))
        if kind is not None:
            getattr(self, kind).append(obj)

    def namespaced(self) -> Iterator[Sequence[k8s.KubeObject | k8s.ObjectRef]]:
        yield from (self.services, self.endpoints, self.slices, self.pods, self.deployments, self.replica_sets)
        yield from (self.stateful_sets, self.daemon_sets, self.refs)


LISTS = {
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
}  # Objects.add: one look-up, not a match over ten classes (60,000 objects: 40 -> 10 ms)


def dedupe(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], problems: list[Problem]) -> Objects:
    """One object per (kind, namespace, name): the one read last (by path, then document) wins.

    Each kind keeps first-seen order, except Services, sorted by (namespace, name).
    ObjectRefs are kept as they come (only their namespaces count).
    """
    winners: dict[tuple[type, str, str], tuple[int, k8s.KubeObject]] = {}
    out = Objects()
    for index, obj in enumerate(objects):
        if type(obj) is k8s.ObjectRef:
            out.refs.append(obj)
            continue
        key = (type(obj), obj.namespace, obj.name)
        other = winners.get(key)
        if other is None:
            winners[key] = (index, obj)
            continue
        first, last = sorted((other, (index, obj)), key=lambda t: (source_order(t[1].source), t[0]))
        winners[key] = last
        problems.append(problem(last[1], "warning", f"defined twice: {first[1].source} and {last[1].source}; the later one is used"))
    for _, obj in winners.values():
        out.add(obj)
    out.services.sort(key=lambda s: (s.namespace, s.name))
    return out


def namespaces_of(objs: Objects) -> frozenset[str]:
    """A namespace exists when a Namespace object or any object in it exists (spec C4)."""
    names = set(ALWAYS_NAMESPACES)
    names.update(n.name for n in objs.namespaces)
    for group in objs.namespaced():
        names.update(map(attrgetter("namespace"), group))
    return frozenset(names)


@dataclass
class Deduped:
    """One dedupe() and what the next one needs to patch it: the objects it was given, the
    result, and the namespaces of that (each object's place in its list comes when needed)."""

    given: list[k8s.KubeObject | k8s.ObjectRef]
    objects: Objects
    namespaces: frozenset[str]
    unique: bool  # no two objects of one (kind, namespace, name): nothing was left out
    places: array[int] | None = None  # given[i]'s index in its list of `objects`


def deduped(objects: list[k8s.KubeObject | k8s.ObjectRef], problems: list[Problem], previous: Deduped | None) -> Deduped:
    """dedupe() and namespaces_of(), or `previous` patched when no object's (kind, namespace,
    name) moved: an edit that replaces a few objects by others of the same names (a Service's
    port changed) replaces them in place, not 160,000 objects sorted out again (125 -> 3 ms)."""
    if previous is not None and previous.unique and len(previous.given) == len(objects):
        patched = _patched(previous, objects)
        if patched is not None:
            return patched
    found: list[Problem] = []
    result = dedupe(objects, found)
    problems.extend(found)
    kept = sum(len(group) for group in (result.namespaces, result.nodes, *result.namespaced()))
    return Deduped(objects, result, namespaces_of(result), kept == len(objects))


def _patched(previous: Deduped, objects: list[k8s.KubeObject | k8s.ObjectRef]) -> Deduped | None:
    old = previous.given
    changed = changed_at(old, objects)
    if changed is None:
        return None
    places = previous.places if previous.places is not None else _places(previous)
    lists: dict[str, list[k8s.KubeObject | k8s.ObjectRef]] = {}
    for i in changed:
        a, b = old[i], objects[i]
        if type(a) is not type(b) or a.namespace != b.namespace or a.name != b.name:
            return None  # another object, or a move: sorted out again
        name = _list_of(b)
        if name not in lists:
            lists[name] = list(getattr(previous.objects, name))
        lists[name][places[i]] = b
    return Deduped(objects, replace(previous.objects, **lists), previous.namespaces, True, places)


def _list_of(obj: k8s.KubeObject | k8s.ObjectRef) -> str:
    return "refs" if type(obj) is k8s.ObjectRef else LISTS[type(obj)]


def _places(done: Deduped) -> array[int]:
    """Where each given object is in its list: first-seen order, Services by (namespace, name)."""
    counts: dict[str, int] = {}
    sorted_at = {id(s): i for i, s in enumerate(done.objects.services)}
    places = array("I")
    for obj in done.given:
        if type(obj) is k8s.Service:
            places.append(sorted_at[id(obj)])
            continue
        name = _list_of(obj)
        places.append(counts.get(name, 0))
        counts[name] = places[-1] + 1
    done.places = places
    return places
