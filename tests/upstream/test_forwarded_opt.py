"""The OPT record of a forwarded reply (upstream/message.py with_our_opt): one exactly when the
client's query had one (RFC 6891 6.1.1, 7), our UDP size (6.2.3) and the client's DO bit (RFC
3225 3), as our own answers carry it; the upstream's other options stay."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rrset
import pytest

from clusterdns.upstream.forwarder import Forwarder
from clusterdns.upstream.message import with_our_opt
from tests.helpers.upstream import Upstream, run_forwarder


def reply_to(q: dns.message.Message, edns: int | None, *, do: bool = False, payload: int = 4096, options: list[dns.edns.Option] = ()) -> bytes:  # type: ignore[assignment]
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.1"))
    if edns is None:
        r.use_edns(False)
    else:
        r.use_edns(edns, dns.flags.DO if do else 0, payload, options=list(options))
    return r.to_wire()


@pytest.mark.parametrize("client_do", [False, True])
def test_the_upstreams_opt_gets_our_size_and_the_clients_do(client_do: bool) -> None:
    q = dns.message.make_query("a.test.", "A", use_edns=0, want_dnssec=client_do)
    ede = dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER, "old")
    out = dns.message.from_wire(with_our_opt(reply_to(q, 0, do=not client_do, options=[dns.edns.NSIDOption(b"up"), ede]), q.to_wire()))
    assert out.edns == 0 and out.payload == 1232
    assert bool(out.ednsflags & dns.flags.DO) == client_do
    assert [o.otype for o in out.options] == [dns.edns.NSID, dns.edns.EDE]  # the upstream's, kept
    assert [rr.to_text() for rr in out.answer] == ["a.test. 60 IN A 192.0.2.1"]


def test_an_upstream_that_answered_without_an_opt_gets_ours_added() -> None:
    q = dns.message.make_query("a.test.", "A", use_edns=0, want_dnssec=True)
    out = dns.message.from_wire(with_our_opt(reply_to(q, None), q.to_wire()))
    assert out.edns == 0 and out.payload == 1232 and out.ednsflags & dns.flags.DO and not out.options


def test_no_opt_for_a_client_that_sent_none() -> None:
    q = dns.message.make_query("a.test.", "A", use_edns=False)
    out = dns.message.from_wire(with_our_opt(reply_to(q, 0), q.to_wire()))
    assert out.edns == -1 and [rr.to_text() for rr in out.answer] == ["a.test. 60 IN A 192.0.2.1"]
    assert with_our_opt(b"\x00" * 5, q.to_wire()) == b"\x00" * 5  # not walkable: as it came


def test_through_a_forwarder_and_its_cache() -> None:
    """The miss and the hit both carry our OPT, with each client's DO (the cache keys on it)."""
    with Upstream(["ext.interwebs.test. 300 IN A 1.2.3.4"]) as up:

        async def body(fwd: Forwarder) -> list[dns.message.Message]:
            out = []
            for do in (False, False, True, True):
                wire = dns.message.make_query("ext.interwebs.test.", "A", use_edns=0, payload=4096, want_dnssec=do).to_wire()
                reply = await fwd.forward(wire)
                assert reply is not None
                out.append(dns.message.from_wire(reply))
            return out

        replies = run_forwarder([up.address], body)
    assert [r.payload for r in replies] == [1232] * 4
    assert [bool(r.ednsflags & dns.flags.DO) for r in replies] == [False, False, True, True]
    assert up.asked("ext.interwebs.test.") == 2  # one miss per DO value, then hits
