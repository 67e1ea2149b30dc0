"""What one Service puts in the snapshot: the CoreDNS service entries under its names, its PTRs,
and its ExternalName CNAME; names that cannot go on the wire are left out (RFC 1035 2.3.4)."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

from clusterdns.codes import CNAME
from clusterdns.config.settings import Config
from clusterdns.errors import Problem
from clusterdns.model import Service
from clusterdns.names import MAX_LABEL, MAX_NAME, SVC, endpoint_name, external_target, octets, port_labels, reverse_owner, service_name, split, unfit
from clusterdns.records import RR, Name
from clusterdns.snapshot.table import NO_PORT, Backend


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one Service adds to the snapshot. Names are all below the Service's own name,
    so contributions of different Services never share an entry name."""

    entries: dict[str, tuple[Backend, ...]]
    cluster_ptr: tuple[tuple[str, Name], ...] = ()  # ClusterIP reverse owner -> Service name
    endpoint_ptr: tuple[tuple[str, Name], ...] = ()  # endpoint reverse owner -> endpoint name
    static: tuple[tuple[tuple[str, int], tuple[RR, ...]], ...] = ()
    externals: tuple[tuple[str, str], ...] = ()
    problems: tuple[Problem, ...] = ()  # names that cannot go on the wire, left out


def contribution(svc: Service, config: Config) -> Contribution:
    """The CoreDNS 'service entries' one Service puts under its names (C5-C10, S3-S19)."""
    sname = service_name(svc.name, svc.namespace)
    labels = split(sname)
    domain = split(config.cluster_domain)
    if svc.type == "ExternalName":
        return _external(sname, svc, config.ttl)
    ready = [(g, a) for g in svc.endpoints for a in g.addresses if a.ready] if not config.noendpoints else []
    # `ignore empty_service`: a ClusterIP Service with no ready endpoint is not served at
    # all (coredns/coredns#1809); headless and ExternalName Services are exempt.
    if config.ignore_empty_service and not svc.headless and not ready:
        return Contribution({})
    entries: dict[str, list[Backend]] = defaultdict(list)
    endpoint_ptr = []
    for group, addr in ready:
        ep = endpoint_name(addr, config.endpoint_pod_names)
        target = Name((ep,) + labels)
        epname = f"{ep}.{sname}"
        for port in group.ports or (None,):
            entry = Backend(addr.ip, port.port if port else NO_PORT, target)
            # Endpoint names exist below every Service, ClusterIP ones too (C7).
            entries[epname].append(entry)
            if svc.headless:
                # Headless: the Service name holds every ready endpoint (S11, S15).
                entries[sname].append(entry)
                if port and port.name:
                    entries[_port_owner(port.name, port.protocol, sname)].append(entry)
        endpoint_ptr.append((reverse_owner(addr.ip), Name(target.labels + domain, in_zone=False)))
    cluster_ptr = []
    if not svc.headless:
        # One entry per (port, ClusterIP): A/AAAA/SRV depend on the Service alone (S3-S5, S10).
        target = Name(labels)
        for port in svc.ports:
            for ip in svc.cluster_ips:
                entry = Backend(ip, port.port, target)
                entries[sname].append(entry)
                if port.name:
                    entries[_port_owner(port.name, port.protocol, sname)].append(entry)
        cluster_ptr = [(reverse_owner(ip), Name(labels + domain, in_zone=False)) for ip in svc.cluster_ips]
    found = {n: tuple(e) for n, e in entries.items()}
    unfit_names = _unfit_names(found, config.forward_zones)
    if unfit_names:
        return _without(svc, found, tuple(cluster_ptr), tuple(endpoint_ptr), unfit_names, len(domain))
    return Contribution(found, tuple(cluster_ptr), tuple(endpoint_ptr))


@functools.lru_cache(maxsize=8)
def zone_room(zones: tuple[str, ...]) -> int:
    """Octets the longest of `zones` adds to a relative name: a name must fit below every
    zone it is served in, so it is checked against the longest."""
    return max(octets(split(z)) for z in zones)


def _unfit_names(entries: dict[str, tuple[Backend, ...]], zones: tuple[str, ...]) -> dict[str, str]:
    """Owner names that cannot be encoded (RFC 1035 2.3.4), with the reason. A name of at
    most 63 octets has no longer label: only longer ones are split and counted."""
    room = zone_room(zones)
    out = {}
    for name in entries:
        if len(name) > MAX_LABEL or len(name) + room + 2 > MAX_NAME:
            reason = unfit(tuple(name.split(".")), room)
            if reason:
                out[name] = reason
    return out


def _without(svc: Service, entries: dict[str, tuple[Backend, ...]], cluster_ptr: tuple[tuple[str, Name], ...],
             endpoint_ptr: tuple[tuple[str, Name], ...], unfit_names: dict[str, str], domain_labels: int) -> Contribution:
    """The contribution less every record owned by, or pointing at, a name that cannot be
    encoded; each such name is reported once, naming the Service and where it was read."""
    def fits(target: Name) -> bool:
        return ".".join(target.labels) not in unfit_names

    # An entry whose target cannot be encoded keeps its address record but loses its SRV
    # (NO_PORT): the address at a name that fits is still a valid answer.
    kept = {
        name: tuple(e if fits(e.target) else Backend(e.host, NO_PORT, e.target) for e in found)
        for name, found in entries.items()
        if name not in unfit_names
    }
    src = svc.source
    problems = tuple(
        Problem("warning", f"{name}.<zone>: {reason}: its records are not served", src.file, src.doc, src.line, "Service",
                f"{svc.namespace}/{svc.name}")
        for name, reason in unfit_names.items()
    )
    if f"{svc.name}.{svc.namespace}.{SVC}" in unfit_names:
        cluster_ptr = ()
    endpoint_ptr = tuple((owner, n) for owner, n in endpoint_ptr if fits(Name(n.labels[: len(n.labels) - domain_labels])))
    return Contribution(kept, cluster_ptr, endpoint_ptr, problems=problems)


def _external(sname: str, svc: Service, ttl: int) -> Contribution:
    target = external_target(svc.external_name)
    if not target:
        return Contribution({})
    cname = (RR(None, CNAME, ttl, Name(split(target), in_zone=False)),)
    return Contribution({}, static=(((sname, CNAME), cname),), externals=((sname, target),))


def _port_owner(port_name: str, protocol: str, sname: str) -> str:
    """`_<port>._<proto>.<svc>...`: the canonical spelling; the resolver maps the
    underscore-less forms CoreDNS also accepts onto it (C5)."""
    return ".".join(port_labels(port_name, protocol)) + "." + sname
