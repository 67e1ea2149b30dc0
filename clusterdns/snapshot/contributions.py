"""What one Service puts in the snapshot: the CoreDNS service entries under its names, its PTRs,
its ExternalName CNAME, and the rows its zone transfer lists; names that cannot go on the wire
are left out (RFC 1035 2.3.4)."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from clusterdns.codes import CNAME
from clusterdns.config.settings import Config
from clusterdns.derive.problems import problem
from clusterdns.errors import Problem, shown
from clusterdns.frozen import maker
from clusterdns.model import Service
from clusterdns.names import MAX_LABEL, MAX_NAME, SVC, endpoint_name, external_target, octets, port_labels, service_name, split, unfit
from clusterdns.records import RR, Name
from clusterdns.snapshot.table import ADDRESS, NO_PORT, Backend, Entries, TransferRows, as_entries, backends, transfer_rows


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one Service adds to the snapshot. Names are all below the Service's own name,
    so contributions of different Services never share an entry name."""

    entries: dict[str, Entries]
    # PTR sources, entries the Service has anyway: a PTR's owner is the reverse of the entry's
    # host and its target the entry's target, both made on the first PTR question
    # (Snapshot.ptr_targets), not kept per endpoint at the envelope's 150,000 endpoints.
    cluster_ptr: tuple[Backend, ...] = ()  # one per ClusterIP, its target the Service name
    endpoint_ptr: tuple[Backend, ...] = ()  # one per ready endpoint address, its target the endpoint name
    static: tuple[tuple[tuple[str, int], tuple[RR, ...]], ...] = ()
    externals: tuple[tuple[str, str], ...] = ()
    problems: tuple[Problem, ...] = ()  # names that cannot go on the wire, left out
    # What a zone transfer lists for the Service, in CoreDNS's xfr.go order (snapshot/xfr.py);
    # its weights are per EndpointSlice, unlike a query's (per answer). The CNAME is in `static`.
    transfer: TransferRows = ()


def contributed_under(config: Config) -> tuple[Any, ...]:
    """The settings contribution() reads: a reload that changes one of them cannot reuse the
    previous snapshot's contributions, even for a Service that stayed the same."""
    return (config.cluster_domain, config.ttl, config.noendpoints, config.ignore_empty_service, config.endpoint_pod_names,
            tuple(config.forward_zones), config.nameserver_ips)  # the last: which endpoints are the server's (build._own)


