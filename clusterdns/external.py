"""k8s_external: `<svc>.<ns>.<zone>` answered with a Service's external addresses (CoreDNS plugin/k8s_external).

Pure, as resolver.py: answer(snapshot, options, question) -> Answer, or None when the name is in
none of k8s_external's zones (the next source answers). Citations are CoreDNS files: external.go
(ServeDNS), apex.go, msg_to_dns.go in plugin/k8s_external, and plugin/kubernetes/external.go
(External, which turns a name into "services"). An LB ingress hostname needs the server to look
that name up through its own chain (CoreDNS pkg/upstream); that is handed back as Lookups.
"""

# Longer than 300 lines: the whole k8s_external answer path (ServeDNS, apex.go, kubernetes External, msg_to_dns.go) as one pure module beside resolver.py.

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from clusterdns.codes import AAAA, CNAME, NOERROR, NS, NXDOMAIN, PTR, SERVFAIL, SOA, SRV, A
from clusterdns.config.settings import Config
from clusterdns.model import Service, ServicePort
from clusterdns.names import address_from_reverse, endpoint_name, split, under, zone_labels
from clusterdns.records import RR, Name, SOAData
from clusterdns.resolver import Answer
from clusterdns.snapshot.external_addresses import host_kind
from clusterdns.snapshot.table import NO_PORT, Snapshot

Labels = tuple[str, ...]
ANSWER, ADDITIONAL = 0, 2  # the sections a Lookup's records go to
NO_PORTS = (ServicePort("", "", NO_PORT),)  # CoreDNS's sentinel for a Service or endpoint without ports (object/service.go)
_KEY = attrgetter("key")


@dataclass(frozen=True)
class ExternalOptions:
    """The `k8s_external ZONES { apex, ttl, headless, fallthrough }` block (setup.go), and what it
    borrows from the `kubernetes` plugin."""

    zones: tuple[Labels, ...]  # lower-case labels, in config order: zones[0] names the PTR targets
    apex: str = "dns"  # ns1.<apex>.<zone> is the nameserver, hostmaster.<apex>.<zone> the SOA mailbox
    ttl: int = 5  # A, AAAA, PTR, SOA, NS and the SRV targets' addresses
    headless: bool = False  # headless Services (and endpoint names) answer with their endpoints
    fallthrough: tuple[Labels, ...] = ()  # NXDOMAIN under these goes on; () the root, every name
    kubernetes_ttl: int | None = None  # SRV and CNAME records (CoreDNS's s.TTL); None: the snapshot's --ttl
    namespaces: tuple[str, ...] | None = None  # kubernetes `namespaces`; None: the snapshot's; (): every one

    @classmethod
    def of(cls, config: Config) -> ExternalOptions:
        """The options the settings give (--external-zone, --external-apex, ...)."""
        return cls(zone_labels(config.external_zones), config.external_apex, config.external_ttl, config.external_headless,
                   zone_labels(config.external_fallthrough))


@dataclass(frozen=True, slots=True)
class Lookup:
    """Network work for the caller: look `name` (absolute, no trailing dot) up for `qtype` through
    the server's own answer chain from its first source, as CoreDNS's pkg/upstream re-enters its
    plugin chain, and put the reply's Answer records into `section` (ANSWER or ADDITIONAL) after
    the first `position` records this answer holds there (Lookups at one position keep their
    order). A failed lookup adds nothing. `copy_tc`: set TC on our reply when that reply had it."""

    name: str
    qtype: int
    section: int
    position: int
    copy_tc: bool


@dataclass(frozen=True, slots=True)
class ExternalAnswer(Answer):
    """An Answer that needs Lookups before it is complete: never a fixed function of the
    snapshot, so it must not be cached as one (as `Answer.chase`)."""

    lookups: tuple[Lookup, ...] = ()


class _Hit(NamedTuple):
    """What CoreDNS calls a msg.Service: an address (or hostname) and port, and the name that
    msg.Domain(Key) makes of its key (the SRV target of an address)."""

    host: str
    port: int
    target: Labels


