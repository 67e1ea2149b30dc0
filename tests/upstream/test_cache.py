"""The cache of forwarded answers (upstream/cache.py), through a Forwarder and real upstreams,
plus wire-level unit tests with a fake clock."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from clusterdns.upstream.cache import DENIAL, SUCCESS, Cache
from clusterdns.upstream.exchange import question_of
from clusterdns.upstream.forwarder import Forwarder
from clusterdns.wire import FormErr, parse_query
from tests.helpers.fuzz import SEEDS, load, mutate
from tests.helpers.process import wait_until
from tests.helpers.upstream import Clock, Upstream, run_forwarder

RECORDS = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. hostmaster.interwebs.test. 1 7200 1800 86400 20",
    "ext.interwebs.test. 300 IN A 1.2.3.4",
    "short.interwebs.test. 3 IN A 1.2.3.5",
    "zero.interwebs.test. 0 IN A 1.2.3.6",
    "www.interwebs.test. 600 IN CNAME ext.interwebs.test.",
] + [f"n{i}.interwebs.test. 100 IN A 10.2.0.{i}" for i in range(5)] + [
    f"big.interwebs.test. 300 IN A 10.3.0.{i}" for i in range(40)
]


def query(qname: str = "ext.interwebs.test.", qtype: str = "A", qid: int = 0x1111, **kw: Any) -> bytes:
    return dns.message.make_query(qname, qtype, id=qid, **kw).to_wire()


def parse(wire: bytes | None) -> dns.message.Message:
    assert wire is not None
    return dns.message.from_wire(wire)


def ttls(msg: dns.message.Message) -> list[int]:
    return [rrset.ttl for rrset in msg.answer + msg.authority + msg.additional]


def test_hit_counts_ttls_down_with_client_id_and_spelling() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> tuple[dns.message.Message, dns.message.Message]:
            first = parse(await fwd.forward(query(qid=1)))
            await asyncio.sleep(1.1)
            second = parse(await fwd.forward(query("ExT.InterWEBS.test.", qid=2)))
            assert fwd.cache is not None
            assert fwd.cache.hits == {SUCCESS: 1, DENIAL: 0} and fwd.cache.misses == 1 and fwd.cache.requests == 2
            assert fwd.cache.entries == {SUCCESS: 1, DENIAL: 0}
            return first, second

        first, second = run_forwarder([up.address], body)
        assert up.asked("ext.interwebs.test.") == 1, "the upstream saw one query"
        assert first.id == 1 and second.id == 2
        assert ttls(first) == [30], "capped at --cache 30, the first answer too"
        assert ttls(second)[0] <= ttls(first)[0] - 1
        assert second.question[0].name.to_text() == "ExT.InterWEBS.test."
        assert second.answer[0].name.to_text().lower() == "ext.interwebs.test."
        assert {rd.to_text() for rd in second.answer[0]} == {"1.2.3.4"}


def test_ttls_count_down_to_expiry() -> None:
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert ttls(parse(await fwd.forward(query("www.interwebs.test.")))) == [30, 30]  # CNAME 600, A 300: capped
            clock.now += 12.7
            assert ttls(parse(await fwd.forward(query("www.interwebs.test.")))) == [18, 18]
            clock.now += 17.2  # 29.9 s old: still there, TTL 1, never 0
            assert ttls(parse(await fwd.forward(query("www.interwebs.test.")))) == [1, 1]
            assert up.asked("www.interwebs.test.") == 1
            clock.now += 0.2  # 30.1 s: expired
            assert ttls(parse(await fwd.forward(query("www.interwebs.test.")))) == [30, 30]
            assert up.asked("www.interwebs.test.") == 2
            # Shorter TTLs than --cache are kept and bound the entry.
            assert ttls(parse(await fwd.forward(query("short.interwebs.test.")))) == [3]
            clock.now += 3.0
            await fwd.forward(query("short.interwebs.test."))
            assert up.asked("short.interwebs.test.") == 2

        run_forwarder([up.address], body, clock)


def test_ttl_zero_is_not_cached() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert ttls(parse(await fwd.forward(query("zero.interwebs.test.")))) == [0]
            assert fwd.cache is not None and len(fwd.cache) == 0

        run_forwarder([up.address], body)
        assert up.asked("zero.interwebs.test.") == 2


def test_nxdomain_and_nodata_cached_by_the_soa() -> None:
    clock = Clock()
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            nx = parse(await fwd.forward(query("nope.interwebs.test.")))
            assert nx.rcode() == dns.rcode.NXDOMAIN
            # RFC 2308 5: min(SOA TTL 60, SOA MINIMUM 20); the SOA is served with that TTL.
            assert ttls(nx) == [20]
            clock.now += 5
            again = parse(await fwd.forward(query("nope.interwebs.test.", qid=7)))
            assert again.rcode() == dns.rcode.NXDOMAIN and again.id == 7 and ttls(again) == [15]
            assert again.authority[0].rdtype == dns.rdatatype.SOA
            nodata = parse(await fwd.forward(query("ext.interwebs.test.", "AAAA")))
            assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and ttls(nodata) == [20]
            await fwd.forward(query("ext.interwebs.test.", "AAAA"))
            assert fwd.cache is not None
            assert fwd.cache.entries == {SUCCESS: 0, DENIAL: 2} and fwd.cache.hits == {SUCCESS: 0, DENIAL: 2}
            clock.now += 15.1
            assert parse(await fwd.forward(query("nope.interwebs.test."))).rcode() == dns.rcode.NXDOMAIN

        run_forwarder([up.address], body, clock)
        assert up.asked("nope.interwebs.test.") == 2
        assert sum(1 for _, n, t in up.queries if n == "ext.interwebs.test." and t == dns.rdatatype.AAAA) == 1


def test_denial_without_soa_is_not_cached() -> None:
    with Upstream(["ext.interwebs.test. 300 IN A 1.2.3.4"]) as up:  # no SOA to send

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert parse(await fwd.forward(query("nope.interwebs.test."))).rcode() == dns.rcode.NXDOMAIN

        run_forwarder([up.address], body)
        assert up.asked("nope.interwebs.test.") == 2


def test_servfail_cached_five_seconds() -> None:
    clock = Clock()
    with Upstream(RECORDS, mode="servfail") as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert parse(await fwd.forward(query())).rcode() == dns.rcode.SERVFAIL
            assert up.asked("ext.interwebs.test.") == 1
            clock.now += 4.9
            await fwd.forward(query())
            assert up.asked("ext.interwebs.test.") == 1
            clock.now += 0.2
            await fwd.forward(query())
            assert up.asked("ext.interwebs.test.") == 2
            assert fwd.cache is not None and fwd.cache.entries[DENIAL] == 1

        run_forwarder([up.address], body, clock)


@pytest.mark.parametrize("mode", ["refused"])
def test_refused_is_not_cached(mode: str) -> None:
    with Upstream(RECORDS, mode=mode) as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert parse(await fwd.forward(query())).rcode() == dns.rcode.REFUSED

        run_forwarder([up.address], body)
        assert up.asked("ext.interwebs.test.") == 2


def test_no_upstream_answer_is_not_cached() -> None:
    with Upstream(RECORDS, mode="drop") as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert await fwd.forward(query()) is None

        run_forwarder([up.address], body, upstream_timeout=0.2, max_fails=0)
        # (the upstream's thread may not have read the second query yet)
        wait_until(lambda: up.asked("ext.interwebs.test.") == 2, "both queries reached the upstream: none was cached")


def test_truncated_reply_is_not_cached_but_the_tcp_one_is() -> None:
    with Upstream(RECORDS, truncate_udp={"big.interwebs.test."}, udp_only=True) as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                assert parse(await fwd.forward(query("big.interwebs.test."))).flags & dns.flags.TC

        run_forwarder([up.address], body)
        assert up.count("udp") == 2
    with Upstream(RECORDS, truncate_udp={"big.interwebs.test."}) as up:

        async def body2(fwd: Forwarder) -> None:
            for tcp in (False, True, False):
                reply = parse(await fwd.forward(query("big.interwebs.test."), tcp=tcp))
                assert not reply.flags & dns.flags.TC and len(reply.answer[0]) == 40

        run_forwarder([up.address], body2)
        assert [t for t, _, _ in up.queries] == ["udp", "tcp"]  # the full TCP reply serves the rest


def test_cached_separately_by_do_cd_and_edns() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            plain = parse(await fwd.forward(query(use_edns=False)))
            edns = parse(await fwd.forward(query(use_edns=0, payload=1232)))
            do = parse(await fwd.forward(query(use_edns=0, payload=1232, want_dnssec=True)))
            cd = dns.message.make_query("ext.interwebs.test.", "A", id=5)
            cd.flags |= dns.flags.CD
            await fwd.forward(cd.to_wire())
            assert up.asked("ext.interwebs.test.") == 4
            assert plain.edns == -1 and edns.edns == 0 and do.edns == 0
            # Each kind again: all hits, each with its own EDNS shape.
            assert parse(await fwd.forward(query(use_edns=False))).edns == -1
            assert parse(await fwd.forward(query(use_edns=0, payload=4096))).edns == 0
            assert up.asked("ext.interwebs.test.") == 4

        run_forwarder([up.address], body)


def test_cache_off() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert fwd.cache is None
            for _ in range(2):
                assert ttls(parse(await fwd.forward(query()))) == [300]  # the upstream's TTL, untouched

        run_forwarder([up.address], body, cache=0)
        assert up.asked("ext.interwebs.test.") == 2


def test_lru_eviction_at_cache_size() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            assert fwd.cache is not None
            await fwd.forward(query("n0.interwebs.test."))
            await fwd.forward(query("n1.interwebs.test."))
            await fwd.forward(query("n0.interwebs.test."))  # n0 is now the most recently used
            await fwd.forward(query("n2.interwebs.test."))  # evicts n1
            assert len(fwd.cache) == 2 and fwd.cache.evictions == {SUCCESS: 1, DENIAL: 0}
            await fwd.forward(query("n0.interwebs.test."))
            await fwd.forward(query("n2.interwebs.test."))
            assert [up.asked(f"n{i}.interwebs.test.") for i in range(3)] == [1, 1, 1]
            await fwd.forward(query("n1.interwebs.test."))  # a miss again
            assert up.asked("n1.interwebs.test.") == 2 and fwd.cache.evictions[SUCCESS] == 2

        run_forwarder([up.address], body, cache_size=2)


def test_lookup_goes_through_the_cache() -> None:
    with Upstream(RECORDS) as up:

        async def body(fwd: Forwarder) -> None:
            for _ in range(2):
                msg = await fwd.lookup("ext.interwebs.test.", dns.rdatatype.A)
                assert msg is not None and msg.answer[0][0].to_text() == "1.2.3.4"

        run_forwarder([up.address], body)
        assert up.asked("ext.interwebs.test.") == 1


def _reply(q: dns.message.Message, *, rcode: int = 0, answer: list[str] = (), authority: list[str] = (),  # type: ignore[assignment]
           options: list[dns.edns.Option] | None = None, question: bool = True) -> bytes:
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for line in answer:
        r.answer.append(dns.rrset.from_text(*line.split(None, 4)))
    for line in authority:
        r.authority.append(dns.rrset.from_text(*line.split(None, 4)))
    if options is not None:
        r.use_edns(0, 0, 1232, options=options)
    if not question:
        r.question = []
    return r.to_wire()


def test_per_client_edns_options_are_dropped_from_the_cached_copy() -> None:
    q = dns.message.make_query("a.test.", "A", id=9, use_edns=0, options=[dns.edns.GenericOption(10, b"clientck")])
    wire = q.to_wire()
    ede = dns.edns.EDEOption(dns.edns.EDECode.STALE_ANSWER, "old")
    reply = _reply(q, answer=["a.test. 60 IN A 192.0.2.1"], options=[dns.edns.GenericOption(10, b"clientckserverck"), ede])
    cache = Cache(30, 10, Clock())
    key = cache.key(wire)
    assert key is not None
    served = dns.message.from_wire(cache.put(key, wire, reply))
    assert [o.otype for o in served.options] == [dns.edns.EDE]
    hit = cache.get(key, wire)
    assert hit is not None and [o.otype for o in dns.message.from_wire(hit).options] == [dns.edns.EDE]


# CoreDNS's cache: a hit is authoritative (item.go toMsg sets Authoritative), the reply that
# fills the cache is the upstream's (AA as it came); AD is cleared, on both, for a client that
# set neither DO nor AD (cache.go WriteMsg, item.go toMsg; RFC 6840 5.7-5.8).
@pytest.mark.parametrize(("client", "ad_kept"), [({}, False), ({"want_dnssec": True}, True), ({"flags": dns.flags.RD | dns.flags.AD}, True)],
                         ids=["neither", "DO", "AD"])
def test_a_hit_is_authoritative_and_ad_is_only_for_who_asks(client: dict[str, Any], ad_kept: bool) -> None:
    q = dns.message.make_query("a.test.", "A", id=9, use_edns=0, **client)
    wire = q.to_wire()
    upstream = dns.message.make_response(q)
    upstream.flags |= dns.flags.RA | dns.flags.AD
    upstream.answer.append(dns.rrset.from_text("a.test.", 60, "IN", "A", "192.0.2.1"))
    cache = Cache(30, 10, Clock())
    key = cache.key(wire)
    assert key is not None
    first = dns.message.from_wire(cache.put(key, wire, upstream.to_wire()))
    hit = dns.message.from_wire(cache.get(key, wire) or b"")
    assert not first.flags & dns.flags.AA and hit.flags & dns.flags.AA
    assert bool(first.flags & dns.flags.AD) == ad_kept and bool(hit.flags & dns.flags.AD) == ad_kept
    assert first.flags & dns.flags.RA and hit.flags & dns.flags.RA
    refused = dns.message.make_response(q)
    refused.set_rcode(dns.rcode.REFUSED)
    refused.flags |= dns.flags.AD
    passed = dns.message.from_wire(cache.put(key, wire, refused.to_wire()))  # not kept, and AD as for the others
    assert passed.rcode() == dns.rcode.REFUSED and bool(passed.flags & dns.flags.AD) == ad_kept


@pytest.mark.parametrize("kind", ["no-question", "formerr", "notimp", "tc", "referral"])
def test_not_cacheable_replies(kind: str) -> None:
    q = dns.message.make_query("a.test.", "A", id=3)
    wire = q.to_wire()
    if kind == "no-question":
        reply = _reply(q, rcode=dns.rcode.SERVFAIL, question=False)
    elif kind == "formerr":
        reply = _reply(q, rcode=dns.rcode.FORMERR)
    elif kind == "notimp":
        reply = _reply(q, rcode=dns.rcode.NOTIMP)
    elif kind == "tc":
        reply = bytearray(_reply(q, answer=["a.test. 60 IN A 192.0.2.1"]))
        reply[2] |= 0x02
        reply = bytes(reply)
    else:  # NOERROR, no answer, NS in authority: a referral, no SOA to time it
        reply = _reply(q, authority=["test. 60 IN NS ns.test."])
    cache = Cache(30, 10, Clock())
    key = cache.key(wire)
    assert key is not None
    assert cache.put(key, wire, reply) == reply and len(cache) == 0


def test_caps_success_and_denial() -> None:
    q = dns.message.make_query("a.test.", "A", id=3)
    wire = q.to_wire()
    cache = Cache(86400, 10, Clock())
    key = cache.key(wire)
    assert key is not None
    served = dns.message.from_wire(cache.put(key, wire, _reply(q, answer=["a.test. 86400 IN A 192.0.2.1"])))
    assert ttls(served) == [3600]  # CoreDNS's success cap
    served = dns.message.from_wire(cache.put(key, wire, _reply(
        q, rcode=dns.rcode.NXDOMAIN, authority=["test. 86400 IN SOA ns.test. h.test. 1 2 3 4 86400"])))
    assert ttls(served) == [1800]  # CoreDNS's denial cap


def test_keys() -> None:
    base = Cache.key(query("A.Test."))
    assert base is not None and base == Cache.key(query("a.test.", qid=99))
    assert base != Cache.key(query("a.test.", "AAAA"))
    assert Cache.key(query("a.test.", use_edns=0)) not in (base, Cache.key(query("a.test.", use_edns=0, want_dnssec=True)))
    assert Cache.key(b"\x00\x01") is None
    two = dns.message.make_query("a.test.", "A")
    two.question.append(two.question[0])
    assert Cache.key(two.to_wire()) is None


def test_key_from_the_handlers_parse_is_the_key_from_the_wire() -> None:
    """The handler passes its parse_query() to forward(): the cache key and question built
    from it must be what Cache.key() and question_of() read from the bytes, for every query
    the handler forwards (QR 0, opcode QUERY, parse_query accepts it)."""
    seeds = load(SEEDS)
    rng = random.Random(4)
    compared = 0
    for n in range(30_000):
        wire = seeds[n] if n < len(seeds) else mutate(rng, seeds)
        if len(wire) < 12 or wire[2] & 0xF8:
            continue
        try:
            query = parse_query(wire)
        except FormErr:
            continue
        assert Cache.key_of(wire, query) == Cache.key(wire), wire.hex()
        assert ((query.key[:-4], query.key[-4:]),) == question_of(wire), wire.hex()
        compared += 1
    assert compared > 5_000