def contribution(svc: Service, config: Config) -> Contribution:
    """The CoreDNS 'service entries' one Service puts under its names (C5-C10, S3-S19), and
    the rows its zone transfer lists, made in the same pass."""
    sname = service_name(svc.name, svc.namespace)
    labels = split(sname)
    if svc.type == "ExternalName":
        return _external(sname, svc, config.ttl, config.forward_zones)
    groups = [(g, [a for a in g.addresses if a.ready]) for g in svc.endpoints] if not config.noendpoints else []
    # `ignore empty_service`: a ClusterIP Service with no ready endpoint is not served at
    # all (coredns/coredns#1809); headless and ExternalName Services are exempt. Its zone
    # transfer rows stay: CoreDNS's xfr.go does not look at the option.
    served = svc.headless or not config.ignore_empty_service or any(ready for _, ready in groups)
    entries: dict[str, list[Backend]] = defaultdict(list)
    transfer: list[Any] = []  # flat (owner, entry, weight) rows: see TransferRows
    endpoint_ptr: list[Backend] = []
    # A transfer lists the endpoints of a Service without ClusterIPs only (xfr.go): per ready
    # address its A/AAAA at the Service and endpoint names and its named-port SRVs, weighed
    # per EndpointSlice: 100 / the slice's ready addresses.
    listed = not svc.cluster_ips
    named = svc.headless or listed  # the named ports' owners are needed
    service = Name(labels)
    for group, ready in groups:
        ports = group.ports or (None,)
        if len(ports) == 1 and not named:
            # The common case (a ClusterIP Service's endpoints, one port): the loop below less
            # what it does for headless Services and transfers (150,000 endpoints: 0.25 -> 0.2 s).
            number, pod_names = ports[0].port if ports[0] else NO_PORT, config.endpoint_pod_names
            for addr in ready:
                epname = f"{endpoint_name(addr, pod_names)}.{sname}"
                entry = _backend(addr.ip, number, service, epname)
                entries[epname].append(entry)
                endpoint_ptr.append(entry)
            continue
        owners = [_port_owner(p.name, p.protocol, sname) if p and p.name else "" for p in ports] if named else repeat("")
        weight = max(1, 100 // len(ready)) if ready else 0
        for addr in ready:
            epname = f"{endpoint_name(addr, config.endpoint_pod_names)}.{sname}"
            at = len(transfer)
            for port, owner in zip(ports, owners):
                entry = _backend(addr.ip, port.port if port else NO_PORT, service, epname)
                # Endpoint names exist below every Service, ClusterIP ones too (C7).
                entries[epname].append(entry)
                if svc.headless:
                    # Headless: the Service name holds every ready endpoint (S11, S15).
                    entries[sname].append(entry)
                    if owner:
                        entries[owner].append(entry)
                if listed and owner and entry.port != NO_PORT:
                    transfer += (owner, entry, weight)
            if listed:
                transfer[at:at] = (sname, entry, ADDRESS, epname, entry, ADDRESS)  # before the address's SRVs
            endpoint_ptr.append(entry)
    cluster_ptr: list[Backend] = []
    if svc.cluster_ips:
        # One entry per (port, ClusterIP): A/AAAA/SRV depend on the Service alone (S3-S5, S10).
        # The transfer: every ClusterIP's address, and one SRV per port of weight 100 at the
        # Service name and at a named port's name (xfr.go).
        addresses = [Backend(ip, NO_PORT, service) for ip in svc.cluster_ips]
        for address in addresses:
            transfer += (sname, address, ADDRESS)
        # A Service without ports (which the API server refuses) has CoreDNS's sentinel port -1
        # (object/service.go ToService): its A/AAAA answer, no SRV does (backend_lookup.go SRV).
        # Its transfer lists no SRV either (xfr.go would send port -1 as 65535).
        for port in svc.ports or (None,):
            owner = _port_owner(port.name, port.protocol, sname) if port and port.name else ""
            for ip in svc.cluster_ips:
                entry = Backend(ip, port.port if port else NO_PORT, service)
                if served:
                    entries[sname].append(entry)
                    if owner:
                        entries[owner].append(entry)
            if port:
                transfer += (sname, entry, 100)  # the port's last entry: an SRV reads its port and target
            if owner:
                transfer += (owner, entry, 100)
        # The PTRs stay even when `ignore empty_service` leaves the Service unserved: CoreDNS's
        # reverse lookup (reverse.go serviceRecordForIP) never looks at that option.
        cluster_ptr = addresses
    found: dict[str, Entries] = {name: as_entries(e) for name, e in entries.items()}
    zones = config.forward_zones
    listing = _fitting(transfer, zones)
    unfit_names = _unfit_names(found, zones)
    if unfit_names:
        return _without(svc, found, tuple(cluster_ptr), tuple(endpoint_ptr), unfit_names, listing)
    return Contribution(found, tuple(cluster_ptr), tuple(endpoint_ptr), transfer=listing)


_backend = maker(Backend, "host", "port", "base", "endpoint")  # one per endpoint: 150,000 at the envelope


@functools.lru_cache(maxsize=8)
def zone_room(zones: tuple[str, ...]) -> int:
    """Octets the longest of `zones` adds to a relative name: a name must fit below every
    zone it is served in, so it is checked against the longest."""
    return max(octets(split(z)) for z in zones)


def _unfit_names(entries: dict[str, Any], zones: tuple[str, ...]) -> dict[str, str]:
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


def _fitting(rows: list[Any], zones: tuple[str, ...]) -> TransferRows:
    """The transfer rows whose owner (and SRV target) can be encoded. Every SRV target is
    the owner of an address row of the same Service, so checking the owners is enough."""
    owners = rows[::3]
    longest = max(map(len, owners), default=0)
    if longest <= MAX_LABEL and longest + zone_room(zones) + 2 <= MAX_NAME:
        return tuple(rows)  # the cheap check of _unfit_names, for every name at once
    unfit_owners = _unfit_names(dict.fromkeys(owners), zones)
    return tuple(
        field
        for owner, entry, weight in transfer_rows(rows)
        if owner not in unfit_owners and (weight == ADDRESS or ".".join(entry.target.labels) not in unfit_owners)
        for field in (owner, entry, weight)
    )


def _without(svc: Service, entries: dict[str, Entries], cluster_ptr: tuple[Backend, ...], endpoint_ptr: tuple[Backend, ...],
             unfit_names: dict[str, str], transfer: TransferRows) -> Contribution:
    """The contribution less every record owned by, or pointing at, a name that cannot be
    encoded; each such name is reported once, naming the Service and where it was read."""
    def fits(target: Name) -> bool:
        return ".".join(target.labels) not in unfit_names

    # An entry whose target cannot be encoded keeps its address record but loses its SRV
    # (NO_PORT): the address at a name that fits is still a valid answer.
    kept: dict[str, Entries] = {
        name: as_entries([e if fits(e.target) else Backend(e.host, NO_PORT, e.base, e.endpoint) for e in backends(found)])
        for name, found in entries.items()
        if name not in unfit_names
    }
    problems = _unfit_problems(svc, unfit_names)
    if f"{svc.name}.{svc.namespace}.{SVC}" in unfit_names:
        cluster_ptr = ()
    endpoint_ptr = tuple(e for e in endpoint_ptr if fits(e.target))
    return Contribution(kept, cluster_ptr, endpoint_ptr, problems=problems, transfer=transfer)


def _unfit_problems(svc: Service, unfit_names: dict[str, str]) -> tuple[Problem, ...]:
    """One warning per name that cannot be encoded, naming the Service and where it was read."""
    return tuple(problem(svc, "warning", f"{name}.<zone>: {reason}: its records are not served") for name, reason in unfit_names.items())


def _external(sname: str, svc: Service, ttl: int, zones: tuple[str, ...]) -> Contribution:
    target = external_target(svc.external_name)
    if not target:
        return Contribution({})
    unfit_names = _unfit_names({sname: None}, zones)
    if unfit_names:
        # Its CNAME could not be encoded in a zone transfer (RFC 1035 2.3.4): left out, as
        # every other record of a name that cannot go on the wire.
        return Contribution({}, problems=_unfit_problems(svc, unfit_names))
    why = unfit(split(target), 0)
    if why:  # the API takes a label over 63 octets in externalName (IsDNS1123Subdomain counts only the 253)
        return Contribution({}, problems=(problem(svc, "warning", f"externalName {shown(target)}: {why}: its CNAME is not served", "spec.externalName"),))
    cname = (RR(None, CNAME, ttl, Name(split(target), in_zone=False)),)
    return Contribution({}, static=(((sname, CNAME), cname),), externals=((sname, target),))


def _port_owner(port_name: str, protocol: str, sname: str) -> str:
    """`_<port>._<proto>.<svc>...`: the canonical spelling; the resolver maps the
    underscore-less forms CoreDNS also accepts onto it (C5)."""
    return ".".join(port_labels(port_name, protocol)) + "." + sname
