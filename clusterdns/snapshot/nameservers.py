"""The zone's nameservers as CoreDNS computes them (plugin/kubernetes/ns.go): NS records, their
addresses for the Additional section, and what `ns.dns.<zone>` answers."""

from __future__ import annotations

from clusterdns.codes import NS
from clusterdns.config.settings import Config
from clusterdns.model import ClusterState, EndpointGroup, Service
from clusterdns.names import NS_NAME, endpoint_name, service_name, split, unfit
from clusterdns.records import RR, Name, address_rr
from clusterdns.snapshot.contributions import zone_room


def own_endpoints(state: ClusterState, config: Config) -> tuple[tuple[Service, EndpointGroup], ...]:
    """The endpoint groups (CoreDNS: Endpoints objects) that hold a ready address of this server,
    with their Service: CoreDNS's EpIndexReverse over its local IPs (plugin/kubernetes/ns.go
    nsAddrs). The server's addresses are --ns-address, else the listen address. Without
    endpoints (--noendpoints) there are none."""
    local = frozenset(config.nameserver_ips)
    return tuple((svc, group) for svc in (state.services if not config.noendpoints else ()) for group in own_groups(svc, local))


def own_groups(svc: Service, local: frozenset[str]) -> list[EndpointGroup]:
    """The endpoint groups of `svc` that hold a ready address among `local`."""
    return [group for group in svc.endpoints if not local.isdisjoint([a.ip for a in group.addresses if a.ready])]


def nameservers(state: ClusterState, config: Config, own: tuple[tuple[Service, EndpointGroup], ...] | None = None) -> tuple[tuple[Name, str], ...]:
    """(NS name, address) pairs, as CoreDNS's nsAddrs (plugin/kubernetes/ns.go, C11).

    The server's own addresses are looked up among ready endpoint addresses (own_endpoints;
    `own` when the caller found them already). Every Service with such an endpoint gives its
    name and ClusterIPs; a headless one gives `<endpoint>.<svc>.<ns>.svc` and the address of
    every endpoint of the matching slice. Only when no endpoint matches is the name `ns.dns`,
    with the addresses themselves. Names are relative to the zone asked about, as CoreDNS
    builds them from state.Zone. A name that cannot be encoded (RFC 1035 2.3.4) is left out,
    as its records are.
    """
    room = zone_room(config.zones)  # NS names are written below the reverse zones too
    pairs: dict[tuple[Name, str], None] = {}
    for svc, group in own_endpoints(state, config) if own is None else own:
        labels = split(service_name(svc.name, svc.namespace))
        if svc.headless:
            for a in group.addresses:
                if a.ready:
                    pairs[(Name((endpoint_name(a, config.endpoint_pod_names),) + labels), a.ip)] = None
        else:
            pairs.update(((Name(labels), ip), None) for ip in svc.cluster_ips)
    fitting = tuple(pair for pair in pairs if not unfit(pair[0].labels, room))
    return fitting or tuple((Name(split(NS_NAME)), ip) for ip in config.nameserver_ips)


def nameserver_records(
    state: ClusterState, config: Config, ttl: int, own: tuple[tuple[Service, EndpointGroup], ...] | None = None
) -> tuple[tuple[RR, ...], tuple[RR, ...], dict[int, tuple[RR, ...]]]:
    """(NS at the apex, their addresses for the Additional section, the A and AAAA records of
    `ns.dns.<zone>`: every address of every NS name, by type) (CoreDNS Records, isDefaultNS)."""
    pairs = nameservers(state, config, own)
    glue = tuple(address_rr(name, ip, ttl) for name, ip in pairs)
    by_type: dict[int, tuple[RR, ...]] = {}
    for _, ip in pairs:
        rr = address_rr(None, ip, ttl)
        if rr not in by_type.get(rr.rtype, ()):
            by_type[rr.rtype] = by_type.get(rr.rtype, ()) + (rr,)
    names = dict.fromkeys(name for name, _ in pairs)
    return tuple(RR(None, NS, ttl, name) for name in names), glue, by_type
