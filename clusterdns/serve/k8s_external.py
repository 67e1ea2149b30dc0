"""A Service's external addresses under another zone, as CoreDNS's `k8s_external` serves them
before the cluster zones: external.py decides, and LoadBalancer hostnames are looked up
through this server's own chain."""

from __future__ import annotations

from typing import Any

from clusterdns.codes import TC
from clusterdns.external import ExternalAnswer, ExternalOptions, answer
from clusterdns.ops.counters import CounterKey, key
from clusterdns.records import RR
from clusterdns.serve.kubernetes import raw_records
from clusterdns.serve.request import PASS, SKIP, Pass, Request, Result
from clusterdns.snapshot.table import Snapshot
from clusterdns.wire import assemble, encode


class ExternalNames:
    """`k8s_external ZONES { apex, ttl, headless, fallthrough }`."""

    plugin = "k8s_external"

    def __init__(self, handler: Any, options: ExternalOptions) -> None:
        self.handler = handler  # serve/handler.py's Handler: encoding, caching, counting, ask()
        self.options = options

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass:
        query = request.query
        found = answer(snap, self.options, query.labels, query.qtype)
        if found is None:
            return SKIP  # not in a k8s_external zone
        if found.fallthrough:
            # An NXDOMAIN that may go on (fallthrough): ours only if no later source answers.
            self.handler.last = key(query.qtype, found.rcode, self.plugin, request.do)
            body = encode(found.rcode, (found.answer, found.authority, found.additional), request.wire, query, found.zone_labels)
            request.fallthrough, request.fallback = True, assemble(body, request.wire, query, request.limit)
            return PASS
        if isinstance(found, ExternalAnswer) and found.lookups:
            return self._looked_up(found, request)
        return self.handler.local(snap, request, found, self.plugin)  # type: ignore[no-any-return]

    async def _looked_up(self, found: ExternalAnswer, request: Request) -> tuple[bytes, CounterKey]:
        """A CNAME or SRV to a LoadBalancer hostname: the hostname's records from our own chain
        go where CoreDNS puts them (msg_to_dns.go), and its TC bit with them."""
        sections = [list(found.answer), list(found.authority), list(found.additional)]
        inserts: dict[tuple[int, int], list[RR]] = {}
        truncated = False
        for lookup in found.lookups:
            msg = await self.handler.ask(lookup.name, lookup.qtype)
            if msg is None:
                continue  # a failed lookup adds nothing
            inserts.setdefault((lookup.section, lookup.position), []).extend(raw_records(msg.answer))
            truncated |= lookup.copy_tc and bool(msg.flags & TC)
        merged = tuple(tuple(_merge(records, inserts, index)) for index, records in enumerate(sections))
        query = request.query
        body = encode(found.rcode, merged, request.wire, query, found.zone_labels, tc=truncated, plugin=self.plugin)
        return assemble(body, request.wire, query, request.limit), key(query.qtype, found.rcode, self.plugin, request.do)


def _merge(records: list[RR], inserts: dict[tuple[int, int], list[RR]], section: int) -> list[RR]:
    """`records` with each Lookup's records after the first `position` of them (Lookup's rule)."""
    out: list[RR] = []
    for position in range(len(records) + 1):
        out += inserts.get((section, position), [])
        if position < len(records):
            out.append(records[position])
    return out

