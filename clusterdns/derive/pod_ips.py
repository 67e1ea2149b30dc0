"""Pod IPs: status.podIP(s) when written, otherwise allocated from --pod-cidr (spec 2.4)."""

from __future__ import annotations

from collections.abc import Sequence

from clusterdns.config.settings import Config
from clusterdns.derive.dedupe import Objects
from clusterdns.derive.ipam import Band, Network, allocate, by_family, to_int, to_text
from clusterdns.derive.memo import Memo, ObjectKey
from clusterdns.derive.problems import problem
from clusterdns.derive.workloads import PodSpec, StampedPod
from clusterdns.errors import Problem
from clusterdns.model import Pod, make_pod
from clusterdns.objects import kinds as k8s


def explicit_addresses(objs: Objects, pods: list[PodSpec], memo: Memo) -> frozenset[int]:
    """Every address a manifest gives a Pod or an endpoint, which is never handed out again;
    empty when no Pod needs one handed out (every Pod written with its IP: 150,000 addresses
    not kept). The previous run's set when the Pods, EndpointSlices and Endpoints are the same."""
    return memo.reuse_step("taken", (pods, objs.pods, objs.slices, objs.endpoints), None, [], _explicit, objs, pods)


def _explicit(found: list[Problem], objs: Objects, pods: list[PodSpec]) -> frozenset[int]:
    if all(type(p) is not StampedPod and p.ips for p in pods):
        return frozenset()
    taken = {to_int(ip) for p in objs.pods for ip in p.ips}
    for s in objs.slices:
        taken.update(to_int(a.ip) for a in s.endpoints)
    for e in objs.endpoints:
        taken.update(to_int(a.ip) for sub in e.subsets for a in sub.addresses)
    return frozenset(taken)


def _pod_bands(net: Network) -> list[Band]:
    """A Pod CIDR without its network address (and, for IPv4, its broadcast address)."""
    base = int(net.network_address)
    size = net.num_addresses - (2 if net.version == 4 else 1)
    return [Band(base + 1, max(size, 0))]


def pods_with_ips(
    pods: list[PodSpec], config: Config, taken: frozenset[int], problems: list[Problem], memo: Memo
) -> tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]]:
    """status.podIP(s) when written; otherwise one address per configured Pod CIDR family (spec 2.4),
    none of those `taken`.

    Returns the Pods and, in the same order, their container ports (for named targetPorts).
    """
    result = memo.patch_step("pods", (pods, taken), None, lambda changed, old, out: _patched(changed[0], old[0], out, pods))
    if result is None:
        result = memo.reuse_step("pods", (pods, taken), None, problems, _assign_pods, pods, config, taken, memo)
    return result


def _patched(
    changed: list[int], old: Sequence[PodSpec], out: tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]], pods: list[PodSpec]
) -> tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]] | None:
    """The previous Pods with those at `changed` made again, when each has the name of the one
    before it and needs an address as that one did: then the keys that need an address are
    the same, and so is every address. None when that is not so."""
    new_pods, new_ports = list(out[0]), list(out[1])
    owners: dict[int, tuple[tuple[str, str], ...]] = {}
    for i in changed:
        before, spec = old[i], pods[i]
        needs = type(spec) is StampedPod or not spec.ips
        if (spec.namespace, spec.name) != (before.namespace, before.name) or needs != (type(before) is StampedPod or not before.ips):
            return None
        # It had its addresses (the step found no problem, so no Pod went without): it keeps
        # them when it needs them handed out, or has its own.
        ips = out[0][i].ips if needs else spec.ips
        new_pods[i] = _model_pod(spec, ips, owners)
        new_ports[i] = spec.owner.template.ports if type(spec) is StampedPod else spec.ports
    return new_pods, new_ports


