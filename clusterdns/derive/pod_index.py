"""Pods by label for the Services' selectors, and after an edit the index patched and the
Services whose selected Pods it touched: a few Pods changed, not 150,000 indexed again."""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Sequence
from itertools import groupby
from operator import attrgetter

from clusterdns.derive.changes import changed_at
from clusterdns.derive.memo import Memo
from clusterdns.model import Pod, Service
from clusterdns.objects import kinds as k8s

LabelIndex = defaultdict[tuple[str, str, str], array]
_labels, _namespace = attrgetter("labels"), attrgetter("namespace")


class PodIndex:
    """Pods by (namespace, label key, label value), for selectors without a scan of every Pod."""

    def __init__(self, pods: Sequence[Pod], ports: Sequence[tuple[k8s.ContainerPort, ...]], by_label: LabelIndex | None = None) -> None:
        """`by_label`: the previous index's, when every Pod has the namespace and labels it had at its place."""
        self.pods = pods
        self.ports = ports  # each Pod's container ports, same order as `pods`
        if by_label is not None:
            self.by_label = by_label
            return
        # Indexes as 4-byte array items, not lists of int objects: at 150,000 Pods the int
        # objects and list slots were 9 MB the memo keeps between reloads.
        self.by_label = defaultdict(lambda: array("I"))
        # A workload's Pods sit side by side (sorted by name, which starts with the
        # workload's) with one namespace and labels tuple: each run of them is indexed at
        # once (150,000 Pods of 10,000 Deployments: 80 -> 50 ms).
        start = 0
        for (namespace, labels), run in groupby(zip(map(_namespace, pods), map(_labels, pods))):
            end = start + len(list(run))
            for k, v in labels:
                self.by_label[(namespace, k, v)].extend(range(start, end))
            start = end

    def select(self, namespace: str, selector: k8s.Labels) -> Sequence[int]:
        """Indexes (in Pod order) of the Pods in `namespace` whose labels match every pair."""
        candidates: list[Sequence[int]] = [self.by_label.get((namespace, k, v), ()) for k, v in selector]
        smallest = min(candidates, key=len)
        if len(candidates) == 1:
            return smallest
        # Labels are sorted (key, value) pairs, one per key: a selector matches when each
        # of its pairs is one of them.
        wanted = set(selector)
        return [i for i in smallest if wanted.issubset(self.pods[i].labels)]


def pod_index(pods: Sequence[Pod], ports: Sequence[tuple[k8s.ContainerPort, ...]], memo: Memo) -> PodIndex:
    """The index of these Pods: the previous run's for the same lists; its label index shared
    when the Pods that changed kept their places, namespaces and labels (memo.pod_changes then
    says which, for endpoints.py); built anew otherwise."""
    memo.pod_changes = None
    entry = memo.old.steps.get("index") if memo.old is not None else None
    if entry is not None and (entry[0][0] is not pods or entry[0][1] is not ports):
        (old_pods, old_ports), old = entry[0], entry[2][0]
        changed, ports_changed = changed_at(old_pods, pods), changed_at(old_ports, ports)
        if changed is not None and ports_changed is not None and all(
            old_pods[i].namespace == pods[i].namespace and old_pods[i].labels == pods[i].labels for i in changed
        ):
            index = PodIndex(pods, ports, old.by_label)
            memo.steps["index"] = ((pods, ports), None, (index, []))
            memo.pod_changes = (old, sorted(set(changed) | set(ports_changed)))
            return index
    return memo.reuse_step("index", (pods, ports), None, [], lambda _, *lists: PodIndex(*lists), pods, ports)  # type: ignore[no-any-return]


def selecting(services: Sequence[Service], pods: Sequence[Pod], at: Sequence[int]) -> list[int]:
    """Indexes of the Services whose selector picks one of the Pods at `at` (the Pods there,
    now and before, have the same namespace and labels)."""
    by_pair: defaultdict[tuple[str, str, str], list[int]] = defaultdict(list)
    for j, svc in enumerate(services):
        if svc.selector:
            for k, v in svc.selector:
                by_pair[(svc.namespace, k, v)].append(j)
    found: set[int] = set()
    for labelled in {(pods[i].namespace, pods[i].labels) for i in at}:
        namespace, labels = labelled
        for k, v in labels:
            found.update(j for j in by_pair.get((namespace, k, v), ()) if set(services[j].selector or ()).issubset(labels))
    return sorted(found)
