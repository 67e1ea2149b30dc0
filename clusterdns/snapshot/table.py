"""The frozen Snapshot the resolver, zone transfers and the tools read: one per manifest change."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

from clusterdns.codes import AAAA, PTR, SOA, SRV, A
from clusterdns.errors import Problem
from clusterdns.frozen import frozen
from clusterdns.manifests.hosts_file import Hosts
from clusterdns.model import ClusterState, EndpointGroup, Service
from clusterdns.names import reverse_owner
from clusterdns.records import RR, Name, SOAData, address_rr, pack_address
from clusterdns.snapshot.external_addresses import NO_EXTERNAL_ADDRESSES, ExternalAddresses

NO_PORT = -1  # CoreDNS's sentinel for an endpoint without ports: A/AAAA yes, SRV no
ADDRESS = 0  # the weight of a transfer row that stands for an address record (an SRV's weight is at least 1)


Entries = Union["Backend", tuple["Backend", ...]]  # one Backend alone is not in a tuple of one (150,000 endpoint names: 8 MB)


def backends(found: Entries) -> tuple[Backend, ...]:
    """A name's entries as a tuple."""
    return (found,) if type(found) is Backend else found  # type: ignore[return-value]


def as_entries(found: Sequence[Backend]) -> Entries:
    """A name's entries as the table keeps them: one Backend alone, more as a tuple."""
    return found[0] if len(found) == 1 else tuple(found)


@frozen
class Backend:
    """What CoreDNS calls a msg.Service: one address (or target) behind a name."""

    host: str  # IP address text
    port: int  # NO_PORT when the endpoint declares none
    base: Name  # the Service's name
    endpoint: str = ""  # the endpoint's name, `<label>.<service name>` (its entry's key); "" for the Service's own entries

    @property
    def target(self) -> Name:
        """The name SRV records point at: the endpoint's, or the Service's. Made when asked,
        from strings the snapshot holds anyway: 150,000 endpoints would otherwise keep a Name
        and a label each (27 MB at the envelope)."""
        if not self.endpoint:
            return self.base
        label = self.endpoint[: len(self.endpoint) - sum(len(part) + 1 for part in self.base.labels)]
        return Name((label,) + self.base.labels)


# The records a zone transfer lists for a Service, as CoreDNS's xfr.go does, one row per record:
# (owner, entry, weight) with weight ADDRESS for the entry's address at the owner, and any other
# for SRV (0, weight, entry.port, entry.target). Kept flat, owner, entry, weight, owner, ...: one
# tuple per Service rather than one per record, which a reload of many endpoints would pay for.
TransferRows = tuple[Any, ...]


def transfer_rows(rows: Sequence[Any]) -> Iterator[tuple[str, Backend, int]]:
    """The (owner, entry, weight) rows of a flat TransferRows."""
    fields = iter(rows)
    return zip(fields, fields, fields)


