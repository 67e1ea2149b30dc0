"""resolve(snapshot, question) -> Answer: the one place that decides answers for our zones.

Pure: no I/O, no clocks. It follows CoreDNS's `kubernetes` plugin (spec C1-C16), whose
notion of "this name exists" is not quite RFC 8020's tree: CoreDNS parses names as
`[_port._proto.|endpoint.]service.namespace.svc|pod.zone`, so an empty non-terminal such
as `_tcp.web.ns.svc.<zone>` or `dns.<zone>` is NXDOMAIN there, and so it is here.
"""

from __future__ import annotations

from dataclasses import dataclass

from clusterdns.codes import AAAA, CNAME, NOERROR, NS, NXDOMAIN, PTR, SOA, SRV, TXT, A
from clusterdns.model import EndpointPort, ServicePort
from clusterdns.names import SVC, NameRequest, address_from_reverse, ip_from_pod_label, parse_name, port_labels, reverse_owner, split, under
from clusterdns.records import RR, Name
from clusterdns.snapshot.table import NO_PORT, Snapshot, backends

# CoreDNS adds an in-zone CNAME while at most maxCnameChainLength (10) records precede it
# (plugin/backend_lookup.go A/AAAA): a chain of 11 ExternalNames ends in the addresses,
# one of 12 in nothing. _external() at `depth` has `depth` CNAMEs before its own.
MAX_CNAME_CHAIN = 10


@dataclass(frozen=True, slots=True)
class Answer:
    """What we say about one question in one of our zones (AA is always set, C1).

    `zone_labels` is how many trailing labels of the question name are the zone, so
    in-zone names in the answer can be written with the question's spelling. `chase`
    is an out-of-zone ExternalName target whose records the handler appends after the
    CNAME (C10). `fallthrough` marks an NXDOMAIN that --fallthrough sends upstream.
    """

    rcode: int
    answer: tuple[RR, ...] = ()
    authority: tuple[RR, ...] = ()
    additional: tuple[RR, ...] = ()
    zone_labels: int = 0
    chase: str | None = None
    fallthrough: bool = False


def find_zone(snap: Snapshot, labels: tuple[str, ...]) -> tuple[tuple[str, ...], bool] | None:
    """The longest of our zones that contains the name, and whether it is a reverse zone."""
    best: tuple[tuple[str, ...], bool] | None = None
    for zones, reverse in ((snap.forward_zones, False), (snap.reverse_zones, True)):
        for zone in zones:
            if len(zone) <= len(labels) and labels[len(labels) - len(zone) :] == zone:
                if best is None or len(zone) > len(best[0]):
                    best = (zone, reverse)
    return best


def resolve(snap: Snapshot, labels: tuple[str, ...], qtype: int) -> Answer | None:
    """Answer a question (lower-cased labels, class IN) or None when no zone of ours holds it.
    An NXDOMAIN under the snapshot's --fallthrough zones is marked to go on (`fallthrough`)."""
    found = find_zone(snap, labels)
    if found is None:
        return None
    zone, reverse = found
    rel = labels[: len(labels) - len(zone)]
    if reverse:
        answer = _reverse(snap, rel, labels, qtype)
    else:
        answer = _forward(snap, rel, qtype)
    answer = _with_zone(answer, len(zone))
    if answer.rcode == NXDOMAIN and snap.fallthrough and under(labels, snap.fallthrough):
        return Answer(NXDOMAIN, answer.answer, answer.authority, (), len(zone), fallthrough=True)
    return answer


def _with_zone(answer: Answer, zone_labels: int) -> Answer:
    return Answer(answer.rcode, answer.answer, answer.authority, answer.additional, zone_labels, answer.chase, answer.fallthrough)


def _negative(snap: Snapshot, rcode: int) -> Answer:
    """NXDOMAIN or NODATA: authoritative, with the zone SOA in Authority (RFC 2308 3, C1)."""
    return Answer(rcode, authority=(snap.soa(),))


def _apex(snap: Snapshot, qtype: int) -> Answer | None:
    if qtype == SOA:
        return Answer(NOERROR, (snap.soa(),))
    if qtype == NS:
        return Answer(NOERROR, snap.apex_ns, additional=snap.apex_glue)
    return None


