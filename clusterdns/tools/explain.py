"""Why a name answers what it answers: `clusterdns records --explain NAME`.

It walks the name the way the resolver does (spec C3: namespace, Service, endpoint, port)
and says at each step which manifest object, at which file and line, decided it, or why
the walk stops at NXDOMAIN.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator

from clusterdns.codes import AAAA, CNAME, NXDOMAIN, PTR, RCODE_LABELS, SRV, TXT, TYPE_LABELS, A
from clusterdns.config.settings import Config
from clusterdns.external import ExternalOptions
from clusterdns.external import answer as external_answer
from clusterdns.model import EndpointAddress, Pod, Service
from clusterdns.names import NameRequest, endpoint_name, ip_from_pod_label, parse_name, port_labels, split, under, unfit
from clusterdns.resolver import Answer, find_zone, resolve
from clusterdns.snapshot.table import Snapshot
from clusterdns.tools.zonefile import rr_line


def explain(snap: Snapshot, config: Config, name: str) -> list[str]:
    """Lines of explanation for one name: the answers by type, then the reasons."""
    labels = split(name.lower())
    wrong = unfit(labels, 0)
    if wrong:  # what dig refuses to send and a server could not be asked (RFC 1035 2.3.4)
        return [f"{name}: not a valid DNS name: {wrong}; no query can ask it"]
    found = find_zone(snap, labels)
    if found is None:
        return _external(snap, config, name, labels) or [
            f"{name}: not in our zones ({', '.join(config.zones)}): forwarded to the upstream, or REFUSED without one"]
    zone, reverse = found
    zone_text = ".".join(zone)
    lines = [f"{name.rstrip('.')}. (zone {zone_text})"]
    lines += _answers(lambda qtype: resolve(snap, labels, qtype), labels, zone_text, (PTR,) if reverse else (A, AAAA, SRV, CNAME, TXT))
    rel = labels[: len(labels) - len(zone)]
    lines += list(_reverse_reasons(snap, labels) if reverse else _forward_reasons(snap, config, rel))
    return lines


def _external(snap: Snapshot, config: Config, name: str, labels: tuple[str, ...]) -> list[str]:
    """A name in a k8s_external zone (--external-zone): its answers, from the same function the server asks."""
    options = ExternalOptions.of(config)
    zone = max((z for z in options.zones if under(labels, (z,))), key=len, default=None)
    if zone is None:
        return []
    zone_text = ".".join(zone)
    lines = [f"{name.rstrip('.')}. (k8s_external zone {zone_text}: the Services' external IPs and LoadBalancer addresses)"]
    return lines + _answers(lambda qtype: external_answer(snap, options, labels, qtype), labels, zone_text, (A, AAAA, SRV, CNAME))


def _answers(ask: Callable[[int], Answer | None], labels: tuple[str, ...], zone: str, qtypes: tuple[int, ...]) -> list[str]:
    out = []
    for qtype in qtypes:
        text = TYPE_LABELS[qtype]
        answer = ask(qtype)
        if answer is None:
            continue
        if answer.answer:
            owner = ".".join(labels) + "."
            for rr in answer.answer:
                out.append("  " + rr_line(owner if rr.owner is None else rr.owner.text(zone), rr, zone))
            if answer.chase:
                out.append(f"  (then the upstream's {text} records for {answer.chase}.)")
            for lookup in getattr(answer, "lookups", ()):  # a LoadBalancer's hostname: looked up when asked
                out.append(f"  (then the {TYPE_LABELS.get(lookup.qtype, lookup.qtype)} records of {lookup.name}., looked up when asked)")
        else:
            out.append(f"  {text}: {RCODE_LABELS.get(answer.rcode, answer.rcode)}{'' if answer.rcode == NXDOMAIN else ' (NODATA)'}")
    return out


def _forward_reasons(snap: Snapshot, config: Config, rel: tuple[str, ...]) -> Iterator[str]:
    state = snap.state
    request = parse_name(rel)  # the resolver's own reading of the name (names.py, CoreDNS parse.go)
    if not rel:
        yield "because: the zone apex has the SOA and NS records"
        return
    if request.pod_or_svc == "pod" or rel[-1] == "pod":
        yield from _pod_reasons(snap, request)
        return
    if request.pod_or_svc != "svc" and rel[-1] != "svc":
        yield f"because: the first label below the zone must be 'svc' or 'pod', not {rel[-1]!r} (only dns-version and ns.dns live elsewhere)"
        return
    if not request.valid:
        yield "because: more than two labels in front of a Service name match nothing (C3)"
        return
    if not request.namespace:
        yield "because: svc.<zone> exists (it holds the namespaces) but owns no records"
        return
    namespace = request.namespace
    if namespace not in state.namespaces:
        yield f"because: there is no namespace {namespace!r}; a namespace exists when a Namespace object or any object in it exists"
        yield f"  namespaces: {', '.join(sorted(state.namespaces))}"
        return
    if namespace not in snap.namespaces:
        yield f"because: namespace {namespace!r} is not in --namespaces {','.join(config.namespaces)}"
        return
    if not request.service:
        yield f"because: namespace {namespace!r} exists; its name owns no records (NODATA)"
        return
    services = {s.name: s for s in state.services if s.namespace == namespace}
    svc = services.get(request.service)
    if svc is None:
        yield f"because: no Service {request.service!r} in namespace {namespace!r}"
        close = difflib.get_close_matches(request.service, list(services), n=3)
        if close:
            yield f"  did you mean: {', '.join(close)}"
        return
    yield from _service_reasons(svc, config, {(p.namespace, p.name): p for p in state.pods})
    if request.endpoint:
        yield from _endpoint_reasons(snap, config, svc, request.endpoint)
    elif request.port:
        yield from _port_reasons(svc, request.port, request.protocol)


def _service_reasons(svc: Service, config: Config, pods: dict[tuple[str, str], Pod]) -> Iterator[str]:
    kind = "headless" if svc.headless else svc.type
    yield f"Service {svc.namespace}/{svc.name} ({kind}) from {svc.source}"
    if svc.type == "ExternalName":
        yield f"  externalName {svc.external_name}: a CNAME, chased for A/AAAA (C10); nothing exists below it (C3)"
        return
    if svc.cluster_ips:
        yield f"  ClusterIPs {', '.join(svc.cluster_ips)}: A/AAAA and SRV come from the Service alone (S3-S5)"
    groups = svc.endpoints
    origin = {"EndpointSlice": "its EndpointSlices", "Endpoints": "its Endpoints object", "selector": "its selector and the Pods it matches"}.get(svc.endpoints_source, "nothing (no selector, no Endpoints)")
    yield f"  endpoints from {origin}"
    for group in groups:
        where = f" ({group.name}, {group.source})" if group.name or group.source.file else ""
        ports = ", ".join(f"{p.name or '<unnamed>'}/{p.protocol} {p.port}" for p in group.ports) or "no ports"
        yield f"    group{where}: {ports}"
        for addr in group.addresses:
            pod = pods.get((addr.pod_namespace or svc.namespace, addr.pod_name))
            origin = f" ({pod.owner + ', ' if pod.owner else ''}{pod.source})" if pod else ""
            yield f"      {_address(addr, config)}{origin}"
    ready = [a for g in groups for a in g.addresses if a.ready]
    if config.noendpoints:
        yield "  --noendpoints: no endpoint records are served"
    elif svc.headless and not ready:
        yield "  a headless Service with no ready endpoints has no records: NXDOMAIN (S12)"
    elif not svc.headless and not ready and config.ignore_empty_service:
        yield "  --ignore-empty-service: a ClusterIP Service with no ready endpoints is NXDOMAIN"


def _address(addr: EndpointAddress, config: Config) -> str:
    label = endpoint_name(addr, config.endpoint_pod_names)
    pod = f" Pod {addr.pod_namespace or ''}/{addr.pod_name}" if addr.pod_name else ""
    state = "ready" if addr.ready else f"NOT ready ({'terminating' if addr.terminating else 'Pod not Ready'}): not published"
    return f"{addr.ip} as {label!r}{pod}: {state}"


def _endpoint_reasons(snap: Snapshot, config: Config, svc: Service, label: str) -> Iterator[str]:
    names = {endpoint_name(a, config.endpoint_pod_names): a for g in svc.endpoints for a in g.addresses}
    addr = names.get(label)
    if addr is not None:
        yield f"endpoint {label!r}: {_address(addr, config)}"
        return
    yield f"because: no endpoint of {svc.name} is called {label!r}; endpoint names: {', '.join(sorted(names)) or 'none'}"
    state = snap.state
    assert state is not None
    for pod in state.pods:
        if pod.namespace == svc.namespace and pod.hostname == label:
            if pod.subdomain != svc.name:
                yield (f"  Pod {pod.namespace}/{pod.name} ({pod.source}) has hostname {label!r} but subdomain {pod.subdomain!r}: "
                       f"the endpoint gets its hostname only when subdomain equals the Service name {svc.name!r} (spec 2.5)")
            else:
                yield f"  Pod {pod.namespace}/{pod.name} ({pod.source}) has that hostname, but the Service does not select it or it is not ready"


def _port_reasons(svc: Service, port: str, proto: str) -> Iterator[str]:
    ports = list(svc.ports) + [p for g in svc.endpoints for p in g.ports]
    named = sorted({".".join(port_labels(p.name, p.protocol)) for p in ports if p.name})
    asked = ".".join(port_labels(port, proto))
    yield f"port labels {asked}: the Service's named ports are {', '.join(named) or 'none'} (unnamed ports have no SRV name, S6)"


def _pod_reasons(snap: Snapshot, request: NameRequest) -> Iterator[str]:
    if snap.pods == "disabled":
        yield "because: --pods disabled: no <ip>.<ns>.pod records (C9)"
        return
    if request.namespace and request.namespace not in snap.namespaces:
        yield f"because: there is no namespace {request.namespace!r}"
        return
    if request.service:
        ip = ip_from_pod_label(request.service)
        if ip is None:
            yield f"because: {request.service!r} is not an address written with dashes (10-244-1-7)"
        elif snap.pods == "verified":
            ok = ip.compressed in snap.pod_ips.get(request.namespace, ())
            yield f"--pods verified: {'a' if ok else 'no'} Pod in {request.namespace} has the IP {ip.compressed}"
        else:
            yield "--pods insecure: any address under an existing namespace answers (C9)"


def _reverse_reasons(snap: Snapshot, labels: tuple[str, ...]) -> Iterator[str]:
    owner = ".".join(labels)
    if owner not in snap.ptr_targets:
        yield "because: no ClusterIP and no ready endpoint has this address"
        return
    yield "a ClusterIP answers with its Service; otherwise one PTR per Service whose ready endpoints hold the address (C8)"
