"""The TCP listener keeps a forwarded answer from the cache as a timed entry (serve/timed.py), as
the UDP one does: the real handler, a real upstream on loopback, TCPServer.answer() driven
directly, so what the listener kept can be looked at."""

from __future__ import annotations

import asyncio
import inspect

import dns.message
import pytest

from clusterdns.config.settings import Config
from clusterdns.ops.counters import ListenerStats
from clusterdns.serve.server import Server as ClusterDNS
from clusterdns.serve.tcp import TCPServer, reply_in_c
from clusterdns.serve.timed import FIELDS
from tests.helpers.process import UNIT_FIXTURE
from tests.helpers.upstream import Upstream


@pytest.mark.parametrize("in_c", [True, False], ids=["extension", "python"])
def test_a_fresh_cache_hit_is_kept_and_answered_by_the_tcp_listener(in_c: bool) -> None:
    """Kept replies are looked up (and a timed one's TTLs patched) by the extension when it is
    built (_udpbatch.c reply) and in Python without it: the same answers either way."""
    if in_c and reply_in_c is None:
        pytest.skip("the extension is not built")
    with Upstream(["ext.interwebs.test. 300 IN A 1.2.3.4"]) as up:
        cluster = ClusterDNS(Config(manifests=UNIT_FIXTURE, upstream=(f"{up.address[0]}:{up.address[1]}",)))
        cluster.load(full=True)
        tcp = TCPServer(cluster.handler, ListenerStats("dns://test", "tcp", 1))
        if not in_c:
            tcp.reply_in_c = None

        async def ask(qid: int) -> dns.message.Message:
            wire = dns.message.make_query("ext.interwebs.test.", "A", id=qid).to_wire()
            reply = tcp.answer(wire, None)
            if inspect.iscoroutine(reply):  # a miss: the listener hands the exchange back
                reply, _ = await reply
            assert isinstance(reply, bytes)
            return dns.message.from_wire(reply)

        async def run() -> None:
            first = await ask(1)  # the miss, asked upstream
            assert not tcp.replies.table
            second = await ask(2)  # a fresh hit from the cache: kept, with its TTLs to count down
            [(key, kept)] = tcp.replies.table.items()
            assert len(kept) == FIELDS
            # Aged by 2 s (born 2 s earlier), so the listener's own reply must count its TTLs down.
            tail, cell, runs, ttls, born, end, counts, kind = kept
            tcp.replies.table[key] = (tail, cell, runs, ttls, born - 2, end, counts, kind)
            hits_before = list(counts)
            asked = handler_calls(tcp)
            third = await ask(3)  # from the listener's timed entry, with this query's ID
            assert asked == [], "the handler was asked: the listener did not answer from what it kept"
            assert [m.id for m in (first, second, third)] == [1, 2, 3]
            assert third.answer == first.answer and third.answer[0].ttl == first.answer[0].ttl - 2
            assert sum(cell[1:]) == 2  # the hit that was kept and the listener's own reply, each counted once
            assert [a - b for a, b in zip(counts, hits_before)] == [1, 1, 0]  # the cache's requests and success hits
            assert up.asked("ext.interwebs.test.") == 1

        asyncio.run(run())


def handler_calls(tcp: TCPServer) -> list[bytes]:
    """The queries the listener hands its handler from now on (the handler still answers them)."""
    calls: list[bytes] = []
    respond = tcp.handler.respond

    def counted(wire: bytes, *args: object) -> object:
        calls.append(wire)
        return respond(wire, *args)

    tcp.handler = _Counted(tcp.handler, counted)  # type: ignore[assignment]
    return calls


class _Counted:
    """The handler as it is, with `respond` going through `counted`."""

    def __init__(self, handler: object, counted: object) -> None:
        self._handler, self.respond = handler, counted

    def __getattr__(self, name: str) -> object:
        return getattr(self._handler, name)
