"""The hosts entries as CoreDNS's `hosts` plugin serves them, before the cluster zones: the
snapshot's hosts table (hosts.py decides), SERVFAIL for a name it does not hold, or the
question goes on."""

from __future__ import annotations

from typing import Any

from clusterdns.codes import SERVFAIL
from clusterdns.hosts import Action, answer
from clusterdns.serve.request import SKIP, Pass, Request, Result
from clusterdns.snapshot.table import Snapshot


class HostsEntries:
    """`hosts FILE { inline lines }`: a fixed answer per question while the snapshot (which holds
    the table, replaced when the file changes) stays the same."""

    plugin = "hosts"

    def __init__(self, handler: Any) -> None:
        self.handler = handler  # serve/handler.py's Handler: encoding, caching, counting

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass:
        if snap.hosts is None:
            return SKIP
        outcome = answer(snap.hosts, request.query.labels, request.query.qtype)
        if outcome.action is Action.NEXT:
            return SKIP  # the same for this question until the table changes, with the snapshot
        if outcome.action is Action.SERVFAIL:
            # hosts.go: "we don't have a SOA" for an NXDOMAIN, so SERVFAIL, written bare
            return self.handler.error(request, SERVFAIL, self.plugin)  # type: ignore[no-any-return]
        return self.handler.local(snap, request, outcome.answer, self.plugin)  # type: ignore[no-any-return]
