"""Each Service's endpoints as the EndpointSlice controllers would publish them (spec 2.4, C15):
its EndpointSlices, else its Endpoints (mirrored), else the Pods its selector picks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import itemgetter

from clusterdns.derive.changes import changed_at
from clusterdns.derive.dedupe import Objects
from clusterdns.derive.ipam import ip_family
from clusterdns.derive.memo import Memo, ObjectKey, same
from clusterdns.derive.pod_index import PodIndex, pod_index, selecting
from clusterdns.derive.problems import problem
from clusterdns.derive.service_ips import service_of
from clusterdns.errors import Problem, cut, shown
from clusterdns.frozen import maker
from clusterdns.model import EndpointAddress, EndpointGroup, EndpointPort, Pod, Service, ServicePort
from clusterdns.objects import kinds as k8s


def with_endpoints(
    services: list[Service], objs: Objects, pods: Sequence[Pod], pod_ports: Sequence[tuple[k8s.ContainerPort, ...]], problems: list[Problem], memo: Memo
) -> list[Service]:
    """Each Service's endpoints (spec 2.4, C15): its EndpointSlices, else its Endpoints, else its selector.

    After an edit that changed a few Services and Pods (their places, namespaces and labels
    kept) and no EndpointSlice or Endpoints, only the changed Services and those selecting a
    changed Pod are looked at again (_patched)."""
    index = pod_index(pods, pod_ports, memo)
    # Not compared: the Services as written (one that changed is a new model Service, in `services`).
    lists = (services, objs.slices, objs.endpoints, (index,))
    patched = _patched(services, objs, index, lists, memo)
    if patched is not None:
        return patched
    memo.endpoints = {}
    found: list[Problem] = []
    out = _all_endpoints(services, objs, index, found, memo)
    memo.steps["endpoints"] = (lists, None, (out, found))
    problems.extend(found)
    return out


def _patched(services: list[Service], objs: Objects, index: PodIndex, lists: tuple[Sequence[object], ...], memo: Memo) -> list[Service] | None:
    """The previous run's endpoints, with those of the changed Services and of the Services
    that select a changed Pod made again; None when that cannot tell (other slices or
    Endpoints, other names, a Pod index built anew) or one of them finds a problem (then
    every Service is looked at, for the problems in order)."""
    entry = memo.old.steps.get("endpoints") if memo.old is not None else None
    if entry is None or entry[2][1] or not all(map(same, entry[0][1:3], lists[1:3])):
        return None
    old, old_index = entry[0][0], entry[0][3][0]
    changed = changed_at(old, services)
    if changed is None or any(services[j].key != old[j].key for j in changed):
        return None
    if old_index is not index and (memo.pod_changes is None or memo.pod_changes[0] is not old_index):
        return None
    touched = selecting(services, index.pods, memo.pod_changes[1]) if old_index is not index else []
    memo.endpoints = memo.old.endpoints  # shared: an entry holds its Service as written and its Pod index
    out, found = list(entry[2][0]), []
    slices, endpoints = _written(services, objs, found)  # no problem: the previous run's slices, Endpoints and Service names
    for j in sorted(set(changed).union(touched)):
        svc = services[j]
        # Made again, or gone when it no longer selects (`selector: {}`, ExternalName): an
        # entry left behind would be moved to the new index below and reused later.
        memo.endpoints.pop((type(objs.services[j]), svc.namespace, svc.name), None)
        out[j] = _endpoints_for(svc, objs.services[j], slices.get(svc.key), endpoints.get(svc.key), index, found, memo)
        if found:
            return None
    if old_index is not index:  # the other Services chose the same Pods: their entries name this index now
        for key, e in memo.endpoints.items():
            if e[1][1] is old_index:
                memo.endpoints[key] = (e[0], (e[1][0], index, *e[1][2:]), e[2])
    memo.steps["endpoints"] = (lists, None, (out, []))
    return out


def _all_endpoints(services: list[Service], objs: Objects, index: PodIndex, problems: list[Problem], memo: Memo) -> list[Service]:
    slices, endpoints = _written(services, objs, problems)
    return [
        _endpoints_for(svc, obj, slices.get(svc.key), endpoints.get(svc.key), index, problems, memo)
        for svc, obj in zip(services, objs.services, strict=True)
    ]


def _written(services: list[Service], objs: Objects, found: list[Problem]) -> tuple[dict[ObjectKey, list[k8s.EndpointSlice]], dict[ObjectKey, k8s.Endpoints]]:
    """The EndpointSlices and Endpoints written for each Service; those of no Service are problems."""
    slices: defaultdict[ObjectKey, list[k8s.EndpointSlice]] = defaultdict(list)
    endpoints: dict[ObjectKey, k8s.Endpoints] = {}
    if not objs.slices and not objs.endpoints:
        return slices, endpoints
    by_key = {s.key: s for s in services}
    for s in objs.slices:
        if not s.service_name:
            found.append(problem(s, "warning", f"no {k8s.SERVICE_NAME_LABEL} label: ignored", "metadata.labels"))
        elif (s.namespace, s.service_name) not in by_key:
            found.append(problem(s, "warning", f"its Service {s.namespace}/{s.service_name} does not exist: ignored"))
        else:
            slices[(s.namespace, s.service_name)].append(s)
    for e in objs.endpoints:
        if (e.namespace, e.name) in by_key:
            endpoints[(e.namespace, e.name)] = e
        else:
            found.append(problem(e, "warning", f"no Service {e.namespace}/{e.name} to attach these Endpoints to: ignored"))
    return slices, endpoints


def _endpoints_for(
    svc: Service, obj: k8s.Service, own_slices: list[k8s.EndpointSlice] | None, own_endpoints: k8s.Endpoints | None, index: PodIndex,
    problems: list[Problem], memo: Memo,
) -> Service:
    """One Service with its endpoints (`obj`: the Service as written)."""
    if svc.type != "ExternalName" and not own_slices and own_endpoints is None and svc.selector is not None:
        return _with_selected_endpoints(svc, obj, index, problems, memo)
    groups, source = _endpoints_of(svc, own_slices, own_endpoints)
    _check_named_ports(svc, groups, problems)
    return _replace_endpoints(svc, groups, source)


def _with_selected_endpoints(svc: Service, obj: k8s.Service, index: PodIndex, problems: list[Problem], memo: Memo) -> Service:
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
            groups = _selector_endpoints(svc, _endpoint_families(svc, obj.ip_families), *chosen, found)
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
    s = svc
    return service_of(s.namespace, s.name, s.type, s.cluster_ips, s.headless, s.external_name, s.ports, s.selector, s.publish_not_ready, groups, source,
                      s.source, s.external_addresses)


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


def in_slices(addresses: Sequence[EndpointAddress], size: int) -> Iterator[tuple[EndpointAddress, ...]]:
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
            out += [EndpointGroup(part, sub.ports, endpoints.name, endpoints.source) for part in in_slices(family, MAX_MIRRORED_PER_SLICE)]
    return tuple(out)


def _check_named_ports(svc: Service, groups: Sequence[EndpointGroup], problems: list[Problem]) -> None:
    """A named Service port with no endpoint port of that name gets no endpoint SRV (kubernetes#80175)."""
    endpoint_names = {p.name for g in groups for p in g.ports}
    if not any(g.ports for g in groups):
        return
    for i, port in enumerate(svc.ports):
        if port.name and port.name not in endpoint_names:
            message = f"port {shown(port.name)} has no endpoint port of the same name: its endpoints get no SRV record"
            problems.append(problem(svc, "warning", message, f"spec.ports[{i}].name"))


def _endpoint_families(svc: Service, ip_families: tuple[str, ...]) -> frozenset[int] | None:
    """Families the endpoints carry: one slice per ipFamilies entry (spec 2.4); None = every family.

    Without ipFamilies: the families of the ClusterIPs; a headless Service gets every
    family its Pods have.
    """
    if ip_families:
        return frozenset(6 if f == "IPv6" else 4 for f in ip_families)
    if svc.cluster_ips:
        return frozenset(ip_family(ip) for ip in svc.cluster_ips)
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
    svc: Service, families: frozenset[int] | None, pods: Sequence[Pod], pod_ports: Sequence[tuple[k8s.ContainerPort, ...]], problems: list[Problem]
) -> tuple[EndpointGroup, ...]:
    """What the EndpointSlice controller writes for the Pods a selector chose, each with its
    container ports (endpointslice/utils.go podToEndpoint).

    Per address: serving = PodReady; terminating = deletionTimestamp set; ready =
    publishNotReadyAddresses || (serving && !terminating) (spec 2.4, 2.6); hostname only
    when ShouldSetHostname: spec.hostname set and subdomain == Service name.
    """
    assert svc.selector is not None
    if not pods:
        selector = ",".join(f"{k}={v}" for k, v in svc.selector)
        problems.append(problem(svc, "warning", f"selector {cut(selector)} matches no Pods", "spec.selector"))
        return ()
    groups: dict[tuple[int, tuple[EndpointPort, ...]], list[EndpointAddress]] = {}
    resolved: set[int] = set()  # indexes of Service ports with a named targetPort found
    eligible = 0
    name, publish = svc.name, svc.publish_not_ready
    # Pods of one workload sit side by side and share their ports tuple: each run of them
    # resolves its ports, and finds its group per family, once.
    for container_ports, run in groupby(zip(pods, pod_ports), key=itemgetter(1)):
        ports, found = _resolve_ports(svc.ports, container_ports)
        by_family: dict[int, list[EndpointAddress]] = {}
        before = eligible
        for pod, _ in run:
            ips = pod.ips
            if not ips or pod.phase in ("Succeeded", "Failed"):  # ShouldPodBeInEndpoints
                continue
            eligible += 1
            hostname = pod.hostname if pod.hostname and pod.subdomain == name else ""
            ready = publish or (pod.ready and not pod.terminating)
            for ip in ips:
                family = 6 if ":" in ip else 4
                if families is None or family in families:
                    group = by_family.get(family)
                    if group is None:
                        group = by_family[family] = groups.setdefault((family, ports), [])
                    group.append(_address(ip, hostname, pod.name, pod.namespace, pod.node_name, ready, pod.ready, pod.terminating))
        if eligible > before:
            resolved |= found
    if eligible:
        _check_target_ports(svc, resolved, problems)
    ordered = sorted(groups.items(), key=lambda item: item[0][0])  # IPv4 groups first; stable otherwise
    return tuple(EndpointGroup(part, ports) for (_, ports), addresses in ordered for part in in_slices(addresses, MAX_ENDPOINTS_PER_SLICE))


def _check_target_ports(svc: Service, resolved: set[int], problems: list[Problem]) -> None:
    for i, sp in enumerate(svc.ports):
        if isinstance(sp.target_port, str) and i not in resolved:
            problems.append(
                problem(
                    svc, "warning", f"targetPort {shown(sp.target_port)} is not a container port of any selected Pod", f"spec.ports[{i}].targetPort"
                )
            )


_address = maker(EndpointAddress, "ip", "hostname", "pod_name", "pod_namespace", "node_name", "ready", "serving", "terminating")
