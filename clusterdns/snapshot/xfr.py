"""The records of a zone transfer, as CoreDNS's `kubernetes` plugin hands them to its `transfer`
plugin (plugin/kubernetes/xfr.go), read from the snapshot.

Between the two SOAs (RFC 5936 2.2): the NS records and their names' addresses (TTL 0, as
xfr.go builds them); then per Service, sorted by name: ClusterIP A/AAAA and one SRV per
port (weight 100) at the Service name and per named port; headless: per endpoint slice and
per ready address the Service and endpoint A/AAAA and the named-port SRVs, weighted 100 /
the slice's addresses; ExternalName: the CNAME. Endpoint names and port labels are the
snapshot's own (names.py), and a record the snapshot left out (a name that cannot be
encoded) is left out here too. Query answers weigh SRV records differently (per answer):
that difference is CoreDNS's.
"""

from __future__ import annotations

from collections.abc import Iterator

from clusterdns.codes import CNAME, SRV
from clusterdns.model import Service
from clusterdns.names import endpoint_name, external_target, octets, port_labels, service_name, split, unfit
from clusterdns.records import RR, Name, address_rr
from clusterdns.snapshot.table import NO_PORT, Snapshot


def zone_records(snap: Snapshot) -> Iterator[RR]:
    """Every record of the transfer between the two SOAs, owners relative to the zone."""
    yield from snap.apex_ns
    for glue in snap.apex_glue:
        # The NS names' addresses, as CoreDNS's xfr.go sends nsAddrs: TTL 0.
        yield RR(glue.owner, glue.rtype, 0, glue.rdata)
    state = snap.state
    room = max(octets(zone) for zone in snap.forward_zones)
    for svc in sorted(state.services, key=lambda s: (s.name, s.namespace)):
        if svc.namespace in snap.namespaces:
            for rr in _service_records(svc, snap.ttl, snap.endpoint_pod_names, snap.noendpoints):
                # What the snapshot left out (a name that cannot be encoded) is left out here too.
                if not unfit(rr.owner.labels, room) and not (rr.rtype == SRV and unfit(rr.rdata[3].labels, room)):  # type: ignore[union-attr]
                    yield rr


def _service_records(svc: Service, ttl: int, endpoint_pod_names: bool, noendpoints: bool) -> Iterator[RR]:
    base = split(service_name(svc.name, svc.namespace))
    owner = Name(base)
    if svc.type == "ExternalName":
        target = external_target(svc.external_name)
        if target:
            yield RR(owner, CNAME, ttl, Name(split(target), in_zone=False))
        return
    if svc.cluster_ips:
        for ip in svc.cluster_ips:
            yield address_rr(owner, ip, ttl)
        for port in svc.ports:
            yield RR(owner, SRV, ttl, (0, 100, port.port, owner))
            if port.name:  # unnamed ports have no SRV of their own (spec 2.3.2)
                yield RR(Name(port_labels(port.name, port.protocol) + base), SRV, ttl, (0, 100, port.port, owner))
        return
    if noendpoints:
        return
    for group in svc.endpoints:
        ready = [a for a in group.addresses if a.ready]
        weight = max(1, 100 // len(ready)) if ready else 0
        for addr in ready:
            yield address_rr(owner, addr.ip, ttl)
            target = Name((endpoint_name(addr, endpoint_pod_names),) + base)
            yield address_rr(target, addr.ip, ttl)
            for port in group.ports:
                if port.name and port.port != NO_PORT:
                    yield RR(Name(port_labels(port.name, port.protocol) + base), SRV, ttl, (0, weight, port.port, target))