def _forward(snap: Snapshot, rel: tuple[str, ...], qtype: int, depth: int = 0) -> Answer:
    if not rel and (apex := _apex(snap, qtype)):
        return apex
    if qtype == SOA:
        return _negative(snap, NOERROR)  # SOA below the apex is never looked up: NODATA (CoreDNS handler.go)
    if any("." in label for label in rel):
        return _negative(snap, NXDOMAIN)  # a label with a dot in it matches nothing of ours
    request = parse_name(rel)
    if request.pod_or_svc == "pod" and request.service:
        return _pod(snap, request, qtype, rel)
    if len(rel) == 5 and request.pod_or_svc == SVC and request.valid and not (request.port and request.protocol):
        return _any_port(snap, request, qtype)
    name = ".".join(_canonical(rel, request))
    if qtype == TXT:
        # TXT: only dns-version.<zone> has one (S2); elsewhere NODATA needs a name that
        # owns records, so a namespace or the apex is NXDOMAIN for TXT (CoreDNS Services()).
        if name == "dns-version":
            return Answer(NOERROR, snap.static[(name, TXT)])
        return _negative(snap, NOERROR if snap.has_data(name) else NXDOMAIN)
    if name in snap.externals:
        return _external(snap, name, qtype, depth)
    rrs, additional = snap.rrset(name, qtype)
    if rrs:
        return Answer(NOERROR, rrs, additional=additional)
    if qtype == PTR:
        # PTR on a forward name is looked up like TXT's fallback: ns.dns is not a record name.
        return _negative(snap, NOERROR if snap.exists(name) and name != "ns.dns" else NXDOMAIN)
    return _negative(snap, NOERROR if snap.exists(name) else NXDOMAIN)


def _canonical(rel: tuple[str, ...], request: NameRequest) -> tuple[str, ...]:
    """`port.proto.svc.ns.svc` forms: the leading `_` of each is optional (C5)."""
    if request.pod_or_svc == "svc" and request.port:
        return port_labels(request.port, request.protocol) + rel[2:]
    return rel


def _any_port(snap: Snapshot, request: NameRequest, qtype: int) -> Answer:
    """`_._tcp.<svc>`, `_http._.<svc>`: a lone `_` is a port or protocol that matches any
    (CoreDNS parse.go stripUnderscore leaves "", which matchPortAndProtocol lets match
    anything): the Service's records for every port that matches, NXDOMAIN when none does."""
    found = snap.contributions.get((request.namespace, request.service))
    if found is None or request.namespace not in snap.namespaces:
        return _negative(snap, NXDOMAIN)
    svc, sname = found[0], f"{request.service}.{request.namespace}.{SVC}"
    if svc.headless:  # the endpoints' own ports (kubernetes.go findServices)
        wanted = {(a.ip, p.port if p else NO_PORT) for g in svc.endpoints for p in g.ports or (None,) if _matches(request, p) for a in g.addresses}
    else:  # the Service's ports; none is CoreDNS's sentinel port -1 (object/service.go)
        wanted = {(ip, p.port if p else NO_PORT) for p in svc.ports or (None,) if _matches(request, p) for ip in svc.cluster_ips}
    entries = tuple(e for e in backends(snap.entries.get(sname, ())) if (e.host, e.port) in wanted)
    if not entries:
        return _negative(snap, NXDOMAIN)
    rrs, additional = snap.records(entries, qtype)
    return Answer(NOERROR, rrs, additional=additional) if rrs else _negative(snap, NOERROR)


def _matches(request: NameRequest, port: ServicePort | EndpointPort | None) -> bool:
    """matchPortAndProtocol: an empty port or protocol in the question matches any; a port-less
    Service or slice has the sentinel port, of no name and no protocol."""
    name, protocol = (port.name, port.protocol.lower()) if port else ("", "")
    return (not request.port or request.port == name) and (not request.protocol or request.protocol == protocol)