def answer(snap: Snapshot, options: ExternalOptions, labels: Labels, qtype: int) -> Answer | None:
    """k8s_external's answer to a question (lower-cased labels, class IN), or None when no zone
    of k8s_external holds the name. AA is always set (external.go)."""
    zone = _longest(options.zones, labels)
    if zone is None:
        return None
    apex = tuple(label.lower() for label in split(options.apex))
    # Every configured zone is tried, not only the one that matched (external.go ServeDNS).
    for z in options.zones:
        if labels == z:
            return _apex(snap, options, zone, qtype)
        if under(labels, (apex + z,)):
            return _sub_apex(snap, options, zone, labels, qtype)
    hits, rcode = _services(snap, options, zone, labels, qtype)
    if not hits:
        # Only NXDOMAIN falls through; NODATA never does (external.go).
        through = rcode == NXDOMAIN and under(labels, options.fallthrough)
        return Answer(rcode, authority=(_soa(snap, options, zone),), zone_labels=len(zone), fallthrough=through)
    return _records(snap, options, zone, hits, qtype)


def _longest(zones: tuple[Labels, ...], labels: Labels) -> Labels | None:
    """plugin.Zones.Matches: the longest zone the name is in."""
    best = None
    for zone in zones:
        if under(labels, (zone,)) and (best is None or len(zone) > len(best)):
            best = zone
    return best


# --- apex.go ---------------------------------------------------------------------------------


def _soa(snap: Snapshot, options: ExternalOptions, zone: Labels) -> RR:
    """`<zone> SOA ns1.<apex>.<zone> hostmaster.<apex>.<zone> serial 7200 1800 86400 ttl`, TTL
    the k8s_external ttl, names from the configured zone (apex.go soa; the README's values differ)."""
    apex = split(options.apex)
    mname, rname = Name(("ns1",) + apex + zone, in_zone=False), Name(("hostmaster",) + apex + zone, in_zone=False)
    data = SOAData(mname, rname, snap.serial, 7200, 1800, 86400, options.ttl)
    return RR(Name(zone, in_zone=False), SOA, options.ttl, data)


def _nodata(snap: Snapshot, options: ExternalOptions, zone: Labels, rcode: int = NOERROR) -> Answer:
    return Answer(rcode, authority=(_soa(snap, options, zone),), zone_labels=len(zone))


def _ns1(snap: Snapshot, options: ExternalOptions, owner: Name | None) -> list[RR]:
    """ns1's address records (CoreDNS ExternalAddress: the external addresses of the Service
    whose endpoint is this server), with the k8s_external ttl."""
    index = snap.external_addresses
    out = []
    for ip in index.ns1_headless if options.headless else index.ns1:
        rtype, packed = host_kind(ip)
        out.append(RR(owner, rtype, options.ttl, packed))
    return out


def _apex(snap: Snapshot, options: ExternalOptions, zone: Labels, qtype: int) -> Answer:
    """serveApex: SOA; NS `ns1.<apex>.<zone>` with ns1's addresses, named below the question's
    own spelling of the zone; NODATA for anything else (an A at the apex included)."""
    if qtype == SOA:
        return Answer(NOERROR, (_soa(snap, options, zone),), zone_labels=len(zone))
    if qtype == NS:
        ns = RR(Name(zone, in_zone=False), NS, options.ttl, Name(("ns1",) + split(options.apex) + zone, in_zone=False))
        glue = tuple(_ns1(snap, options, Name(("ns1",) + split(options.apex))))
        return Answer(NOERROR, (ns,), additional=glue, zone_labels=len(zone))
    return _nodata(snap, options, zone)


def _sub_apex(snap: Snapshot, options: ExternalOptions, zone: Labels, labels: Labels, qtype: int) -> Answer:
    """serveSubApex, by the number of labels below the matched zone: `dns` (one) is an empty
    non-terminal (NODATA); `ns1.dns` answers A/AAAA with ns1's addresses; any other name of two
    labels, and every longer one, is NXDOMAIN. None of these falls through."""
    below = len(labels) - len(zone)
    if below == 1:
        return _nodata(snap, options, zone)
    if below != 2 or labels[0] != "ns1":
        return _nodata(snap, options, zone, NXDOMAIN)
    rrs = tuple(rr for rr in _ns1(snap, options, None) if rr.rtype == qtype) if qtype in (A, AAAA) else ()
    if not rrs:
        return _nodata(snap, options, zone)
    return Answer(NOERROR, rrs, zone_labels=len(zone))


