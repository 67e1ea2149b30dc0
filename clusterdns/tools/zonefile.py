"""The snapshot as RFC 1035 master-file text: `clusterdns export-zone`, record listings."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from clusterdns.codes import AAAA, CNAME, NS, PTR, SOA, SRV, TXT, A, type_text
from clusterdns.config.addresses import is_reverse_zone
from clusterdns.records import RR, SOAData
from clusterdns.snapshot.table import Snapshot


def rdata_text(rr: RR, zone: str) -> str:
    data = rr.rdata
    if rr.rtype in (A, AAAA):
        return ipaddress.ip_address(data).compressed
    if rr.rtype in (CNAME, PTR, NS):
        return data.text(zone)
    if rr.rtype == SRV:
        prio, weight, port, target = data
        return f"{prio} {weight} {port} {target.text(zone)}"
    if rr.rtype == TXT:
        return " ".join('"' + s.decode("latin-1").replace("\\", "\\\\").replace('"', '\\"') + '"' for s in data)
    if rr.rtype == SOA:
        soa: SOAData = data
        return f"{soa.mname.text(zone)} {soa.rname.text(zone)} {soa.serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum}"
    return "\\# %d %s" % (len(data), data.hex())  # RFC 3597 generic form


def rr_line(owner: str, rr: RR, zone: str) -> str:
    return f"{owner}\t{rr.ttl}\tIN\t{type_text(rr.rtype)}\t{rdata_text(rr, zone)}"


def _owner(relative: str, zone: str) -> str:
    return f"{relative}.{zone}." if relative else f"{zone}."


def forward_records(snap: Snapshot, zone: str) -> Iterator[tuple[str, RR]]:
    """(owner, record) for every record of a forward zone, apex first, then sorted by name."""
    yield from _apex(snap, zone)
    names = set(snap.entries) | {name for name, _ in snap.static}
    for relative in sorted(names, key=_sort_key):
        for rtype in (A, AAAA, CNAME, SRV, TXT):
            for rr in snap.rrset(relative, rtype)[0]:
                yield _owner(relative, zone), rr


def reverse_records(snap: Snapshot, zone: str) -> Iterator[tuple[str, RR]]:
    """(owner, record) for a reverse zone: SOA, NS, and the PTRs under it."""
    yield from _apex(snap, zone)
    suffix = "." + zone
    for owner in sorted(snap.ptr_targets, key=_sort_key):
        if owner.endswith(suffix):
            for rr in snap.ptr(owner):
                yield owner + ".", rr


def _apex(snap: Snapshot, zone: str) -> Iterator[tuple[str, RR]]:
    yield _owner("", zone), snap.soa()
    for rr in snap.apex_ns:
        yield _owner("", zone), rr


def _sort_key(relative: str) -> tuple[str, ...]:
    return tuple(reversed(relative.split(".")))


def export(snap: Snapshot, zone: str) -> str:
    """A master file NSD, Knot or BIND can load (RFC 1035 5)."""
    records = reverse_records(snap, zone) if is_reverse_zone(zone) else forward_records(snap, zone)
    lines = [f"; {zone} exported by clusterdns, serial {snap.serial}", f"$ORIGIN {zone}."]
    lines += [rr_line(owner, rr, zone) for owner, rr in records]
    return "\n".join(lines) + "\n"
