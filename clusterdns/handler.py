"""Wire in, wire out: route a query to the resolver or the forwarder, apply EDNS0 and sizes.

`Handler.respond` is synchronous on the hot path: it returns reply bytes straight from
the snapshot's answer cache, or a coroutine when the answer needs the network
(forwarding, or chasing an out-of-zone ExternalName target).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from clusterdns import forwarder
from clusterdns.config import Address
from clusterdns.resolver import AXFR, IXFR, NOTIMP, NXDOMAIN, REFUSED, SERVFAIL, FORMERR, Answer, resolve
from clusterdns.snapshot import RR, Name, Snapshot
from clusterdns.wire import BADVERS, IN, MAX_UDP_SIZE, FormErr, Query, Reply, assemble, encode, error_reply, parse_query, truncate_forwarded, udp_limit

log = logging.getLogger("clusterdns")

CACHE_LIMIT = 100_000  # answers kept per snapshot; cleared when full
FORWARD = "forward"  # cache marker: the name is not ours
Result = bytes | None | Coroutine[Any, Any, bytes | None]


class Handler:
    """Answers queries from the current snapshot; forwards the rest."""

    def __init__(self, snapshot: Snapshot | None = None, upstreams: Sequence[Address] = (), fallthrough: Sequence[str] = ()) -> None:
        self.current = snapshot  # replaced in one assignment by the server on every reload
        self.upstreams = tuple(upstreams)
        self.fallthrough = tuple(tuple(z.split(".")) if z != "." else () for z in fallthrough)

    def respond(self, wire: bytes, tcp: bool = False) -> Result:
        """The reply to one query (None: drop it silently)."""
        snap = self.current
        # Exact-bytes cache: the same flags, question spelling and EDNS facts always get the
        # same reply, so only the ID differs. This is most queries, and costs one dict lookup.
        seen = (snap.tcp_wire if tcp else snap.udp_wire).get(wire[2:])  # type: ignore[union-attr]
        if seen is not None:
            return wire[:2] + seen
        if len(wire) < 12 or wire[2] & 0x80:
            return None  # too short for a header, or a response: never answer those
        if wire[2] & 0x78:
            return error_reply(wire, NOTIMP)  # OPCODE other than QUERY (RFC 1035 4.1.1)
        try:
            query = parse_query(wire)
        except FormErr as e:
            return error_reply(wire, FORMERR, e.question_end)
        limit = MAX_UDP_SIZE if tcp else udp_limit(query.edns)
        entry = snap.cache.get(query.key)  # type: ignore[union-attr]
        if entry.__class__ is Reply and not (query.edns and query.edns.version) and (entry.zone_spelling is None or wire[12 : query.qname_end].endswith(entry.zone_spelling)):
            return self._send(snap, wire, assemble(entry, wire, query, limit), tcp)  # type: ignore[arg-type]
        return self._slow(snap, wire, query, tcp, limit, entry)  # type: ignore[arg-type]

    @staticmethod
    def _send(snap: Snapshot, wire: bytes, reply: bytes, tcp: bool) -> bytes:
        """Remember a locally built reply for these exact query bytes, then return it."""
        seen = snap.tcp_wire if tcp else snap.udp_wire
        if len(seen) >= CACHE_LIMIT:
            seen.clear()
        seen[wire[2:]] = reply[2:]
        return reply

    def _slow(self, snap: Snapshot, wire: bytes, query: Query, tcp: bool, limit: int, entry: object) -> Result:
        if query.edns and query.edns.version != 0:
            return error_reply(wire, BADVERS, query.qname_end + 4, query.edns)  # RFC 6891 6.1.3
        if query.qclass != IN or query.qtype in (AXFR, IXFR):
            # Only class IN; zone transfers are refused until the transfer issue (C12).
            return error_reply(wire, REFUSED, query.qname_end + 4, query.edns)
        if entry == FORWARD:
            return self._forward(wire, query, tcp, limit)
        try:
            answer = resolve(snap, query.labels, query.qtype, self.fallthrough)
        except Exception:  # a resolver bug must cost one SERVFAIL, not the server (waitress's rule)
            log.exception("resolver failed on %s", ".".join(query.labels))
            return error_reply(wire, SERVFAIL, query.qname_end + 4, query.edns)
        if answer is None:
            self._remember(snap, query.key, FORWARD)
            return self._forward(wire, query, tcp, limit)
        if answer.fallthrough and self.upstreams:
            return self._forward(wire, query, tcp, limit)
        if answer.chase:
            return self._chase(snap, answer, wire, query, tcp, limit)
        reply = encode(answer.rcode, (answer.answer, answer.authority, answer.additional), wire, query, answer.zone_labels)
        self._remember(snap, query.key, reply)
        return self._send(snap, wire, assemble(reply, wire, query, limit), tcp)

    @staticmethod
    def _remember(snap: Snapshot, key: bytes, value: object) -> None:
        if len(snap.cache) >= CACHE_LIMIT:
            snap.cache.clear()
        snap.cache[key] = value

    def _forward(self, wire: bytes, query: Query, tcp: bool, limit: int) -> Result:
        if not self.upstreams:
            # No forward plugin: names outside our zones are REFUSED, as CoreDNS does (C12).
            return error_reply(wire, REFUSED, query.qname_end + 4, query.edns)
        return self._forwarded(wire, query, tcp, limit)

    async def _forwarded(self, wire: bytes, query: Query, tcp: bool, limit: int) -> bytes | None:
        reply = await forwarder.forward(wire, self.upstreams, tcp=tcp)
        if reply is None:
            return error_reply(wire, SERVFAIL, query.qname_end + 4, query.edns)
        return truncate_forwarded(reply, wire, query, limit)

    async def _chase(self, snap: Snapshot, answer: Answer, wire: bytes, query: Query, tcp: bool, limit: int) -> bytes | None:
        """CNAME to a name outside our zones: append what the upstream says (C10, S18)."""
        records: tuple[RR, ...] = ()
        truncated = False
        if self.upstreams and answer.chase:
            msg = await forwarder.lookup(answer.chase, query.qtype, self.upstreams)
            if msg is not None:
                truncated = bool(msg.flags & 0x0200)
                records = tuple(_raw_records(msg.answer))
        reply = encode(answer.rcode, (answer.answer + records, (), ()), wire, query, answer.zone_labels, tc=truncated)
        return assemble(reply, wire, query, limit)


def _raw_records(rrsets: Any) -> list[RR]:
    out = []
    for rrset in rrsets:
        owner = Name(tuple(label.decode("latin-1").lower() for label in rrset.name.labels if label), in_zone=False)
        for rd in rrset:
            out.append(RR(owner, rrset.rdtype, rrset.ttl, rd.to_wire()))
    return out


__all__ = ["Handler", "NXDOMAIN"]
