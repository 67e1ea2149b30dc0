"""Service, Endpoints and EndpointSlice manifests read into their slim kinds."""

from __future__ import annotations

from typing import Any

from clusterdns.errors import shown
from clusterdns.model import EndpointAddress, EndpointPort, ServicePort
from clusterdns.objects.external import LEFT_OUT, external_addresses, not_special
from clusterdns.objects.fields import DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN, Reader, label_value, metadata
from clusterdns.objects.kinds import (
    IP_FAMILIES,
    IP_FAMILY_POLICIES,
    SERVICE_NAME_LABEL,
    SERVICE_TYPES,
    TOLERATE_UNREADY,
    Endpoints,
    EndpointSlice,
    EndpointsSubset,
    Service,
)


def service(r: Reader, data: dict[str, Any]) -> Service:
    # Service names are DNS-1035 labels (ValidateServiceName = NameIsDNS1035Label, spec 2.5);
    # with the RelaxedServiceNameValidation feature gate, DNS-1123 labels: a leading digit is
    # allowed (KEP-5311; the e2e test "should work with a service name that starts with a digit").
    if r.relaxed_service_names:
        namespace, name, meta = metadata(r, data, True, DNS1123_LABEL, "Service name (DNS-1123 label)")
    else:
        namespace, name, meta = metadata(r, data, True, DNS1035_LABEL, "Service name (DNS-1035 label; --relaxed-service-names admits a leading digit)")
    spec = r.mapping(data.get("spec"), "spec")
    svc_type = r.string(spec.get("type"), "spec.type") or "ClusterIP"
    if svc_type not in SERVICE_TYPES:
        raise r.fail("spec.type", f"unknown Service type {shown(svc_type)}")
    annotations = r.mapping(meta.get("annotations"), "metadata.annotations")
    publish = r.flag(spec.get("publishNotReadyAddresses"), "spec.publishNotReadyAddresses")
    publish = publish or label_value(annotations.get(TOLERATE_UNREADY)).lower() == "true"
    external_name = ""
    cluster_ips: tuple[str, ...] = ()
    headless = False
    if svc_type == "ExternalName":
        external_name = _external_name(r, spec.get("externalName"))
    else:
        cluster_ips, headless = _cluster_ips(r, spec)
    selector = r.labels(spec.get("selector"), "spec.selector") or None  # `{}` is no selector (spec 2.4)
    ports = _service_ports(r, spec.get("ports"))
    families = _ip_families(r, spec.get("ipFamilies"))
    for i, (ip, family) in enumerate(zip(cluster_ips, families)):
        # The API server refuses a Service whose ClusterIPs and ipFamilies disagree, entry by
        # entry (core validation ValidateServiceClusterIPsRelatedFields).
        if ("IPv6" if ":" in ip else "IPv4") != family:
            raise r.fail(f"spec.ipFamilies[{i}]", f"{family} does not match the ClusterIP {ip}")
    if not ports and svc_type != "ExternalName" and not headless:
        r.warn("spec.ports", "required for a Service with a ClusterIP (the API server refuses it); served as CoreDNS serves it: A/AAAA, no SRV")
    return Service(
        namespace=namespace,
        name=name,
        type=svc_type,
        cluster_ips=cluster_ips,
        headless=headless,
        ip_families=families,
        ip_family_policy=_ip_family_policy(r, spec.get("ipFamilyPolicy")),
        external_name=external_name,
        ports=ports,
        selector=selector,
        publish_not_ready=publish,
        source=r.source,
        external_addresses=external_addresses(r, spec, data.get("status")),
    )


def _external_name(r: Reader, value: Any) -> str:
    field = "spec.externalName"
    text = r.string(value, field).strip().lower().rstrip(".")  # an FQDN may end in "."
    if not text:
        raise r.fail(field, "required for type ExternalName")
    if len(text) > 253 or not DNS1123_SUBDOMAIN.fullmatch(text):
        raise r.fail(field, f"{shown(value)} is not a valid DNS name")
    return text