def _external(snap: Snapshot, name: str, qtype: int, depth: int = 0) -> Answer:
    """An ExternalName Service: a CNAME (S18), chased for A/AAAA (C10), NODATA otherwise."""
    cname = snap.static[(name, CNAME)]
    if qtype == CNAME:
        return Answer(NOERROR, cname)
    if qtype not in (A, AAAA):
        return _negative(snap, NOERROR)  # SRV, TXT, MX ... on an ExternalName: nothing (C10)
    target = snap.externals[name]
    tlabels = split(target)
    zone = next((z for z in snap.forward_zones if tlabels[len(tlabels) - len(z) :] == z and len(tlabels) > len(z)), None)
    if zone is None:
        return Answer(NOERROR, cname, chase=target)
    if depth > MAX_CNAME_CHAIN:
        return _negative(snap, NOERROR)  # this CNAME is not added, nor any before it
    # In-zone target: followed inside the plugin, looked up as a question of its own (a
    # Service, a port or endpoint name, a Pod name, another ExternalName: CoreDNS's A/AAAA
    # ask Services() again); the CNAME is kept only if that ends in records of the asked type
    # (backend_lookup.go A/AAAA).
    owner = Name(tlabels, in_zone=False)
    inner = _forward(snap, tlabels[: len(tlabels) - len(zone)], qtype, depth + 1)
    tail = tuple(RR(owner if rr.owner is None else rr.owner, rr.rtype, rr.ttl, rr.rdata) for rr in inner.answer)
    if inner.chase:
        return Answer(NOERROR, cname + tail, chase=inner.chase)
    if not tail:
        return _negative(snap, NOERROR)
    return Answer(NOERROR, cname + tail)


def _pod(snap: Snapshot, request: NameRequest, qtype: int, rel: tuple[str, ...]) -> Answer:
    """`<a-b-c-d>.<ns>.pod.<zone>`, with up to two labels in front (C9, CoreDNS findPods)."""
    if snap.pods == "disabled" or not request.valid:
        return _negative(snap, NXDOMAIN)
    label, namespace = request.service, request.namespace
    if namespace not in snap.namespaces:
        return _negative(snap, NXDOMAIN)
    ip = ip_from_pod_label(label)
    if ip is None or (snap.pods == "verified" and ip.compressed not in snap.pod_ips.get(namespace, ())):
        return _negative(snap, NXDOMAIN)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # `--ffff-a01-203`: an A, as msg.Service.HostType finds To4() != nil
    rtype = A if ip.version == 4 else AAAA
    address = RR(None, rtype, snap.ttl, ip.packed)
    if qtype == rtype:
        return Answer(NOERROR, (address,))
    if qtype == SRV:
        # CoreDNS answers SRV on a pod name with port 0 and the pod name as target.
        target = Name(rel[-3:])
        return Answer(NOERROR, (RR(None, SRV, snap.ttl, (0, 100, 0, target)),), additional=(RR(target, rtype, snap.ttl, ip.packed),))
    return _negative(snap, NOERROR)


def _reverse(snap: Snapshot, rel: tuple[str, ...], labels: tuple[str, ...], qtype: int) -> Answer:
    """A reverse zone we were told to serve: PTRs for ClusterIPs and endpoints (S8, S9, S16, S17, C8)."""
    if not rel:
        if apex := _apex(snap, qtype):
            return apex
        return _negative(snap, NXDOMAIN if qtype == TXT else NOERROR)
    if any("." in label for label in rel):
        return _negative(snap, NXDOMAIN)  # `34.12.96.10` as one label is not four
    if qtype == SOA:
        return _negative(snap, NOERROR)
    if rel == ("ns", "dns"):
        # ns.dns.<zone> holds the nameserver's addresses in every zone (CoreDNS isDefaultNS).
        rrs = snap.static.get(("ns.dns", qtype), ()) if qtype in (A, AAAA) else ()
        if rrs:
            return Answer(NOERROR, rrs)
        return _negative(snap, NXDOMAIN if qtype in (TXT, PTR) else NOERROR)
    if qtype == PTR:
        # The address the name stands for, as CoreDNS's Reverse reads it (ExtractAddressFromReverse:
        # ::ffff:a.b.c.d is a.b.c.d, labels past 32 nibbles are dropped), then its PTRs.
        ip = address_from_reverse(labels)
        rrs = snap.ptr(reverse_owner(ip)) if ip else ()
        if rrs:
            return Answer(NOERROR, rrs)
    return _negative(snap, NXDOMAIN)
