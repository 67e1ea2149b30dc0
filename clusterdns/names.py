"""The cluster DNS name grammar: owner names, dashed-IP labels, reverse names, pod names."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from clusterdns.model import EndpointAddress

SVC = "svc"
NS_NAME = "ns.dns"  # CoreDNS's name for the zone's own nameserver (plugin/kubernetes/ns.go)
MAX_LABEL = 63  # octets in a label (RFC 1035 2.3.4)
MAX_NAME = 255  # octets in a name on the wire, length octets and root included (RFC 1035 2.3.4)
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS-1123 label, lower case


def is_dns1123_label(text: str) -> bool:
    """A name a Namespace (or a Pod's hostname) can have: at most 63 of a-z, 0-9 and '-', not at either end."""
    return _LABEL.fullmatch(text) is not None


def service_name(name: str, namespace: str) -> str:
    """`<svc>.<ns>.svc`, relative to the zone (spec S3)."""
    return f"{name}.{namespace}.{SVC}"


def external_target(external_name: str) -> str:
    """The CNAME target of an ExternalName Service: the name without its root dot, lower
    case; "" when there is nothing to serve: no name, or an IP address, which CoreDNS
    does not serve (coredns/coredns#2164, spec C10)."""
    target = external_name.rstrip(".").lower()
    try:
        ipaddress.ip_address(target)
    except ValueError:
        return target
    return ""


def dashed_ip(ip: str) -> str:
    """An IP as one DNS label, as CoreDNS writes endpoint names (C7).

    IPv4 dots become dashes; IPv6 colons become dashes, and a trailing dash gets a
    `0` appended so the label does not end in `-` (`fd00::` -> `fd00--0`).
    """
    if "." in ip:
        return ip.replace(".", "-")
    label = ip.replace(":", "-")
    return label + "0" if label.endswith("-") else label


def endpoint_name(addr: EndpointAddress, endpoint_pod_names: bool) -> str:
    """An endpoint's hostname label (spec S19, CoreDNS endpointHostname).

    The endpoint `hostname` if set; with `endpoint_pod_names`, the targetRef Pod name when
    it can be one label (CoreDNS keeps only names under 64 characters, object/endpoint.go;
    a Pod name may also hold dots, which would make it several labels); otherwise the
    dashed IP.
    """
    if addr.hostname:
        return addr.hostname.lower()
    if endpoint_pod_names and addr.pod_name and _LABEL.fullmatch(pod := addr.pod_name.lower()):
        return pod
    return dashed_ip(addr.ip)


def ip_from_pod_label(label: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Read a pod-name label back into an address, as CoreDNS's findPods does (C9).

    Exactly three dashes and no `--` means IPv4 (`10-244-1-10`); anything else is read
    as IPv6 with every dash a colon (`1234-abcd--1`). None when it is not an address.
    """
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def split(name: str) -> tuple[str, ...]:
    """Labels of a relative or absolute name; `""` and `.` have none."""
    name = name.rstrip(".")
    return tuple(name.split(".")) if name else ()


def zone_labels(zones: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Zone names ("example.org", "Example.org.", ".") as lower-case labels; "." is the root, ()."""
    return tuple(split(zone.lower()) for zone in zones)


def under(labels: tuple[str, ...], zones: Iterable[tuple[str, ...]]) -> bool:
    """Is the name (lower-case labels) inside any of the zones (labels; () is the root)?
    CoreDNS's plugin.Zones.Matches(name) != "" (plugin/normalize.go), label-wise."""
    return any(len(z) <= len(labels) and labels[len(labels) - len(z) :] == z for z in zones)


def octets(labels: tuple[str, ...]) -> int:
    """The wire length of a relative name's labels: a length octet and the text of each."""
    return sum(len(label) + 1 for label in labels)


def unfit(labels: tuple[str, ...], room: int) -> str:
    """Why a name cannot go on the wire below a zone whose labels take `room` octets
    (RFC 1035 2.3.4: no empty label inside a name, none over 63 octets, 255 in all), or "" when it can."""
    if "" in labels:
        return "an empty label"
    for label in labels:
        if len(label) > MAX_LABEL:
            return f"label {label[:16]}... has {len(label)} octets (at most {MAX_LABEL})"
    total = octets(labels) + room + 1
    if total > MAX_NAME:
        return f"the name has {total} octets (at most {MAX_NAME})"
    return ""


def port_labels(port_name: str, protocol: str) -> tuple[str, str]:
    """`_<port>._<proto>`, the two labels an SRV name puts before its Service (spec S5, S13)."""
    return f"_{port_name.lower()}", f"_{protocol.lower()}"


def reverse_owner(ip: str) -> str:
    """The PTR owner of an address (S8, S9), without ipaddress objects (hot at load time)."""
    if ":" not in ip:
        return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    nibbles = socket.inet_pton(socket.AF_INET6, ip).hex()
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


@dataclass(frozen=True, slots=True)
class NameRequest:
    """A name below a cluster zone as CoreDNS's parseRequest reads it (plugin/kubernetes/parse.go):
    `[_port._proto.|endpoint.]service.namespace.svc|pod`. `valid` False is an invalid request
    (NXDOMAIN); empty fields were not in the name. For `pod` names, `service` holds the Pod
    label (the dashed address)."""

    valid: bool = True
    pod_or_svc: str = ""  # "svc", "pod", or "" for the apex and `svc`/`pod` themselves
    namespace: str = ""
    service: str = ""
    endpoint: str = ""
    port: str = ""  # without its underscore
    protocol: str = ""  # without its underscore


def parse_name(rel: tuple[str, ...]) -> NameRequest:
    """Read a relative name (lower-case labels below the zone) as CoreDNS's parseRequest does."""
    if not rel or rel in ((SVC,), ("pod",)):
        return NameRequest()
    kind = rel[-1]
    if kind not in (SVC, "pod"):
        return NameRequest(False)
    rest = rel[:-1]
    if len(rest) > 4:
        return NameRequest(False)  # more than two labels before the Service: too long (NXDOMAIN)
    namespace = rest[-1] if rest else ""
    service = rest[-2] if len(rest) >= 2 else ""
    if len(rest) == 3:
        return NameRequest(True, kind, namespace, service, endpoint=rest[0])
    if len(rest) == 4:
        return NameRequest(True, kind, namespace, service, port=rest[0].removeprefix("_"), protocol=rest[1].removeprefix("_"))
    return NameRequest(True, kind, namespace, service)


def address_from_reverse(labels: tuple[str, ...]) -> str:
    """dnsutil.ExtractAddressFromReverse (plugin/pkg/dnsutil/reverse.go), which the
    kubernetes, hosts and k8s_external plugins read PTR questions with: the address a full
    in-addr.arpa or ip6.arpa name (lower-case labels) stands for, in Go's text form (an
    IPv4-mapped IPv6 address prints as IPv4), or ""."""
    if len(labels) < 3 or any("." in label for label in labels):
        return ""
    rest, suffix = labels[:-2][::-1], labels[-2:]
    try:
        if suffix == ("in-addr", "arpa"):
            return str(ipaddress.IPv4Address(".".join(rest)))
        if suffix == ("ip6", "arpa"):
            # Four labels make a group; labels past a multiple of four are dropped (reverse6).
            ip = ipaddress.IPv6Address(":".join("".join(rest[i : i + 4]) for i in range(0, len(rest) - 3, 4)))
            return str(ip.ipv4_mapped or ip)
    except ValueError:
        pass
    return ""
