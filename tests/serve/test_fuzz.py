"""Hostile packets: the handler under a seeded mutator over real queries (100,000+ inputs in
CI), hypothesis properties that shrink to a readable failing packet, and a replay of every
input saved in tests/fuzz_corpus/crashes/.

The property, for every input, over UDP and TCP and from allowed and non-allowed clients:
`Handler.respond` never raises; it drops (None) only packets too short for a header or with
QR set; anything it sends parses as a DNS message (dnspython, strict) with QR set and the
query's ID, an RCODE from {NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS},
the question echoed whenever the query's question was readable, and over UDP no more than
max(512, the query's EDNS buffer size) bytes. Forwarding goes to an in-process stand-in
upstream that answers at once, so forwarded paths (REFUSED, SERVFAIL, truncation of a big
upstream reply, RFC 8482 HINFO for ANY) run at full speed without a network.

This module is also the engine of the long campaign: bench/fuzz.py (`make fuzz`).
"""

from __future__ import annotations

import random
import struct
import time

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clusterdns.serve.handler import Handler
from tests.helpers.fuzz import CI_INPUTS, CRASHES, PEERS, RCODES, RTYPES, SEEDS, campaign, check, drive, load, make_handler, mutate, seed_queries


@pytest.fixture(scope="module")
def handler() -> Handler:
    return make_handler()


def test_seed_corpus_is_current() -> None:
    """The files in fuzz_corpus/seeds are what seed_queries() builds (bench/fuzz.py --write-seeds)."""
    on_disk = {p.stem: p.read_bytes() for p in SEEDS.glob("*.bin")}
    built = dict(seed_queries())
    assert len(built) >= 300
    assert on_disk == built


def test_seeds_pass_unmutated(handler: Handler) -> None:
    for wire in load(SEEDS):
        for tcp in (False, True):
            for peer in PEERS:
                check(handler, wire, tcp, peer)


def test_saved_crashes_replay_clean(handler: Handler) -> None:
    """Every input that ever broke the handler (fuzz_corpus/crashes), over UDP and TCP, from every kind of client."""
    crashes = load(CRASHES)
    assert crashes, "fuzz_corpus/crashes is empty: this test would replay nothing"
    for wire in crashes:
        for tcp in (False, True):
            for peer in PEERS:
                try:
                    check(handler, wire, tcp, peer)
                except Exception as e:
                    raise AssertionError(f"saved crash {wire.hex()} ({'tcp' if tcp else 'udp'} from {peer})") from e


def test_mutated_queries(handler: Handler) -> None:
    """100,000 mutated real queries, reproducible (seed 8). ~10-25 s."""
    started = time.perf_counter()
    run, failures, slowest = campaign(CI_INPUTS, seed=8, handler=handler)
    spent = time.perf_counter() - started
    print(f"\nfuzz: {run} inputs in {spent:.1f} s ({run / spent:,.0f}/s), slowest {slowest * 1000:.1f} ms")
    assert not failures, "\n\n".join(map(str, failures[:5]))
    assert run == CI_INPUTS


def test_mutator_reaches_every_outcome(handler: Handler) -> None:
    """The mutator is not stuck in one corner: it makes drops, FORMERR, NOTIMP, BADVERS, REFUSED,
    NXDOMAIN, SERVFAIL, NOERROR, truncated replies and zone transfers."""
    seeds = load(SEEDS)
    rng = random.Random(1)
    seen: set[object] = set()
    for _ in range(20_000):
        wire = mutate(rng, seeds)
        tcp = rng.random() < 0.25
        result = drive(handler.respond(wire, tcp, rng.choice(PEERS)))
        if result is None:
            seen.add("drop")
        elif isinstance(result, list):
            seen.add("transfer")
        else:
            msg = dns.message.from_wire(result)
            seen.add(msg.rcode())
            if msg.flags & dns.flags.TC:
                seen.add("tc")
    assert seen >= RCODES | {"drop", "transfer", "tc"}, f"never reached: {RCODES | {'drop', 'transfer', 'tc'} - seen}"


