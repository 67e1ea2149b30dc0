"""One-shot upstream exchanges for tests: the stateless calls the Forwarder is built on."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.message

from clusterdns.config.addresses import Address
from clusterdns.upstream.exchange import MAX_ATTEMPT, in_order, lookup_query, parsed, question_of


async def forward(query: bytes, upstreams: Sequence[Address], timeout: float = 2.5, *, tcp: bool = False) -> bytes | None:
    """in_order() with one deadline, `timeout` seconds from now, and MAX_ATTEMPT per upstream."""
    question = question_of(query)
    if question is None or not upstreams or timeout <= 0:
        return None
    deadline = asyncio.get_running_loop().time() + timeout
    return await in_order(query, question, upstreams, deadline, MAX_ATTEMPT, tcp)


async def lookup(name: str, rdtype: int, upstreams: Sequence[Address], timeout: float = 2.5) -> dns.message.Message | None:
    """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232); the parsed reply, or None."""
    return parsed(await forward(lookup_query(name, rdtype), upstreams, timeout))
