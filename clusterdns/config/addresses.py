"""Addresses, ports, zones and access lists as the settings take them."""

from __future__ import annotations

import functools
import ipaddress

from clusterdns.errors import ConfigError, shown
from clusterdns.names import split, unfit

Address = tuple[str, int]

DEFAULT_PORT = 5353
HEALTH_PORT, READY_PORT, METRICS_PORT = 8080, 8181, 9153  # CoreDNS's health, ready and prometheus plugins


def parse_hostport(text: str, default_port: int = DEFAULT_PORT) -> Address:
    """Parse `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or `:PORT` into (host, port); the host in its
    canonical form (`0::1` is `::1`, localhost is 127.0.0.1), so one address has one spelling."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"bad address {shown(text)}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad address {shown(text)}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, text)
        host = host or "127.0.0.1"
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"bad address {shown(text)}: {shown(host)} is not an IP address") from None
        host = "127.0.0.1"
    return host, port


def hostport_text(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets: what parse_hostport reads back."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"bad port in {shown(whole)}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"port out of range in {shown(whole)}")
    return port


def endpoint(text: str, default_port: int) -> Address | None:
    """An HTTP endpoint address, or None for `none`."""
    return None if text.strip().lower() == "none" else parse_hostport(text, default_port)


def normalize_zone(text: str) -> str:
    """Lower-case, no trailing dot; `.` stays the root. A name no query could carry (an empty
    label, a label over 63 octets, over 255 in all: RFC 1035 2.3.4) is refused."""
    zone = text.strip().lower().rstrip(".")
    if not zone:
        raise ConfigError("empty zone name")
    why = unfit(split(zone), 0)
    if why:
        raise ConfigError(f"zone {shown(text)}: not a valid domain name: {why}")
    return zone


def is_reverse_zone(zone: str) -> bool:
    return zone == "in-addr.arpa" or zone.endswith(".in-addr.arpa") or zone == "ip6.arpa" or zone.endswith(".ip6.arpa")


@functools.lru_cache(maxsize=8)
def _acl_networks(acl: tuple[str, ...]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], bool]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in acl if cidr != "*"), "*" in acl


@functools.lru_cache(maxsize=4096)
def peer_in(peer: str, acl: tuple[str, ...]) -> bool:
    """Is a client address in a list of CIDRs (--allow-forward, --transfer-to)? `*` is everyone;
    an IPv4 client seen as ::ffff:a.b.c.d matches IPv4 networks."""
    nets, everyone = _acl_networks(acl)
    if everyone:
        return True
    try:
        ip = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # type: ignore[union-attr]
        ip = ip.ipv4_mapped  # type: ignore[union-attr]
    return any(ip in net for net in nets)


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise ConfigError(f"bad CIDR {shown(text)}: {e}") from None