FUZZ_SETTINGS = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@FUZZ_SETTINGS
@given(data=st.binary(max_size=600), tcp=st.booleans(), peer=st.sampled_from(PEERS))
@example(data=b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", tcp=False, peer=None)
def test_any_bytes(handler: Handler, data: bytes, tcp: bool, peer: str | None) -> None:
    check(handler, data, tcp, peer)


@FUZZ_SETTINGS
@given(header=st.binary(min_size=12, max_size=12), body=st.sampled_from(load(SEEDS)), cut=st.integers(12, 600), tcp=st.booleans())
def test_random_header_on_real_question(handler: Handler, header: bytes, body: bytes, cut: int, tcp: bool) -> None:
    """Any flags, opcode, counts on a real question and sections (absurd counts, QR, opcodes)."""
    check(handler, header + body[12:cut], tcp, "127.0.0.1")


label = st.binary(min_size=1, max_size=63)
names = st.lists(label, min_size=0, max_size=8).filter(lambda ls: sum(len(x) + 1 for x in ls) + 1 <= 255)
zones = st.sampled_from([(), (b"cluster", b"local"), (b"svc", b"cluster", b"local"), (b"in-addr", b"arpa"), (b"example", b"com")])


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[bytes, int, int, int | None, int]:
    """A query any server must be able to read: one question, plain labels, at most one OPT
    in the additional section; any type, class, RD/CD/AD, EDNS version, size and options."""
    labels = draw(names) + list(draw(zones))
    qname = b"".join(bytes([len(x)]) + x for x in labels) + b"\0"
    if len(qname) > 255:
        labels, qname = [], b"\0"
    qtype = draw(st.sampled_from(RTYPES) | st.integers(0, 65535))
    qclass = draw(st.sampled_from((1, 1, 1, 3, 4, 254, 255)))
    flags = draw(st.sampled_from((0, 0x0100, 0x0110, 0x0120, 0x0130)))
    opt = b""
    version = None
    if draw(st.booleans()):
        version = draw(st.sampled_from((0, 0, 0, 1, 255)))
        options = b"".join(struct.pack("!HH", code, len(blob)) + blob for code, blob in draw(
            st.lists(st.tuples(st.integers(0, 65535), st.binary(max_size=40)), max_size=3)))
        ttl = version << 16 | draw(st.sampled_from((0, 0x8000)))
        opt = b"\0" + struct.pack("!HHIH", 41, draw(st.integers(0, 65535)), ttl, len(options)) + options
    wire = struct.pack("!HHHHHH", draw(st.integers(0, 65535)), flags, 1, 0, 0, 1 if opt else 0) + qname + struct.pack("!HH", qtype, qclass) + opt
    return wire, qtype, qclass, version, len(labels)


@FUZZ_SETTINGS
@given(query=well_formed(), tcp=st.booleans(), peer=st.sampled_from(PEERS))
def test_well_formed_query_is_never_formerr(handler: Handler, query: tuple[bytes, int, int, int | None, int], tcp: bool, peer: str | None) -> None:
    wire, qtype, qclass, version, _ = query
    check(handler, wire, tcp, peer)
    result = drive(handler.respond(wire, tcp, peer))
    first = result[0] if isinstance(result, list) else result
    msg = dns.message.from_wire(first)
    assert msg.rcode() != dns.rcode.FORMERR
    if qclass != 1:  # the class is looked at before the EDNS version (CoreDNS server.go ServeDNS)
        assert msg.rcode() == dns.rcode.REFUSED
    elif version:
        assert msg.rcode() == dns.rcode.BADVERS
    elif qtype in (251, 252) and not tcp:
        assert msg.rcode() == dns.rcode.REFUSED


@st.composite
def malformed(draw: st.DrawFn) -> tuple[bytes, bool]:
    """One defect in an otherwise good query; and whether its question stays readable."""
    question = b"\x03web\x04shop\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01"
    opt = b"\0\0\x29\x04\xd0\0\0\0\0\0\0"
    kind = draw(st.sampled_from(["label64", "long", "pointer", "pointer-past-end", "cut", "qd0", "qd2", "opt-answer",
                                 "opt-twice", "opt-owner", "counts", "trailing", "rdlen"]))
    qd, an, ns, ar, body, readable = 1, 0, 0, 0, question, True
    if kind == "label64":
        body, readable = b"\x40" + b"a" * 64 + b"\0\0\1\0\1", False
    elif kind == "long":
        body, readable = b"".join(b"\x3f" + bytes([97 + i]) * 63 for i in range(draw(st.integers(4, 6)))) + b"\0\0\1\0\1", False
    elif kind == "pointer":
        body, readable = b"\x03web" + struct.pack("!H", 0xC000 | draw(st.integers(0, 20))) + b"\0\1\0\1", False
    elif kind == "pointer-past-end":
        body, ar = question + b"\xc0\x50\x00\x29\x04\xd0\0\0\0\0\0\0", 1
    elif kind == "cut":
        body, readable = question[: draw(st.integers(0, len(question) - 1))], False
    elif kind == "qd0":
        qd, readable = 0, False
    elif kind == "qd2":
        qd, body, readable = 2, question * 2, False
    elif kind == "opt-answer":
        an, body = 1, question + opt
    elif kind == "opt-twice":
        ar, body = 2, question + opt + opt
    elif kind == "opt-owner":
        ar, body = 1, question + b"\x01a" + opt
    elif kind == "counts":
        an, ns, ar = draw(st.integers(0, 65535)), draw(st.integers(0, 65535)), draw(st.integers(1, 65535))
    elif kind == "trailing":
        body = question + draw(st.binary(min_size=1, max_size=20))
    else:
        ar, body = 1, question + b"\0\0\x29\x04\xd0\0\0\0\0" + struct.pack("!H", draw(st.integers(1, 65535)))
    flags = draw(st.sampled_from((0x0000, 0x0100)))
    return struct.pack("!HHHHHH", draw(st.integers(0, 65535)), flags, qd, an, ns, ar) + body, readable


@FUZZ_SETTINGS
@given(case=malformed(), tcp=st.booleans())
def test_malformed_query_is_formerr(handler: Handler, case: tuple[bytes, bool], tcp: bool) -> None:
    wire, readable = case
    check(handler, wire, tcp, "127.0.0.1")
    msg = dns.message.from_wire(handler.respond(wire, tcp, "127.0.0.1"))  # type: ignore[arg-type]
    assert msg.rcode() == dns.rcode.FORMERR
    assert bool(msg.question) == readable


@FUZZ_SETTINGS
@given(query=well_formed(), opcode=st.integers(1, 15), tcp=st.booleans())
def test_other_opcodes_are_notimp(handler: Handler, query: tuple[bytes, int, int, int | None, int], opcode: int, tcp: bool) -> None:
    wire = bytearray(query[0])
    wire[2] = (wire[2] & 0x87) | opcode << 3
    check(handler, bytes(wire), tcp, "127.0.0.1")
    msg = dns.message.from_wire(handler.respond(bytes(wire), tcp, "127.0.0.1"))  # type: ignore[arg-type]
    assert msg.rcode() == dns.rcode.NOTIMP and msg.opcode() == opcode
