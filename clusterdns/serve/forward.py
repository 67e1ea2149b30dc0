"""The upstreams as CoreDNS's `forward` plugin serves them: every name no earlier source answered
goes to one group of upstreams (upstream/forwarder.py), with its client ACL and RFC 8482's ANY."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from clusterdns.codes import ANY, HINFO, REFUSED, SERVFAIL, rcode_of, type_text
from clusterdns.names import under, zone_labels
from clusterdns.ops.counters import CounterKey, key
from clusterdns.records import RR
from clusterdns.serve.request import PASS, Pass, Request, Result, may_forward
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder, Looked, Overloaded
from clusterdns.wire import assemble, encode, error_reply, truncate_forwarded

errors_log = logging.getLogger("clusterdns.query")  # printed as is, like CoreDNS's errors plugin

# RFC 8482 4.2: ANY for a name we would forward gets one synthesized HINFO, CPU "RFC8482",
# OS empty, instead of whatever the upstream has (an ANY reply is an amplifier's payload).
RFC8482_HINFO = (RR(None, HINFO, 3600, b"\x07RFC8482\x00"),)


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
        if self.except_zones and under(query.labels, self.except_zones):
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
        step = self.forwarder.from_cache(request.wire, query)
        if step.__class__ is bytes:
            # A fresh cache hit: answered now, not through the event loop (not kept by the
            # listeners: its TTLs count down).
            h.last = key(query.qtype, rcode_of(step), self.plugin, request.do)  # type: ignore[arg-type]
            reply = truncate_forwarded(step, request.wire, query, request.limit)  # type: ignore[arg-type]
            if reply is step and self.forwarder.keepable:
                h.hit = (self.forwarder.fresh, self.forwarder.cache)  # whole: the listener may keep it (timed.py)
            return reply
        return self._forwarded(request, step)  # type: ignore[arg-type]

    async def _forwarded(self, request: Request, looked: Looked) -> tuple[bytes, CounterKey]:
        wire, query = request.wire, request.query
        try:
            reply = await self.forwarder.forward(wire, tcp=request.tcp, parsed=query, looked=looked)
        except Overloaded:
            # --max-concurrent exchanges outstanding: REFUSED at once, as CoreDNS's max_concurrent
            # (the Forwarder counts these in `rejects`).
            return error_reply(wire, REFUSED, query.qname_end + 4, query.edns), key(query.qtype, REFUSED, self.plugin, request.do)
        if reply is None:
            # CoreDNS's errors plugin line for a failed lookup.
            errors_log.error("[ERROR] plugin/errors: 2 %s. %s: no upstream answered: each refused, was unreachable or too slow (%s)",
                             ".".join(query.labels), type_text(query.qtype), ", ".join(f"{h}:{p}" for h, p in self.forwarder.upstreams))
            return error_reply(wire, SERVFAIL, query.qname_end + 4, query.edns), key(query.qtype, SERVFAIL, self.plugin, request.do)
        return truncate_forwarded(reply, wire, query, request.limit), key(query.qtype, rcode_of(reply), self.plugin, request.do)