def _assign_pods(
    problems: list[Problem], pods: list[PodSpec], config: Config, explicit: frozenset[int], memo: Memo
) -> tuple[list[Pod], list[tuple[k8s.ContainerPort, ...]]]:
    needs = [type(p) is StampedPod or not p.ips for p in pods]
    needing = [(p.owner.namespace if type(p) is StampedPod else p.namespace, p.name) for p, need in zip(pods, needs) if need]
    networks = by_family(config.pod_cidr)
    assigned = iter(_allocated(needing, networks, set(explicit)))  # in the order of `needing`
    # The previous run's model Pods, by the spec they were made from: most are reused.
    previous = memo.old.steps.get("pods") if memo.old is not None else None
    made: dict[int, tuple[PodSpec, Pod]] = {}
    if previous is not None:
        made = {id(spec): (spec, pod) for spec, pod in zip(previous[0][0], previous[2][0][0])}
    out: list[Pod] = []
    ports: list[tuple[k8s.ContainerPort, ...]] = []
    owners: dict[int, tuple[tuple[str, str], ...]] = {}  # id(workload) -> its Pods' owners
    no_ip = _no_ip(networks)  # one string for every such Pod
    workload = None
    for p, need in zip(pods, needs):
        ips = next(assigned) if need else p.ips
        entry = made.get(id(p)) if made else None
        if type(p) is StampedPod:
            if p.owner is not workload:  # the next workload's Pods (side by side): its owners looked up once
                workload, owned_by = p.owner, _owned_by(p, owners)
            ports.append(workload.template.ports)
            pod = entry[1] if entry is not None and entry[0] is p and entry[1].ips == ips else _stamped(p, ips, owned_by)
        else:
            ports.append(p.ports)
            pod = entry[1] if entry is not None and entry[0] is p and entry[1].ips == ips else _model_pod(p, ips, owners)
        if not ips:
            problems.append(problem(p, "warning", no_ip))
        out.append(pod)
    return out, ports


def _allocated(needing: list[ObjectKey], networks: dict[int, Network], taken: set[int]) -> list[tuple[str, ...]]:
    """Each key's addresses, in the order of the keys: one per configured family, IPv4 first (none taken twice)."""
    assigned: list[tuple[str, ...]] = [()] * len(needing)
    for family, net in sorted(networks.items()):  # IPv4 first, as the model wants
        addresses = allocate(needing, _pod_bands(net), taken)
        assigned = [ips if a is None else ips + (to_text(a, family),) for ips, a in zip(assigned, addresses)]
    return assigned


def _no_ip(networks: dict[int, Network]) -> str:
    """The warning for a Pod without an address: why (with what each --pod-cidr holds) and the fix."""
    if not networks:
        return "no status.podIP and no --pod-cidr is configured: the Pod has no IP"
    held = " and ".join(f"{net} ({_pod_bands(net)[0].size} addresses)" for _, net in sorted(networks.items()))
    return f"no status.podIP and --pod-cidr {held} {'is' if len(networks) == 1 else 'are'} full: the Pod has no IP; use a larger --pod-cidr"


def _model_pod(p: PodSpec, ips: tuple[str, ...], owners: dict[int, tuple[tuple[str, str], ...]]) -> Pod:
    """The Pod as the cluster has it: a written one with its IPs is that very object."""
    if type(p) is StampedPod:
        return _stamped(p, ips, _owned_by(p, owners))
    if p.ips == ips:
        return p
    return make_pod(p.namespace, p.name, p.labels, p.hostname, p.subdomain, p.node_name, p.ports, ips, p.phase, p.ready, p.terminating, p.owners, p.source)


def _owned_by(p: StampedPod, owners: dict[int, tuple[tuple[str, str], ...]]) -> tuple[tuple[str, str], ...]:
    """The owners of a workload's Pods: one tuple per workload."""
    found = owners.get(id(p.owner))
    if found is None:
        found = owners[id(p.owner)] = (p.owner_ref,)
    return found


def _stamped(p: StampedPod, ips: tuple[str, ...], owned_by: tuple[tuple[str, str], ...]) -> Pod:
    """A workload's Pod as the cluster has it. It has no status: Running, Ready, not
    terminating (spec 2.4)."""
    workload = p.owner
    return make_pod(workload.namespace, p.name, p.labels, p.hostname, p.subdomain, p.node_name, workload.template.ports, ips, "Running", True, False, owned_by,
               workload.source)

