"""ClusterIPs: as written, or allocated from --service-cidr as the apiserver's allocator would
(spec 2.1, KEP-1880 bands, KEP-563 families)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from clusterdns.config.settings import Config
from clusterdns.derive.ipam import Band, Network, allocate, by_family, ip_family, to_int, to_text
from clusterdns.derive.memo import Memo, ObjectKey
from clusterdns.derive.problems import display_name, problem
from clusterdns.errors import Problem, shown
from clusterdns.frozen import maker
from clusterdns.model import Service
from clusterdns.names import external_target
from clusterdns.objects import kinds as k8s

# Addresses a cluster hands out by convention (spec 2.1): kubernetes.default gets the
# first one, kubeadm's DNS Service the tenth. No other Service is given these.
WELL_KNOWN_OFFSETS = {("default", "kubernetes"): 1, ("kube-system", "kube-dns"): 10}
RESERVED_OFFSETS = (1, 10)


def _range_offset(net: Network) -> int:
    """KEP-3070 calculateRangeOffset: min(max(16, size/16), 256); 0 below 16 addresses."""
    size = net.num_addresses
    if size < 16:
        return 0
    return min(max(16, size // 16), 256)


def _service_bands(net: Network) -> list[Band]:
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
        return [Band(base + 1, last)]
    return [Band(base + offset + 1, last - offset), Band(base + 1, offset)]


@dataclass(frozen=True, slots=True)
class _ServiceIPs:
    """What one Service wants: explicit addresses, and the families still to allocate."""

    obj: k8s.Service
    explicit: Mapping[int, str]
    families: tuple[int, ...]  # in the Service's order; allocated unless explicit


_NO_ADDRESSES: Mapping[int, str] = MappingProxyType({})
# Family tuples are kept from one run to the next (in the memo's results): one shared tuple per
# combination, not one per Service (10,000 Services).
_FAMILY_TUPLES: dict[tuple[int, ...], tuple[int, ...]] = {t: t for t in ((), (4,), (6,), (4, 6), (6, 4))}


def _wanted_families(svc: k8s.Service, configured: Sequence[int], problems: list[Problem]) -> list[int]:
    """IP families per ipFamilies / ipFamilyPolicy (KEP-563); primary = first --service-cidr."""
    explicit = [ip_family(ip) for ip in svc.cluster_ips]
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
                problem(svc, "warning", f"RequireDualStack but no IPv{other} --service-cidr is configured", "spec.ipFamilyPolicy")
            )
    return families


def _check_explicit_ips(services: Sequence[k8s.Service], networks: dict[int, Network], problems: list[Problem]) -> None:
    """Warn about written ClusterIPs outside --service-cidr, and about one IP on two Services."""
    owners: dict[str, k8s.Service] = {}
    for svc in services:
        for i, ip in enumerate(svc.cluster_ips):
            field = f"spec.clusterIPs[{i}]" if i else "spec.clusterIP"
            net = networks.get(ip_family(ip))
            if net is None:
                problems.append(problem(svc, "warning", f"clusterIP {ip}: no IPv{ip_family(ip)} --service-cidr is configured", field))
            elif ipaddress.ip_address(ip) not in net:
                problems.append(problem(svc, "warning", f"clusterIP {ip} is outside --service-cidr {net}", field))
            first = owners.setdefault(ip, svc)
            if first is not svc:
                problems.append(
                    problem(svc, "warning", f"clusterIP {ip} is also used by Service {display_name(first)} ({first.source})", field)
                )


def _check_external_names(services: Sequence[k8s.Service], problems: list[Problem]) -> None:
    """CoreDNS does not serve an IP written as externalName (coredns/coredns#2164, spec C10)."""
    for svc in services:
        if svc.type == "ExternalName" and svc.external_name and not external_target(svc.external_name):
            message = f"externalName {shown(svc.external_name)} is an IP address; CoreDNS does not serve it"
            problems.append(problem(svc, "warning", message, "spec.externalName"))


def services_with_ips(objs: list[k8s.Service], config: Config, problems: list[Problem], memo: Memo) -> list[Service]:
    """Every Service with its ClusterIPs: as written, or allocated (spec 2.1); endpoints come later."""
    tables = ("wants", "services", "service_ips")
    patched = memo.patch_step("services", (objs,), None, lambda changed, old, out: _patched(changed[0], old[0], out, objs, config, memo), tables)
    if patched is not None:
        return patched
    return memo.reuse_step("services", (objs,), None, problems, _allocated, objs, config, memo, tables=tables)


def _patched(changed: list[int], old: Sequence[k8s.Service], out: list[Service], objs: list[k8s.Service], config: Config, memo: Memo) -> list[Service] | None:
    """The previous result with the Services at `changed` replaced, when each asks for what
    the one before it did (the same name, written ClusterIPs, families): then every
    allocation is the same. None when a change could move an address or find a problem."""
    configured = list(by_family(config.service_cidr))
    new = list(out)
    for i in changed:
        before, svc = old[i], objs[i]
        if (svc.namespace, svc.name) != (before.namespace, before.name) or svc.cluster_ips != before.cluster_ips:
            return None
        want, found = _service_wants(svc, configured)
        was, _ = _service_wants(before, configured)
        bad_target: list[Problem] = []
        _check_external_names([svc], bad_target)
        if found or bad_target or (want.explicit, want.families) != (was.explicit, was.families):
            return None
        key = (type(svc), svc.namespace, svc.name)
        memo.wants[key] = (svc, None, (want, found))
        cluster_ips = out[i].cluster_ips
        new[i] = _service(svc, cluster_ips)
        memo.services[key] = (svc, cluster_ips, new[i])
    return new


def _allocated(problems: list[Problem], objs: list[k8s.Service], config: Config, memo: Memo) -> list[Service]:
    networks = by_family(config.service_cidr)
    configured = list(networks)
    _check_explicit_ips(objs, networks, problems)
    _check_external_names(objs, problems)
    wants = []
    for svc in objs:
        want, found = memo.reuse("wants", svc, None, _service_wants, svc, configured)
        wants.append(want)
        problems.extend(found)
    taken = {to_int(ip) for s in objs for ip in s.cluster_ips}
    allocated: dict[tuple[int, ObjectKey], str] = {}
    for family, net in networks.items():
        keys = [(w.obj.namespace, w.obj.name) for w in wants if family in w.families and family not in w.explicit]
        old = memo.old.service_ips.get(family) if memo.old is not None else None
        before = frozenset(taken)
        memo.service_ips[family] = done = memo.allocation(old, keys, before, _allocate_service_ips, keys, net, taken)
        if done is old:  # `taken` gets what _allocate_service_ips hands out
            taken.update(done[2].values())
        allocated.update({(family, k): to_text(a, family) for k, a in done[2].items()})
    out = []
    for w in wants:
        key = (w.obj.namespace, w.obj.name)
        ips = tuple(w.explicit.get(f) or allocated.get((f, key), "") for f in w.families)
        for ip, family in zip(ips, w.families, strict=True):
            if ip:
                continue
            if family in networks:
                message = f"no free address left in --service-cidr {networks[family]}; use a larger --service-cidr"
                problems.append(problem(w.obj, "warning", message))
            else:
                problems.append(
                    problem(w.obj, "warning", f"asks for IPv{family} but no IPv{family} --service-cidr is configured", "spec.ipFamilies")
                )
        cluster_ips = tuple(ip for ip in ips if ip)
        out.append(memo.reuse("services", w.obj, cluster_ips, _service, w.obj, cluster_ips))
    return out


def _service_wants(svc: k8s.Service, configured: Sequence[int]) -> tuple[_ServiceIPs, tuple[Problem, ...]]:
    """What a Service asks for (explicit addresses, families to allocate), and the problems with that."""
    found: list[Problem] = []
    families: tuple[int, ...] = ()
    if svc.type != "ExternalName" and not svc.headless:
        families = tuple(_wanted_families(svc, configured, found))
        families = _FAMILY_TUPLES.get(families, families)
    explicit = {ip_family(ip): ip for ip in svc.cluster_ips} if svc.cluster_ips else _NO_ADDRESSES
    return _ServiceIPs(svc, explicit, families), tuple(found)


def _allocate_service_ips(keys: list[ObjectKey], net: Network, taken: set[int]) -> dict[ObjectKey, int]:
    base = int(net.network_address)
    result: dict[ObjectKey, int] = {}
    for key, offset in WELL_KNOWN_OFFSETS.items():
        if key in keys and base + offset not in taken and offset < net.num_addresses - 1:
            result[key] = base + offset
            taken.add(base + offset)
    reserved = {base + o for o in RESERVED_OFFSETS} - taken
    taken |= reserved
    rest = [k for k in keys if k not in result]
    result.update((key, address) for key, address in zip(rest, allocate(rest, _service_bands(net), taken), strict=True) if address is not None)
    taken -= reserved
    return result


def _service(obj: k8s.Service, cluster_ips: tuple[str, ...]) -> Service:
    o = obj
    return service_of(o.namespace, o.name, o.type, cluster_ips, o.headless, o.external_name, o.ports, o.selector, o.publish_not_ready, (), "", o.source,
                   o.external_addresses)


# A Service as derive/ makes it, from every field in order (service_ips.py, endpoints.py).
service_of = maker(
    Service,
    "namespace", "name", "type", "cluster_ips", "headless", "external_name", "ports", "selector", "publish_not_ready",
    "endpoints", "endpoints_source", "source", "external_addresses",
)  # fmt: skip
