"""Replies kept for one snapshot: a listener's replies to exact query bytes, the handler's
encoded answers to questions. Dropped whole when the snapshot is replaced, or when full."""

from __future__ import annotations

from typing import Any

from clusterdns.serve.timed import known_tail

LIMIT = 100_000  # entries per cache; all are dropped when it is reached


class ReplyCache:
    """A dict that belongs to one snapshot (compared by identity: a reload makes a new one)."""

    __slots__ = ("snapshot", "table")

    def __init__(self) -> None:
        self.snapshot: Any = None
        self.table: dict[bytes, Any] = {}

    def of(self, snapshot: Any) -> dict[bytes, Any]:
        """The table for `snapshot`: a new, empty dict when the snapshot changed (a running
        _udpbatch.serve() keeps reading the old one, which stays as it was)."""
        if snapshot is not self.snapshot:
            self.snapshot, self.table = snapshot, {}
        return self.table

    def kept(self, snapshot: Any, query: bytes) -> tuple[Any, bytes | None]:
        """What is kept for `query` (None: nothing) and the reply less its ID to send now: a
        fixed reply as kept, a shuffled or timed one made now (timed.py); None for a timed one
        no longer fresh, which the handler answers again."""
        known = self.of(snapshot).get(query[2:])
        if known is None:
            return None, None
        return known, known[0] if len(known) == 2 else known_tail(known)

    def put(self, snapshot: Any, key: bytes, value: Any) -> None:
        table = self.of(snapshot)
        if len(table) >= LIMIT:
            table.clear()
        table[key] = value