@dataclass(frozen=True)
class Snapshot:
    """Everything the resolver, zone transfers and the tools read, compiled once per change.

    Frozen: a reload makes a new one and the server swaps it in with one assignment, so a
    reader sees all of a change or none of it. Relative names (below the zone, lower case,
    dotted) key the data; every forward zone serves the same tree, so one table serves all
    of them. Records are made from the per-name entries when asked for (`rrset`): a reload
    does no work for names nobody queries, and the serving layer caches the replies.
    """

    forward_zones: tuple[tuple[str, ...], ...]
    reverse_zones: tuple[tuple[str, ...], ...]
    ttl: int
    serial: int
    pods: str  # --pods: disabled, insecure or verified
    endpoint_pod_names: bool  # what names endpoints (k8s_external names headless endpoints with it)
    noendpoints: bool
    entries: dict[str, Entries]  # CoreDNS service entries per name
    static: dict[tuple[str, int], tuple[RR, ...]]  # dns-version TXT, ns.dns A/AAAA, ExternalName CNAMEs
    # Names that own records are the keys of `entries` and `static_owners`; `structure` holds
    # those CoreDNS finds without records. No set of every name: at the envelope it would be
    # 170,000 names, made again at every build (has_data() and exists() ask the three).
    static_owners: frozenset[str]  # owners in `static` (ExternalName CNAMEs), but ns.dns and dns-version
    structure: frozenset[str]  # the apex, svc, pod, ns.dns and each exposed namespace
    externals: dict[str, str]  # ExternalName Service name -> target (absolute, no trailing dot)
    namespaces: frozenset[str]  # namespaces that exist and are exposed
    pod_ips: dict[str, frozenset[str]]  # namespace -> Pod IPs (pods verified)
    apex_ns: tuple[RR, ...]
    apex_glue: tuple[RR, ...]
    state: ClusterState
    problems: tuple[Problem, ...]  # the state's, and records left out when compiling
    contributions: dict[tuple[str, str], tuple[Service, Any]]  # per Service: (Service, Contribution), for the next build
    contributed_under: tuple[Any, ...] = ()  # the settings the contributions were made with (contributions.contributed_under)
    own: tuple[tuple[Service, EndpointGroup], ...] = ()  # the endpoint groups holding this server's addresses (nameservers.own_endpoints)
    external_addresses: ExternalAddresses = NO_EXTERNAL_ADDRESSES  # what CoreDNS's k8s_external reads
    cluster_domain: tuple[str, ...] = ("cluster", "local")  # --cluster-domain as labels: where PTR targets are
    hosts: Hosts | None = None  # CoreDNS's hosts: the file and inline entries (None: the plugin is off)
    fallthrough: tuple[tuple[str, ...], ...] = ()  # --fallthrough zones as labels (() the root): NXDOMAIN there goes on

    def soa(self) -> RR:
        """The zone SOA as CoreDNS writes it (C1): TTL min(ttl, 300), minimum = ttl."""
        data = SOAData(Name(("ns", "dns")), Name(("hostmaster",)), self.serial, 7200, 1800, 86400, self.ttl)
        return RR(Name(()), SOA, min(self.ttl, 300), data)

    def rrset(self, name: str, qtype: int) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
        """(answer records, additional records) owned by `name` for `qtype`."""
        static = self.static.get((name, qtype))
        if static:
            return static, ()
        found = self.entries.get(name)
        if not found:
            return (), ()
        return self.records(backends(found), qtype)

    def records(self, entries: tuple[Backend, ...], qtype: int) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
        """(answer records, additional records) that these entries give for `qtype`."""
        if qtype in (A, AAAA):
            return _addresses(entries, qtype, self.ttl), ()
        if qtype == SRV:
            return _srv(entries, self.ttl)
        return (), ()

    @functools.cached_property
    def ptr_targets(self) -> dict[str, tuple[Name, ...]]:
        """Reverse owner name -> PTR targets, made on first use (PTR queries are rare, and
        a reload of 50,000 endpoints should not pay for them up front). A pure function of
        the snapshot, computed at most once."""
        return _ptr_targets((c for _, c in self.contributions.values()), self.cluster_domain)

    def ptr(self, owner: str) -> tuple[RR, ...]:
        return tuple(RR(None, PTR, self.ttl, target) for target in self.ptr_targets.get(owner, ()))

    def has_data(self, name: str) -> bool:
        """Whether `name` owns at least one record (decides TXT NODATA vs NXDOMAIN)."""
        return name in self.entries or name in self.static_owners

    def exists(self, name: str) -> bool:
        """Whether CoreDNS finds `name` (NODATA rather than NXDOMAIN for other types)."""
        return name in self.entries or name in self.static_owners or name in self.structure

    def names(self) -> int:
        """How many names we answer for in the forward zones, for logs."""
        entries = self.entries
        return len(entries) + sum(1 for name in self.static_owners | self.structure if name not in entries)


def _addresses(entries: tuple[Backend, ...], qtype: int, ttl: int) -> tuple[RR, ...]:
    """One A/AAAA per distinct address, in entry order (CoreDNS backend_lookup.go A/AAAA)."""
    seen: dict[str, RR] = {}
    for e in entries:
        if e.host not in seen:
            rtype, packed = pack_address(e.host)
            if rtype == qtype:
                seen[e.host] = RR(None, rtype, ttl, packed)
    return tuple(seen.values())


def _srv(entries: tuple[Backend, ...], ttl: int) -> tuple[tuple[RR, ...], tuple[RR, ...]]:
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


def _ptr_targets(contributions: Iterable[Any], domain: tuple[str, ...]) -> dict[str, tuple[Name, ...]]:
    """PTRs in Service order: a ClusterIP's first Service wins; an address that is no
    ClusterIP gets one PTR per Service whose ready endpoints hold it (C8). Targets are
    absolute: the question is in a reverse zone, the answer in the cluster domain."""
    cluster: dict[str, tuple[Name, ...]] = {}
    endpoints: dict[str, list[Name]] = defaultdict(list)
    for contrib in contributions:
        for entry in contrib.cluster_ptr:
            owner = reverse_owner(entry.host)
            if owner not in cluster:
                cluster[owner] = (Name(entry.base.labels + domain, in_zone=False),)
        for entry in contrib.endpoint_ptr:
            endpoints[reverse_owner(entry.host)].append(Name(entry.target.labels + domain, in_zone=False))
    for owner, names in endpoints.items():
        if owner not in cluster:
            cluster[owner] = tuple(dict.fromkeys(names)) if len(names) > 1 else (names[0],)
    return cluster
