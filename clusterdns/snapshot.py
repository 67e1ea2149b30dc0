"""Compile the derived cluster into an immutable, zone-like index of DNS records."""

from __future__ import annotations

import functools
import socket
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clusterdns.codes import AAAA, CNAME, NS, PTR, SOA, SRV, TXT, A
from clusterdns.config.settings import Config
from clusterdns.model import ClusterState, Service
from clusterdns.records import RR, Name, SOAData, address_rr, pack_address
from clusterdns.errors import Problem
from clusterdns.names import MAX_LABEL, MAX_NAME, NS_NAME, SVC, endpoint_name, external_target, octets, service_name, split, unfit

DNS_VERSION_TTL = 28800  # spec S2 example and CoreDNS's fixed value
SCHEMA_VERSION = b"1.1.0"  # kubernetes/dns docs/specification.md schema version
NO_PORT = -1  # CoreDNS's sentinel for an endpoint without ports: A/AAAA yes, SRV no


@dataclass(frozen=True, slots=True)
class Entry:
    """What CoreDNS calls a msg.Service: one address (or target) behind a name."""

    host: str  # IP address text
    port: int  # NO_PORT when the endpoint declares none
    target: Name  # the name SRV records point at for this entry


@dataclass
class Snapshot:
    """Everything the resolver reads, compiled once per manifest change.

    Relative names (below the zone, lower case, dotted) key the data. Every forward
    zone serves the same tree, so one table serves all of them. Records are made from
    the per-name entries when first asked for (`rrset`), so a reload does no work for
    names nobody queries; answers are then cached as wire bytes by the handler.
    """

    forward_zones: tuple[tuple[str, ...], ...]
    reverse_zones: tuple[tuple[str, ...], ...]
    ttl: int
    serial: int
    pods: str
    entries: dict[str, tuple[Entry, ...]]  # CoreDNS service entries per name
    static: dict[tuple[str, int], tuple[RR, ...]]  # dns-version TXT, ns.dns A/AAAA, ExternalName CNAMEs
    exists: frozenset[str]  # names CoreDNS finds (NODATA rather than NXDOMAIN for other types)
    has_data: frozenset[str]  # names that own at least one record (decides TXT NODATA vs NXDOMAIN)
    externals: dict[str, str]  # ExternalName Service name -> target (absolute, no trailing dot)
    namespaces: frozenset[str]  # namespaces that exist and are exposed
    pod_ips: dict[str, frozenset[str]]  # namespace -> Pod IPs (pods verified)
    apex_ns: tuple[RR, ...]
    apex_glue: tuple[RR, ...]
    state: ClusterState | None = None
    problems: tuple[Problem, ...] = ()  # the state's, and records left out when compiling
    cache: dict[Any, Any] = field(default_factory=dict)  # reply bodies by (name, type), dropped with the snapshot
    contributions: dict[tuple[str, str], tuple[Service, Contribution]] = field(default_factory=dict)  # per Service, for the next reload
    _ptr: dict[str, tuple[Name, ...]] | None = None
    udp_wire: dict[bytes, tuple[bytes, Any]] = field(default_factory=dict)  # exact query bytes less the ID -> (reply less the ID, metrics key)
    tcp_wire: dict[bytes, tuple[bytes, Any]] = field(default_factory=dict)

    def soa(self) -> RR:
        """The zone SOA as CoreDNS writes it (C1): TTL min(ttl, 300), minimum = ttl."""
        data = SOAData(Name(("ns", "dns")), Name(("hostmaster",)), self.serial, 7200, 1800, 86400, self.ttl)
        return RR(Name(()), SOA, min(self.ttl, 300), data)

    def rrset(self, name: str, qtype: int) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
        """(answer records, additional records) owned by `name` for `qtype`."""
        static = self.static.get((name, qtype))
        if static:
            return static, ()
        entries = self.entries.get(name)
        if not entries:
            return (), ()
        if qtype in (A, AAAA):
            return _addresses(entries, qtype, self.ttl), ()
        if qtype == SRV:
            return _srv(entries, self.ttl)
        return (), ()

    @property
    def ptr_targets(self) -> dict[str, tuple[Name, ...]]:
        """Reverse owner name -> PTR targets, made on first use (PTR queries are rare, and
        a reload of 50,000 endpoints should not pay for them up front)."""
        if self._ptr is None:
            self._ptr = _ptr_targets(c for _, c in self.contributions.values())
        return self._ptr

    def ptr(self, owner: str) -> tuple[RR, ...]:
        return tuple(RR(None, PTR, self.ttl, target) for target in self.ptr_targets.get(owner, ()))

    def names(self) -> int:
        """How many names we answer for in the forward zones, for logs."""
        return len(self.exists)

    def fingerprint(self) -> tuple:
        """What decides the answers besides the Services' contributions (compared one by
        one in build), for 'did anything change' (SOA serial bumps)."""
        return (self.namespaces, self.pod_ips, self.apex_ns, self.apex_glue)


