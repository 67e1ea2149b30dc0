"""A Service's external addresses (spec.externalIPs, status.loadBalancer.ingress), as k8s_external serves them."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

from clusterdns.errors import ManifestError, shown
from clusterdns.objects.fields import DNS1123_SUBDOMAIN, Reader

LEFT_OUT = "; this entry is left out"
IGNORED = "; ignored"
T = TypeVar("T")


def external_addresses(r: Reader, spec: dict[str, Any], status: Any) -> tuple[str, ...]:
    """spec.externalIPs in order, then one entry per status.loadBalancer.ingress: its `ip` when
    set, else its `hostname` (CoreDNS plugin/kubernetes/object/service.go ToService).

    Only k8s_external reads these, so a bad entry costs that entry, not the Service: it is
    reported as a warning (file, document, field) and left out. Most Services have none and
    share the empty tuple.
    """
    found = [ip for i, raw in enumerate(_list(r, spec.get("externalIPs"), "spec.externalIPs")) if (ip := _external_ip(r, raw, i))]
    ingress = _list(r, _mapping(r, _mapping(r, status, "status").get("loadBalancer"), "status.loadBalancer").get("ingress"), "status.loadBalancer.ingress")
    for i, raw in enumerate(ingress):
        entry = _ingress(r, raw, f"status.loadBalancer.ingress[{i}]")
        if entry:
            found.append(entry)
    return tuple(found) if found else ()


def _external_ip(r: Reader, raw: Any, index: int) -> str:
    """One spec.externalIPs entry. The API server also refuses the special addresses that
    belong to a node (k8s.io/kubernetes pkg/apis/core/validation ValidateNonSpecialIP)."""
    field = f"spec.externalIPs[{index}]"
    ip = _ip(r, raw, field)
    return not_special(r, ip, field) if ip else ""


def not_special(r: Reader, ip: str, field: str) -> str:
    """`ip`, or "" (left out, with a warning at `field`) when the API server refuses it for an
    endpoint or an external IP (core validation ValidateEndpointIP / ValidateNonSpecialIP)."""
    special = _special(ipaddress.ip_address(ip))
    if special:
        r.warn(field, f"{ip} may not be {special}{LEFT_OUT}")
        return ""
    return ip


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why such an address is refused, or ""."""
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "in the loopback range (127.0.0.0/8, ::1/128)"
    if address.is_link_local:
        return "in the link-local range (169.254.0.0/16, fe80::/10)"
    # Go's IsLinkLocalMulticast: 224.0.0.0/24, or ffX2::/16 (any flags, link-local scope).
    packed = address.packed
    multicast = packed[:3] == b"\xe0\0\0" if address.version == 4 else (packed[0] == 0xFF and packed[1] & 0x0F == 2)
    if multicast:
        return "in the link-local multicast range (224.0.0.0/24, ff02::/10)"
    return ""


def _ingress(r: Reader, raw: Any, field: str) -> str:
    """An ingress entry: `ip` if non-empty, else `hostname` (a DNS-1123 subdomain that is not an
    IP address, as the API server's ValidateLoadBalancerStatus wants); "" when neither is usable."""
    if not isinstance(raw, dict):
        _mapping(r, raw, field)  # reports it
        return ""
    if _text(r, raw.get("ip"), f"{field}.ip"):
        return _ip(r, raw.get("ip"), f"{field}.ip")
    hostname = _text(r, raw.get("hostname"), f"{field}.hostname")
    if not hostname:
        r.warn(field, f"neither ip nor hostname{LEFT_OUT}")
        return ""
    name = hostname.strip().lower().rstrip(".")  # an FQDN may end in "."
    if _is_ip(name):
        r.warn(f"{field}.hostname", f"{shown(hostname)} must be a DNS name, not an IP address{LEFT_OUT}")
        return ""
    if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        r.warn(f"{field}.hostname", f"{shown(hostname)} is not a valid DNS name{LEFT_OUT}")
        return ""
    return name


def _lenient(r: Reader, read: Callable[[Any, str], T], value: Any, field: str, empty: T, left: str) -> T:
    """read(value, field), or `empty` with the reason as a warning (`left`: what happens to it)."""
    try:
        return read(value, field)
    except ManifestError as e:
        r.warn(field, e.problem.message + left)
        return empty


def _ip(r: Reader, value: Any, field: str) -> str:
    """The canonical text of an address, or "" with a warning."""
    return _lenient(r, r.ip, value, field, "", LEFT_OUT)


def _text(r: Reader, value: Any, field: str) -> str:
    return _lenient(r, r.string, value, field, "", LEFT_OUT)


def _list(r: Reader, value: Any, field: str) -> list[Any]:
    return _lenient(r, r.sequence, value, field, [], IGNORED)


def _mapping(r: Reader, value: Any, field: str) -> dict[str, Any]:
    return _lenient(r, r.mapping, value, field, {}, IGNORED)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
