"""Zone transfer (AXFR, IXFR as a full transfer) and DNS NOTIFY for the cluster zone.

The transfer carries what CoreDNS's `kubernetes` plugin hands its `transfer` plugin
(plugin/kubernetes/xfr.go), as snapshot/xfr.py lists it from the snapshot: SOA, NS and the
nameserver's address (TTL 0), then per Service: ClusterIP A/AAAA and one SRV per port
(weight 100) at the Service name and per named port; headless: per endpoint the Service and
endpoint A/AAAA and the named-port SRVs (weight 100 / addresses in that slice); ExternalName:
the CNAME; then SOA again (RFC 5936 2.2). Only to --transfer-to addresses; everyone else gets
REFUSED.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rdatatype

from clusterdns.codes import IXFR
from clusterdns.config.addresses import Address, peer_in
from clusterdns.records import RR
from clusterdns.snapshot.table import Snapshot
from clusterdns.snapshot.xfr import zone_records
from clusterdns.wire import Query, assemble, encode

log = logging.getLogger("clusterdns")

MESSAGE_BUDGET = 16_000  # bytes of records per transfer message (RFC 5936 allows up to 64 KiB)


def allowed(peer: str | None, acl: Sequence[str]) -> bool:
    """Is this client in --transfer-to? `*` allows everyone (CoreDNS `transfer { to * }`)."""
    return bool(acl) and peer is not None and peer_in(peer, tuple(acl))


def ixfr_serial(wire: bytes) -> int | None:
    """The serial in an IXFR query's authority SOA (RFC 1995 3), None if absent."""
    try:
        msg = dns.message.from_wire(wire)
    except Exception:
        return None
    for rrset in msg.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(rrset[0].serial)
    return None


def messages(snap: Snapshot, wire: bytes, query: Query, zone_labels: int) -> list[bytes]:
    """The reply stream: SOA first and last, records between, split into messages."""
    soa = snap.soa()
    if query.qtype == IXFR and ixfr_serial(wire) == snap.serial:
        # The secondary is current: IXFR answers with the single current SOA (RFC 1995 4).
        return [_message(wire, query, zone_labels, [soa])]
    out: list[bytes] = []
    chunk: list[RR] = [soa]
    size = 0
    for rr in zone_records(snap):
        chunk.append(rr)
        size += 64  # a conservative per-record estimate; encode() compresses
        if size >= MESSAGE_BUDGET:
            out.append(_message(wire, query, zone_labels, chunk))
            chunk, size = [], 0
    chunk.append(soa)
    out.append(_message(wire, query, zone_labels, chunk))
    return out


def _message(wire: bytes, query: Query, zone_labels: int, records: list[RR]) -> bytes:
    reply = encode(0, (tuple(records), (), ()), wire, query, zone_labels)
    return assemble(reply, wire, query, 65535)


def send_notify(targets: Sequence[Address], zone: str, serial: int) -> None:
    """Tell secondaries the zone changed (RFC 1996), from a background thread; retried a few times."""

    def notify_one(host: str, port: int) -> None:
        msg = dns.message.make_query(zone + ".", dns.rdatatype.SOA)
        msg.set_opcode(dns.opcode.NOTIFY)
        msg.flags = dns.flags.AA | dns.opcode.to_flags(dns.opcode.NOTIFY)  # the opcode lives in the flags word
        for attempt in range(3):
            try:
                dns.query.udp(msg, host, port=port, timeout=1 + attempt)
                log.info("NOTIFY %s serial %d to %s:%d acknowledged", zone, serial, host, port)
                return
            except Exception:
                continue
        log.warning("NOTIFY %s serial %d to %s:%d got no answer", zone, serial, host, port)

    for host, port in targets:
        threading.Thread(target=notify_one, args=(host, port), daemon=True, name=f"notify-{host}:{port}").start()