# --- plugin/kubernetes/external.go External ----------------------------------------------------


def _services(snap: Snapshot, options: ExternalOptions, zone: Labels, labels: Labels, qtype: int) -> tuple[list[_Hit], int]:
    """The name as CoreDNS's External reads it: a reverse name for PTR, else
    `[endpoint.|port.proto.]service.namespace` below the zone. (hits, rcode)."""
    if qtype == PTR:
        ip = address_from_reverse(labels)
        if ip:
            keys = snap.external_addresses.by_address.get(ip, ())
            hits = [_Hit(f"{name}.{ns}", NO_PORT, (name, ns)) for ns, name in keys if _exposed(snap, options, ns)]
            return hits, NOERROR if hits else NXDOMAIN
    rel = labels[: len(labels) - len(zone)]
    if not rel:
        return [], SERVFAIL
    namespace = rel[-1]
    if not _exposed(snap, options, namespace):
        return [], NXDOMAIN
    if len(rel) == 1:
        return [], NOERROR  # `<ns>.<zone>`: NODATA
    if len(rel) > 4:
        return [], NXDOMAIN  # too long
    # No wildcards here: `*` and `any` are literal labels (unlike the kubernetes plugin).
    endpoint = _strip(rel[0]) if len(rel) == 3 else ""
    port, protocol = (_strip(rel[0]), _strip(rel[1])) if len(rel) == 4 else ("", "")
    hits = _hits(snap, options, zone, (namespace, rel[-2]), endpoint, port, protocol)
    # A PTR question for a name that is not a reverse address: NODATA or NXDOMAIN, never records.
    return ([] if qtype == PTR else hits), NOERROR if hits else NXDOMAIN


def _hits(snap: Snapshot, options: ExternalOptions, zone: Labels, key: tuple[str, str], endpoint: str, port: str, protocol: str) -> list[_Hit]:
    """One entry per (address, matching port). A Service with external addresses serves them,
    whatever the endpoint label says; under `headless`, a Service without any that is headless,
    or asked for by endpoint name, serves its ready endpoints; anything else has nothing."""
    svc = snap.external_addresses.by_name.get(key)
    if svc is not None:
        target = (svc.name, svc.namespace) + zone
        ports = [p.port for p in svc.ports or NO_PORTS if _match(port, p.name, protocol, p.protocol)]
        return [_Hit(host, p, target) for host in svc.external_addresses for p in ports]
    if not options.headless or snap.noendpoints:
        return []
    svc = _service(snap, key)
    if svc is None or not (svc.headless or endpoint):
        return []
    return _endpoint_hits(snap, svc, zone, endpoint, port, protocol)


def _endpoint_hits(snap: Snapshot, svc: Service, zone: Labels, endpoint: str, port: str, protocol: str) -> list[_Hit]:
    """Ready endpoint addresses (matching the endpoint label when one is given) and their
    ports, each named `<endpoint hostname>.<svc>.<ns>.<zone>` for SRV (External's headless branch)."""
    out = []
    for group in svc.endpoints:
        ports = [p.port for p in group.ports or NO_PORTS if _match(port, p.name, protocol, p.protocol)]
        for a in group.addresses:
            if not a.ready or not ports:
                continue
            name = endpoint_name(a, snap.endpoint_pod_names)
            if endpoint and endpoint != name:
                continue
            target = (name, svc.name, svc.namespace) + zone
            out.extend(_Hit(a.ip, p, target) for p in ports)
    return out


def _service(snap: Snapshot, key: tuple[str, str]) -> Service | None:
    """A Service of any namespace (the ClusterState holds them sorted by key)."""
    services = snap.state.services
    i = bisect_left(services, key, key=_KEY)
    return services[i] if i < len(services) and services[i].key == key else None


