"""derive(): what the cluster's controllers would make of the manifest objects (spec Part 2).

A pure function of its inputs: the objects, the config, and the memo of the previous call,
which the caller (pipeline.py) keeps and hands back; the result is the one a call without
a memo gives (tests/derive check), only faster when little changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from clusterdns.config.settings import Config
from clusterdns.derive.dedupe import deduped
from clusterdns.derive.endpoints import with_endpoints
from clusterdns.derive.memo import Memo
from clusterdns.derive.pod_ips import explicit_addresses, pods_with_ips
from clusterdns.derive.problems import problem
from clusterdns.derive.service_ips import services_with_ips
from clusterdns.derive.workloads import all_pods
from clusterdns.errors import Problem, shown
from clusterdns.manifests.files import gc_paused
from clusterdns.model import ClusterState, Service
from clusterdns.objects import kinds as k8s


def derive(
    objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem] | None = None, previous: Memo | None = None
) -> tuple[ClusterState, Memo]:
    """The ClusterState the controllers would produce from these objects, and the memo of
    this call for the next one. `problems` (those found while reading, for instance) are
    extended with the derivation's warnings and returned in the state; `previous` is the
    memo the last call returned (None: compute everything)."""
    problems = problems if problems is not None else []
    with gc_paused():
        return _derive(objects, config, problems, previous)


def _derive(objects: Iterable[k8s.KubeObject | k8s.ObjectRef], config: Config, problems: list[Problem], previous: Memo | None) -> tuple[ClusterState, Memo]:
    memo = Memo(config, previous if previous is not None and previous.config == config else None)
    memo.deduped = deduped(objects if isinstance(objects, list) else list(objects), problems, memo.old.deduped if memo.old is not None else None)
    objs = memo.deduped.objects
    pod_specs = all_pods(objs, problems, memo)
    taken = explicit_addresses(objs, pod_specs, memo)  # Pods a workload would make have no address yet
    pods, pod_ports = pods_with_ips(pod_specs, config, taken, problems, memo)
    services = services_with_ips(objs.services, config, problems, memo)
    services = with_endpoints(services, objs, pods, pod_ports, problems, memo)
    check_stateful_sets(objs.stateful_sets, services, problems)
    state = ClusterState(
        services=tuple(sorted(services, key=lambda s: s.key)),
        pods=tuple(pods),
        namespaces=memo.deduped.namespaces,
        problems=tuple(problems),
    )
    memo.old = None  # keep only what this run used
    memo.pod_changes = None  # (it holds the previous Pod index)
    return state, memo


def check_stateful_sets(sets: Sequence[k8s.StatefulSet], services: Sequence[Service], problems: list[Problem]) -> None:
    """Per-Pod names need a headless Service named serviceName in the namespace (spec 2.3)."""
    by_key = {s.key: s for s in services}
    for sts in sets:
        if not sts.service_name:
            continue
        svc = by_key.get((sts.namespace, sts.service_name))
        if svc is None:
            problems.append(
                problem(
                    sts, "warning", f"serviceName {shown(sts.service_name)}: no such Service; its Pods get no DNS names", "spec.serviceName"
                )
            )
        elif not svc.headless:
            problems.append(
                problem(
                    sts,
                    "warning",
                    f"serviceName {shown(sts.service_name)} is not headless (clusterIP: None); its Pods get no DNS names",
                    "spec.serviceName",
                )
            )