def _addresses(entries: tuple[Entry, ...], qtype: int, ttl: int) -> tuple[RR, ...]:
    """One A/AAAA per distinct address, in entry order (CoreDNS backend_lookup.go A/AAAA)."""
    seen: dict[str, RR] = {}
    for e in entries:
        if e.host not in seen:
            rtype, packed = pack_address(e.host)
            if rtype == qtype:
                seen[e.host] = RR(None, rtype, ttl, packed)
    return tuple(seen.values())


def _srv(entries: tuple[Entry, ...], ttl: int) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
    """SRV per (target, port) and the targets' addresses for the Additional section.

    Weight: 100 divided by the number of entries at priority 0, before duplicates are
    dropped, at least 1 (C6, C16; CoreDNS plugin/backend_lookup.go SRV).
    """
    weight = max(1, 100 // len(entries))
    srv: dict[tuple[Name, int], RR] = {}
    extra: dict[tuple[Name, str], RR] = {}
    for e in entries:
        if e.port == NO_PORT:
            continue
        if (e.target, e.port) not in srv:
            srv[(e.target, e.port)] = RR(None, SRV, ttl, (0, weight, e.port, e.target))
        if (e.target, e.host) not in extra:
            extra[(e.target, e.host)] = address_rr(e.target, e.host, ttl)
    return tuple(srv.values()), tuple(extra.values())


def reverse_owner(ip: str) -> str:
    """The PTR owner of an address (S8, S9), without ipaddress objects (hot at load time)."""
    if ":" not in ip:
        return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    nibbles = socket.inet_pton(socket.AF_INET6, ip).hex()
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one Service adds to the snapshot. Names are all below the Service's own name,
    so contributions of different Services never share an entry name."""

    entries: dict[str, tuple[Entry, ...]]
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
    entries: dict[str, list[Entry]] = defaultdict(list)
    endpoint_ptr = []
    for group, addr in ready:
        ep = endpoint_name(addr, config.endpoint_pod_names)
        target = Name((ep,) + labels)
        epname = f"{ep}.{sname}"
        for port in group.ports or (None,):
            entry = Entry(addr.ip, port.port if port else NO_PORT, target)
            # Endpoint names exist below every Service, ClusterIP ones too (C7).
            entries[epname].append(entry)
            if svc.headless:
                # Headless: the Service name holds every ready endpoint (S11, S15).
                entries[sname].append(entry)
                if port and port.name:
                    entries[_port_key(port.name, port.protocol, sname)].append(entry)
        endpoint_ptr.append((reverse_owner(addr.ip), Name(target.labels + domain, in_zone=False)))
    cluster_ptr = []
    if not svc.headless:
        # One entry per (port, ClusterIP): A/AAAA/SRV depend on the Service alone (S3-S5, S10).
        target = Name(labels)
        for port in svc.ports:
            for ip in svc.cluster_ips:
                entry = Entry(ip, port.port, target)
                entries[sname].append(entry)
                if port.name:
                    entries[_port_key(port.name, port.protocol, sname)].append(entry)
        cluster_ptr = [(reverse_owner(ip), Name(labels + domain, in_zone=False)) for ip in svc.cluster_ips]
    found = {n: tuple(e) for n, e in entries.items()}
    unfit_names = _unfit_names(found, config.forward_zones)
    if unfit_names:
        return _without(svc, found, tuple(cluster_ptr), tuple(endpoint_ptr), unfit_names, len(domain))
    return Contribution(found, tuple(cluster_ptr), tuple(endpoint_ptr))


@functools.lru_cache(maxsize=8)
def _room(zones: tuple[str, ...]) -> int:
    """Octets the longest of `zones` adds to a relative name: a name must fit below every
    zone it is served in, so it is checked against the longest."""
    return max(octets(split(z)) for z in zones)


def _unfit_names(entries: dict[str, tuple[Entry, ...]], zones: tuple[str, ...]) -> dict[str, str]:
    """Owner names that cannot be encoded (RFC 1035 2.3.4), with the reason. A name of at
    most 63 octets has no longer label: only longer ones are split and counted."""
    room = _room(zones)
    out = {}
    for name in entries:
        if len(name) > MAX_LABEL or len(name) + room + 2 > MAX_NAME:
            reason = unfit(tuple(name.split(".")), room)
            if reason:
                out[name] = reason
    return out


def _without(svc: Service, entries: dict[str, tuple[Entry, ...]], cluster_ptr: tuple[tuple[str, Name], ...],
             endpoint_ptr: tuple[tuple[str, Name], ...], unfit_names: dict[str, str], domain_labels: int) -> Contribution:
    """The contribution less every record owned by, or pointing at, a name that cannot be
    encoded; each such name is reported once, naming the Service and where it was read."""
    def fits(target: Name) -> bool:
        return ".".join(target.labels) not in unfit_names

    # An entry whose target cannot be encoded keeps its address record but loses its SRV
    # (NO_PORT): the address at a name that fits is still a valid answer.
    kept = {
        name: tuple(e if fits(e.target) else Entry(e.host, NO_PORT, e.target) for e in found)
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


class _Builder:
    """Merges the Services' contributions, reusing the previous snapshot's where the
    Service did not change (derive() hands back the same object for an unchanged one)."""

    def __init__(self, config: Config, previous: Snapshot | None) -> None:
        self.config = config
        self.ttl = config.ttl
        self.domain = split(config.cluster_domain)
        self.entries: dict[str, tuple[Entry, ...]] = {}
        self.static: dict[tuple[str, int], tuple[RR, ...]] = {}
        self.externals: dict[str, str] = {}
        self.previous = previous.contributions if previous else {}
        self.contributions: dict[tuple[str, str], tuple[Service, Contribution]] = {}
        self.changed = previous is None
        self.problems: list[Problem] = []

    def add_service(self, svc: Service) -> None:
        key = (svc.namespace, svc.name)
        before = self.previous.get(key)
        if before is not None and (before[0] is svc or before[0] == svc):
            contrib = before[1]
        else:
            contrib = contribution(svc, self.config)
            if before is None or before[1] != contrib:
                self.changed = True
        self.contributions[key] = (svc, contrib)
        self.entries.update(contrib.entries)
        if contrib.problems:
            self.problems += contrib.problems
        if contrib.static:
            self.static.update(contrib.static)
            self.externals.update(contrib.externals)

    def removed_any(self) -> bool:
        return any(key not in self.contributions for key in self.previous)



def _ptr_targets(contributions: Iterable[Contribution]) -> dict[str, tuple[Name, ...]]:
    """PTRs in Service order: a ClusterIP's first Service wins; an address that is no
    ClusterIP gets one PTR per Service whose ready endpoints hold it (C8)."""
    cluster: dict[str, tuple[Name, ...]] = {}
    endpoints: dict[str, list[Name]] = defaultdict(list)
    for contrib in contributions:
        for owner, name in contrib.cluster_ptr:
            cluster.setdefault(owner, (name,))
        for owner, name in contrib.endpoint_ptr:
            endpoints[owner].append(name)
    for owner, names in endpoints.items():
        if owner not in cluster:
            cluster[owner] = tuple(dict.fromkeys(names)) if len(names) > 1 else (names[0],)
    return cluster


def _port_key(port_name: str, protocol: str, sname: str) -> str:
    """`_<port>._<proto>.<svc>...`: the canonical spelling; the resolver maps the
    underscore-less forms CoreDNS also accepts onto it (C5)."""
    return f"_{port_name.lower()}._{protocol.lower()}.{sname}"


def nameservers(state: ClusterState, config: Config) -> tuple[tuple[Name, str], ...]:
    """(NS name, address) pairs, as CoreDNS's nsAddrs (plugin/kubernetes/ns.go, C11).

    The server's own addresses (--ns-address, else the listen address) are looked up among
    ready endpoint addresses. Every Service with such an endpoint gives its name and
    ClusterIPs; a headless one gives `<endpoint>.<svc>.<ns>.svc` and the address of every
    endpoint of the matching slice. Only when no endpoint matches is the name `ns.dns`,
    with the addresses themselves. Names are relative to the zone asked about, as CoreDNS
    builds them from state.Zone. Without endpoints (--noendpoints) nothing can match. A name
    that cannot be encoded (RFC 1035 2.3.4) is left out, as its records are.
    """
    local = frozenset(config.nameserver_ips)
    room = _room(config.zones)  # NS names are written below the reverse zones too
    pairs: dict[tuple[Name, str], None] = {}
    for svc in state.services if not config.noendpoints else ():
        for group in svc.endpoints:
            if not any(a.ready and a.ip in local for a in group.addresses):
                continue
            labels = split(service_name(svc.name, svc.namespace))
            if svc.headless:
                for a in group.addresses:
                    if a.ready:
                        pairs[(Name((endpoint_name(a, config.endpoint_pod_names),) + labels), a.ip)] = None
            else:
                pairs.update(((Name(labels), ip), None) for ip in svc.cluster_ips)
    fitting = tuple(pair for pair in pairs if not unfit(pair[0].labels, room))
    return fitting or tuple((Name(split(NS_NAME)), ip) for ip in config.nameserver_ips)


def _nameserver_records(builder: _Builder, state: ClusterState, config: Config) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
    """NS at the apex with its addresses for the Additional section, and the A/AAAA of
    `ns.dns.<zone>`: every address of every NS name, by family (CoreDNS Records, isDefaultNS)."""
    pairs = nameservers(state, config)
    glue = tuple(address_rr(name, ip, builder.ttl) for name, ip in pairs)
    for _, ip in pairs:
        rr = address_rr(None, ip, builder.ttl)
        key = (NS_NAME, rr.rtype)
        if rr not in builder.static.get(key, ()):
            builder.static[key] = builder.static.get(key, ()) + (rr,)
    names = dict.fromkeys(name for name, _ in pairs)
    return tuple(RR(None, NS, builder.ttl, name) for name in names), glue


def _namespaces(state: ClusterState, config: Config) -> frozenset[str]:
    if config.namespaces:
        return frozenset(n for n in state.namespaces if n in config.namespaces)
    return frozenset(state.namespaces)


def build(state: ClusterState, config: Config, previous: Snapshot | None = None, changed_at: int | None = None) -> Snapshot:
    """Compile a ClusterState into a Snapshot.

    The SOA serial is the Unix time of the last change (C1): `changed_at` (the newest
    manifest mtime, which every worker and replica agrees on) or now, and it grows by at
    least one on every change that alters an answer, and only then.
    """
    namespaces = _namespaces(state, config)
    builder = _Builder(config, previous)
    for svc in state.services:
        if svc.namespace in namespaces:
            builder.add_service(svc)
    builder.static[("dns-version", TXT)] = (RR(None, TXT, DNS_VERSION_TTL, (SCHEMA_VERSION,)),)
    apex_ns, apex_glue = _nameserver_records(builder, state, config)

    has_data = set(builder.entries) | {name for name, _ in builder.static if name not in (NS_NAME, "dns-version")}
    exists = has_data | {"", SVC, "pod", NS_NAME}
    exists |= {f"{ns}.{SVC}" for ns in namespaces}
    if config.pods != "disabled":
        exists |= {f"{ns}.pod" for ns in namespaces}
    pod_ips: dict[str, set[str]] = defaultdict(set)
    if config.pods == "verified":
        # CoreDNS's Pod index: status.podIP of live Pods only (no terminating or finished ones).
        for pod in state.pods:
            if pod.namespace in namespaces and pod.ips and not pod.terminating and pod.phase not in ("Succeeded", "Failed", "Unknown"):
                pod_ips[pod.namespace].add(pod.ips[0])

    snap = Snapshot(
        forward_zones=tuple(split(z) for z in config.forward_zones),
        reverse_zones=tuple(split(z) for z in config.reverse_zones),
        ttl=config.ttl,
        serial=0,
        pods=config.pods,
        entries=builder.entries,
        static=builder.static,
        exists=frozenset(exists),
        has_data=frozenset(has_data),
        externals=builder.externals,
        namespaces=namespaces,
        pod_ips={k: frozenset(v) for k, v in pod_ips.items()},
        apex_ns=apex_ns,
        apex_glue=apex_glue,
        state=state,
        problems=state.problems + tuple(builder.problems),
        contributions=builder.contributions,
    )
    changed = builder.changed or builder.removed_any() or previous is None or previous.fingerprint() != snap.fingerprint()
    snap.serial = _serial(previous, changed, changed_at)
    return snap


def _serial(previous: Snapshot | None, changed: bool, changed_at: int | None) -> int:
    stamp = (changed_at if changed_at is not None else int(time.time())) & 0xFFFFFFFF
    if previous is None:
        return stamp
    if not changed:
        return previous.serial
    return max(stamp, previous.serial + 1) & 0xFFFFFFFF