def _exposed(snap: Snapshot, options: ExternalOptions, namespace: str) -> bool:
    """namespaceExposed: in the `namespaces` list when there is one, and existing."""
    if options.namespaces is None:
        return namespace in snap.namespaces
    return namespace in snap.state.namespaces and (not options.namespaces or namespace in options.namespaces)


def _match(want_port: str, port: str, want_protocol: str, protocol: str) -> bool:
    """matchPortAndProtocol: an empty wanted value matches anything; otherwise case-insensitive equality."""
    return (not want_port or want_port == port.lower()) and (not want_protocol or want_protocol == protocol.lower())


def _strip(label: str) -> str:
    return label[1:] if label.startswith("_") else label


# --- msg_to_dns.go -----------------------------------------------------------------------------


def _records(snap: Snapshot, options: ExternalOptions, zone: Labels, hits: list[_Hit], qtype: int) -> Answer:
    """The records of the found entries by question type; NODATA when there are none of it."""
    kttl = snap.ttl if options.kubernetes_ttl is None else options.kubernetes_ttl
    extra: tuple[RR, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    if qtype in (A, AAAA):
        rrs, lookups = _addresses(hits, qtype, options.ttl, kttl)
    elif qtype == SRV:
        rrs, extra, lookups = _srv(hits, options.ttl, kttl)
    elif qtype == PTR:
        first = options.zones[0]  # the first configured zone, not the matched one
        rrs = tuple(RR(None, PTR, options.ttl, Name(target + first, in_zone=False)) for target in dict.fromkeys(h.target for h in hits))
    else:
        rrs = ()
    authority = () if rrs else (_soa(snap, options, zone),)
    if lookups:
        return ExternalAnswer(NOERROR, rrs, authority, extra, len(zone), lookups=lookups)
    return Answer(NOERROR, rrs, authority, extra, len(zone))


def _addresses(hits: list[_Hit], qtype: int, ttl: int, kttl: int) -> tuple[tuple[RR, ...], tuple[Lookup, ...]]:
    """A/AAAA: one record per distinct address of the asked family (TTL the k8s_external ttl);
    a hostname gives a CNAME (the kubernetes ttl, repeated per port: not deduplicated) followed
    by what the server's chain says about that name (msg_to_dns.go a, aaaa)."""
    out: list[RR] = []
    lookups = []
    seen = set()
    for host, _, _ in hits:
        rtype, packed = host_kind(host)
        if rtype == CNAME:
            out.append(RR(None, CNAME, kttl, Name(split(host), in_zone=False)))
            lookups.append(Lookup(host, qtype, ANSWER, len(out), True))
        elif rtype == qtype and host not in seen:
            seen.add(host)
            out.append(RR(None, rtype, ttl, packed))
    return tuple(out), tuple(lookups)


def _srv(hits: list[_Hit], ttl: int, kttl: int) -> tuple[tuple[RR, ...], tuple[RR, ...], tuple[Lookup, ...]]:
    """SRV per (target, port), TTL the kubernetes ttl; the targets' addresses in Additional with
    the k8s_external ttl, or for a hostname target what the chain says about it, A then AAAA.

    Weight: 100 / (100 per entry), times 100, floored, at least 1, counted over every entry,
    those later dropped as duplicates or for having no port included (msg_to_dns.go srv).
    """
    weight = max(1, math.floor(100.0 / (100 * len(hits)) * 100))
    srv: dict[tuple[Name, int], RR] = {}
    extra: list[RR] = []
    lookups: list[Lookup] = []
    seen: set[tuple[Name, str]] = set()
    for host, port, labels in hits:
        if port == NO_PORT:
            continue
        rtype, packed = host_kind(host)
        target = Name(split(host) if rtype == CNAME else labels, in_zone=False)
        if (target, port) not in srv:
            srv[(target, port)] = RR(None, SRV, kttl, (0, weight, port, target))
        if (target, host) in seen:
            continue
        seen.add((target, host))
        if rtype == CNAME:
            lookups += [Lookup(host, A, ADDITIONAL, len(extra), False), Lookup(host, AAAA, ADDITIONAL, len(extra), False)]
        else:
            extra.append(RR(target, rtype, ttl, packed))
    return tuple(srv.values()), tuple(extra), tuple(lookups)
