"""The cluster zones as CoreDNS's `kubernetes` plugin answers them: resolve() on the snapshot, an
NXDOMAIN that falls through, ExternalName targets chased upstream, and zone transfers."""

from __future__ import annotations

import logging
from typing import Any

from clusterdns.codes import REFUSED, SERVFAIL, TC
from clusterdns.ops.counters import CounterKey, key
from clusterdns.records import RR, Name
from clusterdns.resolver import Answer, resolve
from clusterdns.serve import transfer
from clusterdns.serve.request import PASS, SKIP, Pass, Request, Result
from clusterdns.snapshot.table import Snapshot
from clusterdns.wire import assemble, encode

log = logging.getLogger("clusterdns")


class ClusterZones:
    """The zones of the manifests (CoreDNS's `kubernetes` plugin): resolve() on the snapshot."""

    plugin = "kubernetes"

    def __init__(self, handler: Any) -> None:
        self.handler = handler  # serve/handler.py's Handler: encoding, caching, counting
        config = handler.config
        self.transfer_to = config.transfer_to

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass:
        h, query = self.handler, request.query
        try:
            answer = resolve(snap, query.labels, query.qtype)
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
                records = tuple(raw_records(msg.answer))
        reply = encode(answer.rcode, (answer.answer + records, (), ()), request.wire, query, answer.zone_labels, tc=truncated)
        return assemble(reply, request.wire, query, request.limit), key(query.qtype, answer.rcode, self.plugin, request.do)


def raw_records(rrsets: Any) -> list[RR]:
    """dnspython RRsets (an upstream's answer) as records to encode, their names absolute."""
    out = []
    for rrset in rrsets:
        owner = Name(tuple(label.decode("latin-1").lower() for label in rrset.name.labels if label), in_zone=False)
        for rd in rrset:
            out.append(RR(owner, rrset.rdtype, rrset.ttl, rd.to_wire()))
    return out
