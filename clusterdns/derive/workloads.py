"""The Pods the workload controllers would make: names, labels, hostnames (spec 2.2, 2.3)."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, NamedTuple

from clusterdns.derive.dedupe import Objects
from clusterdns.derive.memo import Memo, ObjectKey
from clusterdns.derive.problems import problem
from clusterdns.errors import Problem
from clusterdns.model import Source
from clusterdns.objects import kinds as k8s

# The alphabet of generated names and pod-template-hash: no vowels, no 0/1/3
# (k8s.io/apimachinery pkg/util/rand/rand.go, spec 2.2).
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5  # names.SimpleNameGenerator appends 5 random characters
MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH  # generateName is cut to 58 characters

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
    # Each index's first attempt, all at once (the loop below, for 150,000 names: 0.3 -> 0.13 s).
    prefix, head, pairs = base[:MAX_GENERATED_BASE], f"{base}\x00".encode(), len(_PAIRS)
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    numbers = [from_bytes(blake2b(head + b"%d\x000" % i, digest_size=8).digest(), "big") for i in range(count)]
    names = [prefix + _PAIRS[n % pairs] + _PAIRS[n // pairs % pairs] + ALPHABET[n // pairs**2 % len(ALPHABET)] for n in numbers]  # _encode's
    if len(set(names)) == count:
        return names
    return _unique_names(base, prefix, count)  # two indexes drew one suffix: later ones try again


def _unique_names(base: str, prefix: str, count: int) -> list[str]:
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


class StampedPod(NamedTuple):
    """A Pod a workload would create. A tuple, not a k8s.Pod: at scale (50,000 Pods) the
    frozen dataclass cost 2.3 µs each to build and was only read once, in `pods_with_ips`."""

    owner: k8s.Workload
    name: str
    labels: k8s.Labels
    hostname: str
    subdomain: str
    node_name: str = ""
    KIND = "Pod"  # for problem(): a class attribute, not a field

    @property
    def namespace(self) -> str:
        return self.owner.namespace

    @property
    def source(self) -> Source:
        """Where the workload that makes this Pod was read."""
        return self.owner.source

    @property
    def owner_ref(self) -> tuple[str, str]:
        return (type(self.owner).__name__, self.owner.name)


PodSpec = k8s.Pod | StampedPod  # a Pod from a manifest, or one a workload would make


def _with_labels(labels: k8s.Labels, *extra: tuple[str, str]) -> k8s.Labels:
    merged = dict(labels)
    merged.update(extra)
    return tuple(sorted(merged.items()))


def _deployment_pods(d: k8s.Deployment) -> list[StampedPod]:
    # The Deployment controller makes ReplicaSet <deploy>-<pod-template-hash> and labels
    # its Pods with pod-template-hash (pkg/controller/deployment/sync.go, spec 2.2).
    t = d.template
    pod_hash = template_hash(t.digest)
    labels = _with_labels(t.labels, ("pod-template-hash", pod_hash))
    return [StampedPod(d, name, labels, t.hostname, t.subdomain) for name in _generated_names(f"{d.name}-{pod_hash}-", d.replicas)]


def _replica_set_pods(rs: k8s.ReplicaSet) -> list[StampedPod]:
    t = rs.template
    return [StampedPod(rs, name, t.labels, t.hostname, t.subdomain) for name in _generated_names(f"{rs.name}-", rs.replicas)]


# The StatefulSet controller labels each Pod controller-revision-hash=<sts>-<hash>, the hash a
# 32-bit FNV printed in decimal through SafeEncodeString: 10 characters for 3 in 4 revisions
# (pkg/controller/history ControllerRevisionName, HashControllerRevision). A label value is at
# most 63 characters, so the API server refuses the Pods of a name over 52 characters
# (kubernetes#64023, open; up to 62 only with a shorter hash, which cannot be known here).
# Within 52, <sts>-<ordinal> is also a valid hostname (initIdentity makes the Pod name its
# hostname, a DNS-1123 label) for any int32 ordinal.
MAX_STATEFUL_SET_NAME = 52


def _stateful_set_pods(sts: k8s.StatefulSet) -> list[StampedPod]:
    # Names <sts>-<ordinal> from ordinals.start; initIdentity sets hostname = pod name and
    # subdomain = serviceName; updateIdentity adds two labels (spec 2.3).
    pods = []
    for ordinal in range(sts.ordinals_start, sts.ordinals_start + sts.replicas):
        name = f"{sts.name}-{ordinal}"
        labels = _with_labels(
            sts.template.labels, ("statefulset.kubernetes.io/pod-name", name), ("apps.kubernetes.io/pod-index", str(ordinal))
        )
        pods.append(StampedPod(sts, name, labels, name, sts.service_name))
    return pods


def _daemon_set_pods(ds: k8s.DaemonSet, nodes: Sequence[str]) -> list[StampedPod]:
    """One Pod per Node (node selectors and taints are not modelled); one Pod when there are no Nodes."""
    t = ds.template
    if not nodes:
        return [StampedPod(ds, _generated_names(f"{ds.name}-", 1)[0], t.labels, t.hostname, t.subdomain)]
    pods = []
    for node in nodes:
        name = f"{ds.name}-"[:MAX_GENERATED_BASE] + _encode(_digest_int(f"{ds.name}\x00{node}"), GENERATED_SUFFIX_LENGTH)
        pods.append(StampedPod(ds, name, t.labels, t.hostname, t.subdomain, node))
    return pods


def all_pods(objs: Objects, problems: list[Problem], memo: Memo) -> list[PodSpec]:
    """Bare Pods plus the Pods of every workload whose own Pods are not in the manifests, by (namespace, name).

    A `kubectl get -A -o yaml` dump holds Deployments, their ReplicaSets and their Pods:
    a workload whose Pods (or, for a Deployment, whose ReplicaSet) are present adds nothing.
    """
    controlled = memo.reuse_step("controlled", (objs.pods, objs.replica_sets), None, [], _controlled, objs)  # 150,000 Pods: 40 ms
    nodes = sorted(n.name for n in objs.nodes)
    groups: list[list[StampedPod]] = []  # each workload's Pods
    reuse = memo.reuse
    for d in objs.deployments:
        if (d.namespace, "Deployment", d.name) not in controlled:
            groups.append(reuse("stamped", d, None, _deployment_pods, d))
    for rs in objs.replica_sets:
        if (rs.namespace, "ReplicaSet", rs.name) not in controlled:
            groups.append(reuse("stamped", rs, None, _replica_set_pods, rs))
    for sts in objs.stateful_sets:
        if (sts.namespace, "StatefulSet", sts.name) not in controlled and _makes_pods(sts, problems):
            groups.append(reuse("stamped", sts, None, _stateful_set_pods, sts))
    for ds in objs.daemon_sets:
        if (ds.namespace, "DaemonSet", ds.name) not in controlled:
            groups.append(reuse("stamped", ds, nodes, _daemon_set_pods, ds, nodes))
    patched = memo.patch_step("all_pods", (objs.pods, groups), None, lambda changed, old, out: _patched_merge(changed, old, out, objs.pods, groups), changing=2)
    if patched is not None:
        return patched
    return memo.reuse_step("all_pods", (objs.pods, groups), None, problems, _merge_pods, objs.pods, groups)


def _makes_pods(sts: k8s.StatefulSet, problems: list[Problem]) -> bool:
    """False for a StatefulSet whose Pods the API server would refuse (MAX_STATEFUL_SET_NAME),
    with one warning when it asks for some."""
    if len(sts.name) <= MAX_STATEFUL_SET_NAME:
        return True
    if sts.replicas:
        message = (f"{len(sts.name)} characters: its Pods' label controller-revision-hash=<name>-<hash> would be longer than 63 "
                   f"characters (a name over {MAX_STATEFUL_SET_NAME}, kubernetes#64023), which the API server refuses: it makes no Pods")
        problems.append(problem(sts, "warning", message, "metadata.name"))
    return False


def _patched_merge(
    changed: list[list[int]], old: tuple[Sequence[Any], ...], merged: list[PodSpec], bare: list[k8s.Pod], groups: list[list[StampedPod]]
) -> list[PodSpec] | None:
    """The previous merge with the Pods that changed put in place of the ones of their names,
    when every changed Pod manifest, and every changed workload's Pods, have the names they
    had (a workload edited, or moved by a line added above it): 1,500 Pods, not 150,000
    sorted again. None when names changed."""
    (bare_changed, groups_changed), (old_bare, old_groups) = changed, old
    pairs: list[tuple[PodSpec, PodSpec]] = [(old_bare[i], bare[i]) for i in bare_changed]
    for g in groups_changed:
        if len(old_groups[g]) != len(groups[g]):
            return None
        pairs.extend(zip(old_groups[g], groups[g]))
    if len(pairs) > len(merged) // 8:
        return None
    new = list(merged)
    for before, pod in pairs:
        key = (pod.namespace, pod.name)
        at = bisect_left(merged, key, key=_key)  # sorted by (namespace, name), each once: no problem was found
        if key != (before.namespace, before.name) or at == len(merged) or merged[at] is not before:
            return None
        new[at] = pod
    return new


def _key(pod: PodSpec) -> ObjectKey:
    return (pod.namespace, pod.name)


def _controlled(found: list[Problem], objs: Objects) -> set[tuple[str, str, str]]:
    """(namespace, kind, name) of each workload whose own Pods (or ReplicaSets) are written."""
    controlled = {(p.namespace, *p.owners[0]) for p in objs.pods if p.owners}
    return controlled | {(rs.namespace, *rs.owners[0]) for rs in objs.replica_sets if rs.owners}


def _merge_pods(problems: list[Problem], bare: list[k8s.Pod], groups: list[list[StampedPod]]) -> list[PodSpec]:
    """Pod manifests first, then workloads' Pods of other names, sorted by (namespace, name).

    A workload's Pods' names start with the workload's: each workload's Pods, sorted, are a
    run; the runs are put in order by their first Pods, each Pod manifest a run of its own,
    and joined when no run overlaps the next (150,000 Pods: 115 -> 37 ms). When one does (a
    name two of them make, say), every Pod is sorted by its key, each workload's walked in
    the order it makes them, for the warnings' order.
    """
    runs: list[Sequence[PodSpec]] = [sorted(g, key=_name) for g in groups if g]
    if runs:
        runs += [(p,) for p in bare]
        runs.sort(key=_first_key)
        merged: list[PodSpec] = []
        last: ObjectKey | None = None
        for run in runs:
            if (last is not None and _key(run[0]) <= last) or _repeats(run):
                break
            merged += run
            last = _key(run[-1])
        else:
            return merged
    return _merge_by_key(problems, bare, groups)


def _repeats(run: Sequence[PodSpec]) -> bool:
    """Whether a DaemonSet's Pods repeat a name (two Nodes' hashes drew one suffix); the other
    workloads' names are unique as made."""
    first = run[0]
    return type(first) is StampedPod and type(first.owner) is k8s.DaemonSet and any(a.name == b.name for a, b in zip(run, run[1:]))


def _first_key(run: Sequence[PodSpec]) -> ObjectKey:
    return _key(run[0])


def _name(pod: StampedPod) -> str:
    return pod.name


def _merge_by_key(problems: list[Problem], bare: list[k8s.Pod], groups: list[list[StampedPod]]) -> list[PodSpec]:
    """_merge_pods for runs that overlap: a Pod manifest wins over a workload's Pod of its name."""
    by_key: dict[ObjectKey, PodSpec] = {(p.namespace, p.name): p for p in bare}
    for group in groups:
        for pod in group:
            key = (pod.owner.namespace, pod.name)
            other = by_key.setdefault(key, pod)
            if other is not pod:
                problems.append(problem(other, "warning", f"a Pod of {'/'.join(pod.owner_ref)} has the same name; the Pod manifest is used"))
    return [by_key[k] for k in sorted(by_key)]
