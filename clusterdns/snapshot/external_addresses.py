"""What k8s_external reads, made once per snapshot: Services with external addresses by name and by address, ns1's addresses."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from clusterdns.codes import AAAA, CNAME, A
from clusterdns.model import ClusterState, EndpointGroup, Service

ServiceKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class ExternalAddresses:
    """The index CoreDNS's kubernetes plugin keeps for k8s_external (plugin/kubernetes/external.go).

    Only Services that have external addresses are in it (most have none: a build over
    10,000 Services looks at one attribute of each). Every namespace is indexed; whether
    one is exposed is decided when asked, as CoreDNS's namespaceExposed does. Headless
    Services need no entry: their endpoints are in the snapshot's ClusterState already.
    """

    by_name: dict[ServiceKey, Service]  # (namespace, name) -> the Service, with its external addresses
    by_address: dict[str, tuple[ServiceKey, ...]]  # IP text -> the Services listing it, in Service order (PTR)
    ns1: tuple[str, ...] = ()  # what ns1.<apex>.<zone> answers (CoreDNS ExternalAddress)
    ns1_headless: tuple[str, ...] = ()  # the same under k8s_external's `headless` option

    def fingerprint(self) -> tuple[object, ...]:
        """What k8s_external answers depend on beyond the rest of the snapshot: a change to it
        is a change (the SOA serial grows). CoreDNS bumps its external serial when a Service's
        ExternalIPs or Ports change (plugin/kubernetes/controller.go serviceModified)."""
        services = tuple((key, svc.external_addresses, svc.ports) for key, svc in self.by_name.items())
        return services, self.ns1, self.ns1_headless


NO_EXTERNAL_ADDRESSES = ExternalAddresses({}, {})


@functools.lru_cache(maxsize=4096)
def host_kind(host: str) -> tuple[int, bytes]:
    """What an external address is, as CoreDNS's msg.Service.HostType decides: (A, 4 octets)
    for IPv4 and for IPv4-mapped IPv6 (Go's To4), (AAAA, 16 octets), or (CNAME, b"") when it
    is not an address (an LB ingress hostname)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return CNAME, b""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return A, ip.ipv4_mapped.packed
    return (A if ip.version == 4 else AAAA), ip.packed


def index(state: ClusterState, own: Sequence[tuple[Service, EndpointGroup]], local_ips: Sequence[str]) -> ExternalAddresses:
    """The index for one ClusterState. `own` is the endpoint groups that hold one of the
    server's addresses, with their Services (snapshot/nameservers.py own_endpoints), and
    `local_ips` those addresses (--ns-address, else the listen addresses)."""
    by_name: dict[ServiceKey, Service] = {}
    by_address: dict[str, list[ServiceKey]] = {}
    for svc in state.services:
        if svc.external_addresses:
            by_name[svc.key] = svc
            for host in svc.external_addresses:
                if host_kind(host)[0] != CNAME:
                    found = by_address.setdefault(host, [])
                    if svc.key not in found:
                        found.append(svc.key)
    frozen = {host: tuple(keys) for host, keys in by_address.items()}
    return ExternalAddresses(by_name, frozen, _ns1(own, local_ips, False), _ns1(own, local_ips, True))


def _ns1(own: Sequence[tuple[Service, EndpointGroup]], local_ips: Sequence[str], headless: bool) -> tuple[str, ...]:
    """ns1's addresses (CoreDNS ns.go nsAddrs with external=true): for each Service with an
    endpoint of ours, its external addresses, or under `headless` for a headless Service the
    ready addresses of that endpoint group; the server's own addresses when no endpoint is
    ours. A Service of ours with no external address gives nothing (NS without glue, ns1
    NODATA). Hostnames are left out: CoreDNS would write them as AAAA records of a nil
    address. Duplicates are written once."""
    if not own:
        return tuple(dict.fromkeys(local_ips))
    found: dict[str, None] = {}
    for svc, group in own:
        if headless and svc.headless:
            found.update((a.ip, None) for a in group.addresses if a.ready)
        else:
            found.update((host, None) for host in svc.external_addresses if host_kind(host)[0] != CNAME)
    return tuple(found)
