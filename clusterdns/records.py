"""Answer records as the resolver hands them to the wire codec: names, RRs, rdata."""

from __future__ import annotations

import socket
from typing import Any

from clusterdns.codes import AAAA, A
from clusterdns.frozen import frozen
from clusterdns.names import split


@frozen
class Name:
    """A domain name in an answer. `in_zone`: relative to the zone of the question,
    written with the question's spelling of that zone (CoreDNS echoes it, spec S1)."""

    labels: tuple[str, ...]
    in_zone: bool = True

    def text(self, zone: str) -> str:
        return ".".join(self.labels + (split(zone) if self.in_zone else ())) + "."


@frozen
class SOAData:
    mname: Name
    rname: Name
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@frozen
class RR:
    """One record. `owner` None means the question name exactly as asked.

    rdata by type: A/AAAA packed address bytes; CNAME/PTR/NS a Name; SRV a tuple
    (priority, weight, port, Name); TXT a tuple of byte strings; SOA an SOAData;
    any other type raw uncompressed rdata bytes.
    """

    owner: Name | None
    rtype: int
    ttl: int
    rdata: Any


def pack_address(ip: str) -> tuple[int, bytes]:
    """(A or AAAA, the address as rdata) for an address in text form."""
    if ":" in ip:
        return AAAA, socket.inet_pton(socket.AF_INET6, ip)
    return A, socket.inet_pton(socket.AF_INET, ip)


def address_rr(owner: Name | None, ip: str, ttl: int) -> RR:
    rtype, packed = pack_address(ip)
    return RR(owner, rtype, ttl, packed)
