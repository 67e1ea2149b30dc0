"""Wire in, wire out: route a query to the resolver or the forwarder, apply EDNS0 and sizes.

`Handler.respond` is synchronous on the hot path: it returns reply bytes straight from
the snapshot's answer cache, or a coroutine when the answer needs the network
(forwarding, or chasing an out-of-zone ExternalName target).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from clusterdns import metrics, transfer
from clusterdns.forwarder import Forwarder, Overloaded
from clusterdns.config.addresses import Address, peer_in
from clusterdns.config.settings import Config
from clusterdns.codes import ANY, AXFR, BADVERS, FORMERR, HINFO, IN, IXFR, NOTIMP, OPCODE_MASK, QR, REFUSED, SERVFAIL, TC, UPDATE, type_text
from clusterdns.records import RR, Name
from clusterdns.resolver import Answer, resolve
from clusterdns.snapshot import Snapshot
from clusterdns.wire import MAX_UDP_SIZE, FormErr, Query, Reply, assemble, encode, error_reply, parse_query, truncate_forwarded, udp_limit

log = logging.getLogger("clusterdns")
errors_log = logging.getLogger("clusterdns.query")  # printed as is, like CoreDNS's errors plugin

CACHE_LIMIT = 100_000  # answers kept per snapshot; cleared when full
FORWARD = "forward"  # cache marker: the name is not ours
# RFC 8482 4.2: ANY for a name we would forward gets one synthesized HINFO, CPU "RFC8482",
# OS empty, instead of whatever the upstream has (an ANY reply is an amplifier's payload).
RFC8482_HINFO = (RR(None, HINFO, 3600, b"\x07RFC8482\x00"),)
Result = bytes | list[bytes] | None | Coroutine[Any, Any, tuple[bytes, metrics.Key]]


class Handler:
    """Answers queries from the current snapshot; forwards the rest."""

    def __init__(self, snapshot: Snapshot | None = None, config: Config | None = None, forwarder: Forwarder | None = None) -> None:
        self.current = snapshot  # replaced in one assignment by the server on every reload
        self.config = config or Config()
        self.forwarder = forwarder or Forwarder(())
        self.upstreams: Sequence[Address] = self.forwarder.upstreams
        self.fallthrough = tuple(tuple(z.split(".")) if z != "." else () for z in self.config.fallthrough_zones)
        # What the last synchronous reply was (type, rcode, plugin, DO), for the transport's
        # counters; answers that need the network return theirs with the reply instead.
        self.last: metrics.Key = metrics.key(0, 0, "")
        self.panics = 0  # answers that hit a bug (coredns_panics_total)

    def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> Result:
        """The reply to one query (None: drop it silently); `peer` is the client's address."""
        snap = self.current
        # Exact-bytes cache: the same flags, question spelling and EDNS facts always get the
        # same reply, so only the ID differs. This is most queries, and costs one dict lookup.
        seen = (snap.tcp_wire if tcp else snap.udp_wire).get(wire[2:])  # type: ignore[union-attr]
        if seen is not None:
            self.last = seen[1]
            return wire[:2] + seen[0]
        if len(wire) < 12 or wire[2] & (QR >> 8):
            return None  # too short for a header, or a response: never answer those
        if wire[2] & (OPCODE_MASK >> 8):
            return self._notimp(wire)  # OPCODE other than QUERY (RFC 1035 4.1.1)
        try:
            query = parse_query(wire)
        except FormErr as e:
            return self._error(wire, FORMERR, e.question_end)
        limit = MAX_UDP_SIZE if tcp else udp_limit(query.edns)
        entry = snap.cache.get(query.key)  # type: ignore[union-attr]
        if entry.__class__ is Reply and not (query.edns and query.edns.version) and (entry.zone_spelling is None or wire[12 : query.qname_end].endswith(entry.zone_spelling)):
            return self._send(snap, wire, query, assemble(entry, wire, query, limit), tcp)  # type: ignore[arg-type]
        return self._slow(snap, wire, query, tcp, limit, entry, peer)  # type: ignore[arg-type]

    def fixed_reply(self, snap: Snapshot, wire: bytes) -> bytes | None:
        """The reply less the ID that these exact UDP query bytes get from `snap`, if cached."""
        seen = snap.udp_wire.get(wire[2:])
        return None if seen is None else seen[0]

    def _send(self, snap: Snapshot, wire: bytes, query: Query, reply: bytes, tcp: bool) -> bytes:
        """Remember a locally built reply for these exact query bytes, then return it."""
        seen = snap.tcp_wire if tcp else snap.udp_wire
        if len(seen) >= CACHE_LIMIT:
            seen.clear()
        self.last = metrics.key(query.qtype, reply[3] & 0xF, "kubernetes", bool(query.edns and query.edns.do))
        seen[wire[2:]] = (reply[2:], self.last)
        return reply

    def _error(self, wire: bytes, rcode: int, question_end: int = 0, query: Query | None = None, plugin: str = "") -> bytes:
        edns = query.edns if query else None
        self.last = metrics.key(query.qtype if query else 0, rcode, plugin, bool(edns and edns.do))
        return error_reply(wire, rcode, question_end, edns)

    def _notimp(self, wire: bytes) -> bytes:
        """NOTIMP for an opcode we do not serve, with the question and OPT when they are readable.

        An UPDATE's question is its zone section, which must be class IN-like and type SOA
        (RFC 2136 2.3); any other is not echoed, so strict readers can parse the reply.
        """
        try:
            query: Query | None = parse_query(wire)
            end = query.qname_end + 4  # type: ignore[union-attr]
        except FormErr as e:
            query, end = None, e.question_end
        if end > 12 and wire[2] & (OPCODE_MASK >> 8) == UPDATE << 3 and (wire[end - 4 : end - 2] != b"\0\6" or wire[end - 2 : end] in (b"\0\xfe", b"\0\xff")):
            end = 0
        return self._error(wire, NOTIMP, end, query)

    def _slow(self, snap: Snapshot, wire: bytes, query: Query, tcp: bool, limit: int, entry: object, peer: str | None = None) -> Result:
        if query.edns and query.edns.version != 0:
            return self._error(wire, BADVERS, query.qname_end + 4, query)  # RFC 6891 6.1.3
        if query.qclass != IN:
            return self._error(wire, REFUSED, query.qname_end + 4, query)  # only class IN (C12)
        if query.qtype in (AXFR, IXFR):
            return self._transfer(snap, wire, query, tcp, peer)
        if entry == FORWARD:
            return self._forward(wire, query, tcp, limit, peer)
        try:
            answer = resolve(snap, query.labels, query.qtype, self.fallthrough)
        except Exception:  # a resolver bug must cost one SERVFAIL, not the server (waitress's rule)
            log.exception("resolver failed on %s", ".".join(query.labels))
            self.panics += 1
            return self._error(wire, SERVFAIL, query.qname_end + 4, query)
        if answer is None:
            self._remember(snap, query.key, FORWARD)
            return self._forward(wire, query, tcp, limit, peer)
        if answer.fallthrough and self.upstreams:
            if query.qtype != ANY and may_forward(peer, self.config.allow_forward):
                return self._forward(wire, query, tcp, limit, peer)
            # Not forwarded for this client (or ANY): our own NXDOMAIN, kept out of the caches,
            # which every client shares.
            self.last = metrics.key(query.qtype, answer.rcode, "kubernetes", bool(query.edns and query.edns.do))
            reply = encode(answer.rcode, (answer.answer, answer.authority, answer.additional), wire, query, answer.zone_labels)
            return assemble(reply, wire, query, limit)
        if answer.chase:
            return self._chase(snap, answer, wire, query, tcp, limit)
        reply = encode(answer.rcode, (answer.answer, answer.authority, answer.additional), wire, query, answer.zone_labels)
        self._remember(snap, query.key, reply)
        return self._send(snap, wire, query, assemble(reply, wire, query, limit), tcp)

    def _transfer(self, snap: Snapshot, wire: bytes, query: Query, tcp: bool, peer: str | None) -> bytes | list[bytes]:
        """AXFR/IXFR of a forward zone's apex, over TCP, to --transfer-to clients only (C12)."""
        zone = next((z for z in snap.forward_zones if z == query.labels), None)
        if zone is None or not tcp or not transfer.allowed(peer, self.config.transfer_to):
            if zone is not None and tcp:
                log.warning("zone transfer of %s refused to %s (not in --transfer-to)", ".".join(zone), peer)
            return self._error(wire, REFUSED, query.qname_end + 4, query)
        self.last = metrics.key(query.qtype, 0, "transfer")
        log.info("zone transfer of %s (serial %d) to %s", ".".join(zone), snap.serial, peer)
        return transfer.messages(snap, wire, query, len(zone), self.config.endpoint_pod_names, self.config.noendpoints)

    @staticmethod
    def _remember(snap: Snapshot, key: bytes, value: object) -> None:
        if len(snap.cache) >= CACHE_LIMIT:
            snap.cache.clear()
        snap.cache[key] = value

    def _forward(self, wire: bytes, query: Query, tcp: bool, limit: int, peer: str | None = None) -> Result:
        if not self.upstreams:
            # No forward plugin: names outside our zones are REFUSED, as CoreDNS does (C12).
            return self._error(wire, REFUSED, query.qname_end + 4, query)
        if not may_forward(peer, self.config.allow_forward):
            # Not an open resolver: only --allow-forward clients get other names looked up.
            return self._error(wire, REFUSED, query.qname_end + 4, query, "forward")
        if query.qtype == ANY:
            self.last = metrics.key(ANY, 0, "any", bool(query.edns and query.edns.do))
            reply = encode(0, (RFC8482_HINFO, (), ()), wire, query, 0, aa=False)
            return assemble(reply, wire, query, limit)
        return self._forwarded(wire, query, tcp, limit)

    async def _forwarded(self, wire: bytes, query: Query, tcp: bool, limit: int) -> tuple[bytes, metrics.Key]:
        do = bool(query.edns and query.edns.do)
        try:
            reply = await self.forwarder.forward(wire, tcp=tcp, parsed=query)
        except Overloaded:
            # --max-concurrent exchanges outstanding: REFUSED at once, as CoreDNS's max_concurrent
            # (the Forwarder counts these in `rejects`).
            return error_reply(wire, REFUSED, query.qname_end + 4, query.edns), metrics.key(query.qtype, REFUSED, "forward", do)
        if reply is None:
            # CoreDNS's errors plugin line for a failed lookup.
            errors_log.error("[ERROR] plugin/errors: 2 %s. %s: no upstream answered within the deadline (%s)",
                      ".".join(query.labels), type_text(query.qtype), ", ".join(f"{h}:{p}" for h, p in self.upstreams))
            return error_reply(wire, SERVFAIL, query.qname_end + 4, query.edns), metrics.key(query.qtype, SERVFAIL, "forward", do)
        return truncate_forwarded(reply, wire, query, limit), metrics.key(query.qtype, reply[3] & 0xF, "forward", do)

    async def _chase(self, snap: Snapshot, answer: Answer, wire: bytes, query: Query, tcp: bool, limit: int) -> tuple[bytes, metrics.Key]:
        """CNAME to a name outside our zones: append what the upstream says (C10, S18)."""
        records: tuple[RR, ...] = ()
        truncated = False
        if self.upstreams and answer.chase:
            msg = await self.forwarder.lookup(answer.chase, query.qtype)
            if msg is not None:
                truncated = bool(msg.flags & TC)
                records = tuple(_raw_records(msg.answer))
        reply = encode(answer.rcode, (answer.answer + records, (), ()), wire, query, answer.zone_labels, tc=truncated)
        return assemble(reply, wire, query, limit), metrics.key(query.qtype, answer.rcode, "kubernetes", bool(query.edns and query.edns.do))


def may_forward(peer: str | None, acl: Sequence[str]) -> bool:
    """May this client have names outside our zones forwarded (--allow-forward)?

    `peer` None is a caller inside the process (tests, tools): allowed.
    """
    return peer is None or peer_in(peer, tuple(acl))


def _raw_records(rrsets: Any) -> list[RR]:
    out = []
    for rrset in rrsets:
        owner = Name(tuple(label.decode("latin-1").lower() for label in rrset.name.labels if label), in_zone=False)
        for rd in rrset:
            out.append(RR(owner, rrset.rdtype, rrset.ttl, rd.to_wire()))
    return out
