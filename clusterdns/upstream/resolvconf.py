"""Which upstreams: --upstream as given, or the nameservers of /etc/resolv.conf less ourselves."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from clusterdns.config.addresses import Address, parse_hostport
from clusterdns.config.settings import Config

DNS_PORT = 53

# systemd-resolved's stub listener: inside a container or Pod it is not the host's resolver,
# and CoreDNS's loop plugin README tells users to point at the real upstreams instead.
SYSTEMD_RESOLVED_STUB = "127.0.0.53"


def resolve_upstreams(config: Config) -> tuple[Address, ...]:
    """--upstream as given; 'none' for no forwarding; default: /etc/resolv.conf minus ourselves."""
    if "none" in config.upstream:
        return ()
    if config.upstream:
        return tuple(parse_upstream(u) for u in config.upstream)
    return tuple(upstreams_from_resolv_conf(exclude=config.listen))


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf", exclude: Iterable[Address] = ()) -> list[Address]:
    """The `nameserver` addresses of a resolv.conf (port 53), in order, without duplicates.

    Dropped, so that we never forward to ourselves:
    - exact matches of `exclude` (our own listen addresses; 0.0.0.0 is not expanded);
    - 127.0.0.53, systemd-resolved's stub, which is not reachable the same way from a container
      (use /run/systemd/resolve/resolv.conf, which lists the real upstreams, on such hosts).
    127.0.0.11 is kept: it is Docker's embedded DNS, the right upstream inside a container.
    Scoped IPv6 (fe80::1%eth0) is skipped: we do not carry the zone index to the socket.
    A missing or unreadable file gives an empty list.
    """
    excluded = {(_canonical(host), port) for host, port in exclude}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    found: list[Address] = []
    for line in lines:
        # resolv.conf(5): "#" or ";" in the first column starts a comment; be lenient anywhere.
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2 or words[0] != "nameserver" or "%" in words[1]:
            continue
        host = _canonical(words[1])
        if not host or host == SYSTEMD_RESOLVED_STUB:
            continue
        address = (host, DNS_PORT)
        if address not in excluded and address not in found:
            found.append(address)
    return found


def parse_upstream(text: str) -> Address:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:53` -> (host, port); port 53 by default.

    Raises ConfigError on anything else.
    """
    return parse_hostport(text, default_port=DNS_PORT)


def _canonical(host: str) -> str:
    """The compressed form of an IP address ("" if it is not one), so "::1" matches "0::1"."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return ""