def _cluster_ips(r: Reader, spec: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """spec.clusterIP / spec.clusterIPs: ("None" is headless, "" or absent: allocate)."""
    single = r.string(spec.get("clusterIP"), "spec.clusterIP").strip()
    many = [r.string(v, f"spec.clusterIPs[{i}]").strip() for i, v in enumerate(r.sequence(spec.get("clusterIPs"), "spec.clusterIPs"))]
    many = [v for v in many if v]
    if single and many and single != many[0]:
        raise r.fail("spec.clusterIPs[0]", f"{shown(many[0])} must match spec.clusterIP {shown(single)}")
    written = many or ([single] if single else [])
    if any(v == "None" for v in written):
        if len(written) > 1:
            raise r.fail("spec.clusterIPs", "a headless Service (None) can have only one entry")
        return (), True
    if len(written) > 2:
        raise r.fail("spec.clusterIPs", "at most two addresses, one per IP family")
    field = "spec.clusterIPs" if many else "spec.clusterIP"
    ips = tuple(r.ip(v, f"{field}[{i}]" if many else field) for i, v in enumerate(written))
    if len(ips) == 2 and (":" in ips[0]) == (":" in ips[1]):
        raise r.fail("spec.clusterIPs", "the two addresses must be of different IP families")
    return ips, False


def _ip_families(r: Reader, value: Any) -> tuple[str, ...]:
    families = tuple(r.string(v, f"spec.ipFamilies[{i}]") for i, v in enumerate(r.sequence(value, "spec.ipFamilies")))
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            raise r.fail(f"spec.ipFamilies[{i}]", f"unknown IP family {shown(family)} (IPv4 or IPv6)")
    if len(set(families)) != len(families):
        raise r.fail("spec.ipFamilies", "an IP family is listed twice")
    return families


def _ip_family_policy(r: Reader, value: Any) -> str:
    policy = r.string(value, "spec.ipFamilyPolicy")
    if policy and policy not in IP_FAMILY_POLICIES:
        raise r.fail("spec.ipFamilyPolicy", f"unknown policy {shown(policy)}")
    return policy


def _service_ports(r: Reader, value: Any) -> tuple[ServicePort, ...]:
    ports = []
    entries = r.sequence(value, "spec.ports")
    for i, raw in enumerate(entries):
        field = f"spec.ports[{i}]"
        entry = r.mapping(raw, field)
        name = r.dns_name(entry.get("name"), f"{field}.name", DNS1123_LABEL, "port name (DNS-1123 label)", required=False)
        if not name and len(entries) > 1:
            r.warn(f"{field}.name", "a Service with several ports must name each one; this port gets no SRV record")
        ports.append(
            ServicePort(
                name=name,
                protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
                port=r.port(entry.get("port"), f"{field}.port"),
                target_port=_target_port(r, entry.get("targetPort"), f"{field}.targetPort"),
            )
        )
    names = [p.name for p in ports if p.name]
    if len(set(names)) != len(names):
        r.warn("spec.ports", "port names are not unique")
    return r.share(tuple(ports))


def _target_port(r: Reader, value: Any, field: str) -> int | str | None:
    """targetPort is an IntOrString: a number, or the name of a container port."""
    if value is None or value == "":
        return None  # the API defaults it to `port`
    if isinstance(value, str):
        if value.isascii() and value.isdigit():  # "8080" quoted: the number (not str.isdigit() alone: int("²") raises)
            number = value.lstrip("0") or "0"
            if len(number) > 5:  # out of range however long, and never past int()'s digit limit
                raise r.fail(field, f"{shown(value)} is out of range 1-65535")
            return r.integer(int(number), field, 1, 65535)
        return value
    return r.integer(value, field, 1, 65535)


def _endpoint_port(r: Reader, raw: Any, field: str, port_required: bool) -> EndpointPort | None:
    entry = r.mapping(raw, field)
    if entry.get("port") is None and not port_required:
        r.warn(f"{field}.port", "a port without a number is ignored")
        return None
    return EndpointPort(
        # A DNS-1123 label, as the API validates it (discovery validatePorts, core ValidateEndpointPort):
        # it becomes the SRV label _<name> and must be one label.
        name=r.dns_name(entry.get("name"), f"{field}.name", DNS1123_LABEL, "port name (DNS-1123 label)", required=False),
        protocol=r.protocol(entry.get("protocol"), f"{field}.protocol"),
        port=r.port(entry.get("port"), f"{field}.port"),
    )


def _endpoint_ports(r: Reader, value: Any, field: str, port_required: bool) -> tuple[EndpointPort, ...]:
    ports = (_endpoint_port(r, raw, f"{field}[{i}]", port_required) for i, raw in enumerate(r.sequence(value, field)))
    return tuple(p for p in ports if p is not None)


def _target_pod(r: Reader, raw: Any, field: str, namespace: str) -> tuple[str, str]:
    """(pod name, pod namespace) of a targetRef that points at a Pod, else ("", "")."""
    ref = r.mapping(raw, field)
    if ref and ref.get("kind", "Pod") == "Pod":
        return r.string(ref.get("name"), f"{field}.name"), r.string(ref.get("namespace"), f"{field}.namespace") or namespace
    return "", ""


def endpoints(r: Reader, data: dict[str, Any]) -> Endpoints:
    namespace, name, _ = metadata(r, data, True, DNS1123_SUBDOMAIN, "Endpoints name (DNS-1123 subdomain)")
    subsets = []
    for i, raw in enumerate(r.sequence(data.get("subsets"), "subsets")):
        field = f"subsets[{i}]"
        subset = r.mapping(raw, field)
        addresses = [
            _endpoints_address(r, a, f"{field}.addresses[{j}]", namespace, True)
            for j, a in enumerate(r.sequence(subset.get("addresses"), f"{field}.addresses"))
        ]
        addresses += [
            _endpoints_address(r, a, f"{field}.notReadyAddresses[{j}]", namespace, False)
            for j, a in enumerate(r.sequence(subset.get("notReadyAddresses"), f"{field}.notReadyAddresses"))
        ]
        ports = _endpoint_ports(r, subset.get("ports"), f"{field}.ports", port_required=True)
        subsets.append(EndpointsSubset(tuple(a for a in addresses if a is not None), ports))
    return Endpoints(namespace, name, tuple(subsets), r.source)


def _endpoints_address(r: Reader, raw: Any, field: str, namespace: str, ready: bool) -> EndpointAddress | None:
    entry = r.mapping(raw, field)
    pod_name, pod_namespace = _target_pod(r, entry.get("targetRef"), f"{field}.targetRef", namespace)
    ip = _endpoint_ip(r, entry.get("ip"), f"{field}.ip", None)
    if not ip:
        return None
    return EndpointAddress(
        ip=ip,
        hostname=r.hostname(entry.get("hostname"), f"{field}.hostname"),
        pod_name=pod_name,
        pod_namespace=pod_namespace,
        node_name=r.string(entry.get("nodeName"), f"{field}.nodeName"),
        ready=ready,
        serving=ready,
        terminating=False,
    )


def endpoint_slice(r: Reader, data: dict[str, Any]) -> EndpointSlice | None:
    namespace, name, meta = metadata(r, data, True, DNS1123_SUBDOMAIN, "EndpointSlice name (DNS-1123 subdomain)")
    labels = dict(r.labels(meta.get("labels"), "metadata.labels"))
    address_type = r.string(data.get("addressType"), "addressType") or "IPv4"
    if address_type not in ("IPv4", "IPv6", "FQDN"):
        raise r.fail("addressType", f"unknown address type {shown(address_type)}")
    if address_type == "FQDN":  # deprecated and never read by CoreDNS
        r.warn("addressType", "FQDN EndpointSlices are ignored")
        return None
    endpoints: list[EndpointAddress] = []
    for i, raw in enumerate(r.sequence(data.get("endpoints"), "endpoints")):
        endpoints.extend(_slice_endpoint(r, raw, f"endpoints[{i}]", namespace, 6 if address_type == "IPv6" else 4))
    ports = _endpoint_ports(r, data.get("ports"), "ports", port_required=False)
    return EndpointSlice(namespace, name, labels.get(SERVICE_NAME_LABEL, ""), address_type, tuple(endpoints), ports, r.source)


def _slice_endpoint(r: Reader, raw: Any, field: str, namespace: str, family: int) -> list[EndpointAddress]:
    entry = r.mapping(raw, field)
    conditions = r.mapping(entry.get("conditions"), f"{field}.conditions")
    # discovery.k8s.io/v1: "ready" nil means ready (CoreDNS C15); "serving" nil means
    # the same as ready; "terminating" nil means false.
    ready_raw = conditions.get("ready")
    ready = True if ready_raw is None else r.flag(ready_raw, f"{field}.conditions.ready")
    serving_raw = conditions.get("serving")
    serving = ready if serving_raw is None else r.flag(serving_raw, f"{field}.conditions.serving")
    terminating = r.flag(conditions.get("terminating"), f"{field}.conditions.terminating")
    pod_name, pod_namespace = _target_pod(r, entry.get("targetRef"), f"{field}.targetRef", namespace)
    node_name = r.string(entry.get("nodeName"), f"{field}.nodeName")
    if not node_name:  # discovery.k8s.io/v1beta1 kept it in topology
        node_name = r.string(r.mapping(entry.get("topology"), f"{field}.topology").get("kubernetes.io/hostname"), f"{field}.topology")
    hostname = r.hostname(entry.get("hostname"), f"{field}.hostname")
    addresses = r.sequence(entry.get("addresses"), f"{field}.addresses")
    if not addresses:
        raise r.fail(f"{field}.addresses", "required: at least one address")
    ips = [_endpoint_ip(r, a, f"{field}.addresses[{j}]", family) for j, a in enumerate(addresses)]
    return [
        EndpointAddress(
            ip=ip,
            hostname=hostname,
            pod_name=pod_name,
            pod_namespace=pod_namespace,
            node_name=node_name,
            ready=ready,
            serving=serving,
            terminating=terminating,
        )
        for ip in ips
        if ip
    ]


def _endpoint_ip(r: Reader, value: Any, field: str, family: int | None) -> str:
    """An endpoint's address; "" (left out, with a warning) for one the API server refuses:
    of the other family than the slice's addressType, or special (ValidateEndpointIP)."""
    ip = r.ip(value, field)  # canonical text: IPv6 has a colon, IPv4 none
    if family is not None and (6 if ":" in ip else 4) != family:
        r.warn(field, f"{ip} is not an IPv{family} address, as the slice's addressType says{LEFT_OUT}")
        return ""
    return not_special(r, ip, field)
