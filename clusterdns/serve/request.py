"""One question on its way through the answer chain, and what a source may answer with."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from clusterdns.config.addresses import peer_in
from clusterdns.ops.counters import CounterKey
from clusterdns.wire import Query

# A synchronous reply; several messages (a zone transfer); nothing (drop the query); or a
# coroutine that gives the reply and its counter key later (the network is involved).
Result = bytes | list[bytes] | None | Coroutine[Any, Any, tuple[bytes, CounterKey]]


@dataclass(slots=True)
class Request:
    """One readable query, and what the chain has learned about it so far."""

    wire: bytes
    query: Query
    tcp: bool
    peer: str | None  # the client's address; None for a caller inside the process
    limit: int  # the largest reply this client takes
    # --fallthrough: an earlier source found NXDOMAIN but let the rest try; `fallback` is
    # its reply, sent when no later source takes the question.
    fallthrough: bool = False
    fallback: bytes | None = None
    # `rewrite name`: the question as the rules made it, not as a client asked it; its answers
    # are not kept under its own name, where a client asking that name would skip the rules.
    rewritten: bool = False

    @property
    def do(self) -> bool:
        return bool(self.query.edns and self.query.edns.do)


class Pass:
    """What a source returns when the question is not its to answer: the next one's turn."""

    __slots__ = ()


PASS = Pass()
SKIP = Pass()  # PASS, and the same for this question until the snapshot changes: the handler remembers


def may_forward(peer: str | None, acl: Sequence[str]) -> bool:
    """May this client have names outside our zones forwarded (--allow-forward)?

    `peer` None is a caller inside the process (tests, tools): allowed.
    """
    return peer is None or peer_in(peer, tuple(acl))
