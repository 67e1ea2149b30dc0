"""The answer chain's sources, in CoreDNS's plugin order: the cluster zones (`kubernetes`), then
the upstreams (`forward`). Each answers a question, or passes it on (PASS)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from clusterdns.codes import ANY, HINFO, REFUSED, SERVFAIL, TC, rcode_of, type_text
from clusterdns.ops.counters import CounterKey, key
from clusterdns.records import RR, Name
from clusterdns.resolver import Answer, resolve
from clusterdns.serve import transfer
from clusterdns.serve.chain import zone_labels
from clusterdns.serve.request import PASS, SKIP, Pass, Request, Result, may_forward
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder, Overloaded
from clusterdns.wire import assemble, encode, error_reply, truncate_forwarded

log = logging.getLogger("clusterdns")
errors_log = logging.getLogger("clusterdns.query")  # printed as is, like CoreDNS's errors plugin

# RFC 8482 4.2: ANY for a name we would forward gets one synthesized HINFO, CPU "RFC8482",
# OS empty, instead of whatever the upstream has (an ANY reply is an amplifier's payload).
RFC8482_HINFO = (RR(None, HINFO, 3600, b"\x07RFC8482\x00"),)


class ClusterZones:
    """The zones of the manifests (CoreDNS's `kubernetes` plugin): resolve() on the snapshot."""

    plugin = "kubernetes"

    def __init__(self, handler: Any) -> None:
        self.handler = handler  # serve/handler.py's Handler: encoding, caching, counting
        config = handler.config
        self.fallthrough = tuple(tuple(z.split(".")) if z != "." else () for z in config.fallthrough_zones)
        self.transfer_to = config.transfer_to

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass:
        h, query = self.handler, request.query
        try:
            answer = resolve(snap, query.labels, query.qtype, self.fallthrough)
        except Exception:  # a resolver bug must cost one SERVFAIL, not the server (waitress's rule)
            log.exception("resolver failed on %s", ".".join(query.labels))
            h.panics += 1
            return h.error(request, SERVFAIL)  # type: ignore[no-any-return]
        if answer is None:
            return SKIP  # not ours, now or for this snapshot: straight past us next time
        if answer.fallthrough:
            # --fallthrough: the next sources may answer instead; our own NXDOMAIN if none does.
            # It is kept out of the caches, which every client shares.
            h.last = key(query.qtype, answer.rcode, self.plugin, request.do)
            reply = encode(answer.rcode, (answer.answer, answer.authority, answer.additional), request.wire, query, answer.zone_labels)
            request.fallthrough, request.fallback = True, assemble(reply, request.wire, query, request.limit)
            return PASS
        if answer.chase:
            return self._chase(answer, request)
        return h.local(snap, request, answer)  # type: ignore[no-any-return]

    def transfer(self, snap: Snapshot, request: Request) -> bytes | list[bytes]:
        """AXFR/IXFR of a forward zone's apex, over TCP, to --transfer-to clients only (C12)."""
        h, query = self.handler, request.query
        zone = next((z for z in snap.forward_zones if z == query.labels), None)
        if zone is None or not request.tcp or not transfer.allowed(request.peer, self.transfer_to):
            if zone is not None and request.tcp:
                log.warning("zone transfer of %s refused to %s (not in --transfer-to)", ".".join(zone), request.peer)
            return h.error(request, REFUSED)  # type: ignore[no-any-return]
        h.last = key(query.qtype, 0, "transfer")
        log.info("zone transfer of %s (serial %d) to %s", ".".join(zone), snap.serial, request.peer)
        return transfer.messages(snap, request.wire, query, len(zone))

    async def _chase(self, answer: Answer, request: Request) -> tuple[bytes, CounterKey]:
        """CNAME to a name outside our zones: append what the upstream says (C10, S18)."""
        h, query = self.handler, request.query
        records: tuple[RR, ...] = ()
        truncated = False
        upstreams = h.upstreams_for(answer.chase) if answer.chase else None
        if upstreams is not None and upstreams.upstreams and answer.chase:
            msg = await upstreams.lookup(answer.chase, query.qtype)
            if msg is not None:
                truncated = bool(msg.flags & TC)
                records = tuple(_raw_records(msg.answer))
        reply = encode(answer.rcode, (answer.answer + records, (), ()), request.wire, query, answer.zone_labels, tc=truncated)
        return assemble(reply, request.wire, query, request.limit), key(query.qtype, answer.rcode, self.plugin, request.do)


class Upstream:
    """A group of upstreams (CoreDNS's `forward . ADDR...` of a server block): every name no
    earlier source answered, except those under `except_zones` (forward's `except`)."""

    plugin = "forward"

    def __init__(self, handler: Any, forwarder: Forwarder, except_zones: Sequence[str] = ()) -> None:
        self.handler = handler
        self.forwarder = forwarder
        self.allow = tuple(handler.config.allow_forward)
        self.except_zones = zone_labels(except_zones)

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass:
        h, query = self.handler, request.query
        if not self.forwarder.upstreams:
            return PASS  # no forward plugin: the handler answers REFUSED, as CoreDNS does (C12)
        if self.except_zones and any(query.labels[len(query.labels) - len(z) :] == z for z in self.except_zones if len(z) <= len(query.labels)):
            # forward.go match(): an `except` name goes to the next plugin; with none, SERVFAIL.
            return h.error(request, SERVFAIL, self.plugin)  # type: ignore[no-any-return]
        if not may_forward(request.peer, self.allow):
            # Not an open resolver: only --allow-forward clients get other names looked up.
            return PASS if request.fallthrough else h.error(request, REFUSED, self.plugin)
        if query.qtype == ANY:
            if request.fallthrough:
                return PASS
            h.last = key(ANY, 0, "any", request.do)
            reply = encode(0, (RFC8482_HINFO, (), ()), request.wire, query, 0, aa=False)
            return assemble(reply, request.wire, query, request.limit)
        return self._forwarded(request)

    async def _forwarded(self, request: Request) -> tuple[bytes, CounterKey]:
        wire, query = request.wire, request.query
        try:
            reply = await self.forwarder.forward(wire, tcp=request.tcp, parsed=query)
        except Overloaded:
            # --max-concurrent exchanges outstanding: REFUSED at once, as CoreDNS's max_concurrent
            # (the Forwarder counts these in `rejects`).
            return error_reply(wire, REFUSED, query.qname_end + 4, query.edns), key(query.qtype, REFUSED, self.plugin, request.do)
        if reply is None:
            # CoreDNS's errors plugin line for a failed lookup.
            errors_log.error("[ERROR] plugin/errors: 2 %s. %s: no upstream answered within the deadline (%s)",
                             ".".join(query.labels), type_text(query.qtype), ", ".join(f"{h}:{p}" for h, p in self.forwarder.upstreams))
            return error_reply(wire, SERVFAIL, query.qname_end + 4, query.edns), key(query.qtype, SERVFAIL, self.plugin, request.do)
        return truncate_forwarded(reply, wire, query, request.limit), key(query.qtype, rcode_of(reply), self.plugin, request.do)


def _raw_records(rrsets: Any) -> list[RR]:
    out = []
    for rrset in rrsets:
        owner = Name(tuple(label.decode("latin-1").lower() for label in rrset.name.labels if label), in_zone=False)
        for rd in rrset:
            out.append(RR(owner, rrset.rdtype, rrset.ttl, rd.to_wire()))
    return out
