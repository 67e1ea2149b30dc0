"""The fuzz engine shared by tests/serve/test_fuzz.py and `make fuzz` (bench/fuzz.py): real
queries as seeds, mutations, a handler with an instant upstream, and the property every
reply must hold."""

from __future__ import annotations

import hashlib
import logging
import random
import struct
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

from clusterdns.config.settings import Config
from clusterdns.model import ClusterState, EndpointAddress, EndpointGroup, EndpointPort, Pod, Service, ServicePort
from clusterdns.serve.handler import Handler
from clusterdns.snapshot.build import build as build_snapshot
from clusterdns.upstream.forwarder import NOT_CACHED, Looked
from clusterdns.wire import FormErr, Query, parse_query

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus"


SEEDS = CORPUS / "seeds"


CRASHES = CORPUS / "crashes"


CI_INPUTS = 100_000


RCODES = {0, 1, 2, 3, 4, 5, 16}


# Clients: loopback and private (forwarding allowed), documentation ranges (not), and a
# caller inside the process (None).
PEERS = ("127.0.0.1", "10.1.2.3", "203.0.113.5", "2001:db8::5", "::1", None)


ALLOWED = {"127.0.0.1", "10.1.2.3", "::1", None}


SLOW_INPUT = 0.5  # CPU seconds: one input taking longer than this is a failure


HUNG_INPUT = 5.0  # seconds on the wall clock: one input waiting this long is a failure (a hang)


def make_state() -> ClusterState:
    web = Service("shop", "web", cluster_ips=("10.96.12.34", "fd00::1234"), ports=(ServicePort("http", "TCP", 80, 8080), ServicePort("", "TCP", 9090)))
    addresses = tuple(EndpointAddress(f"10.244.{i // 250}.{i % 250 + 1}", hostname=f"h{i}" if i % 7 == 0 else "") for i in range(60))
    big = Service("shop", "big", headless=True, endpoints=(EndpointGroup(addresses, (EndpointPort("http", "TCP", 8080), EndpointPort("dns", "UDP", 53))),))
    ext = Service("shop", "ext", type="ExternalName", external_name="api.example.com")
    inner = Service("shop", "alias", type="ExternalName", external_name="web.shop.svc.cluster.local")
    pod = Pod("shop", "web-1", ips=("10.244.0.9",))
    return ClusterState(services=(inner, big, ext, web), pods=(pod,), namespaces=frozenset({"default", "kube-system", "shop"}))


class InstantUpstream:
    """The Forwarder as the handler sees it, answering without I/O: no answer (SERVFAIL), a
    small answer, or one too big for UDP (so the handler must truncate it)."""

    def __init__(self) -> None:
        self.forwarded = 0
        self.upstreams = (("127.0.0.1", 9),)  # never contacted

    def from_cache(self, query: bytes, parsed: Query | None = None) -> Looked:
        return NOT_CACHED  # no cache: every query goes to forward()

    async def forward(self, query: bytes, tcp: bool = False, parsed: Query | None = None, looked: Looked | None = None) -> bytes | None:
        self.forwarded += 1
        mode = query[1] % 3
        if mode == 0:
            return None
        q = parse_query(query)  # the handler forwards only what it could read
        assert parsed == q, "the handler's parse of what it forwards"
        question = query[12 : q.qname_end + 4]
        flags = 0x8180 | ((query[2] << 8 | query[3]) & 0x0110)
        if mode == 1:
            record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
        else:
            text = b"".join(b"\xff" + bytes([65 + i % 26]) * 255 for i in range(8))
            record = b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x3c" + struct.pack("!H", len(text)) + text
        return query[:2] + struct.pack("!HHHHH", flags, 1, 1, 0, 0) + question + record

    async def lookup(self, name: str, rdtype: int) -> dns.message.Message | None:
        return None


def make_handler() -> Handler:
    config = Config(zones=("cluster.local", "in-addr.arpa", "ip6.arpa"), transfer_to=("127.0.0.0/8",))
    snap = build_snapshot(make_state(), config)
    return Handler(snap, config, InstantUpstream())  # type: ignore[arg-type]


def drive(result: Any) -> Any:
    """A pending (coroutine) reply, run to completion: the stand-in upstream never waits."""
    if result is None or result.__class__ in (bytes, list):
        return result
    try:
        result.send(None)
    except StopIteration as done:
        reply, _key = done.value
        return reply
    result.close()
    raise AssertionError("the reply waited for I/O")


def readable_question(wire: bytes) -> bytes | None:
    """The question as sent, when there is exactly one in plain labels (RFC 1035 limits)."""
    if len(wire) < 12 or wire[4:6] != b"\0\1":
        return None
    pos, n = 12, len(wire)
    while pos < n and wire[pos]:
        if wire[pos] > 63:
            return None
        pos += 1 + wire[pos]
    if pos >= n or pos + 1 - 12 > 255 or pos + 5 > n:
        return None
    if wire[2] & 0x78 == 0x28 and (wire[pos + 1 : pos + 3] != b"\0\6" or wire[pos + 3 : pos + 5] in (b"\0\xfe", b"\0\xff")):
        return None  # an UPDATE's zone section must be SOA in a real class (RFC 2136 2.3)
    return wire[12 : pos + 5]


def udp_room(wire: bytes) -> int:
    """max(512, the EDNS buffer size of a valid OPT): dnspython's reading of the query, or
    ours when dnspython cannot read it at all."""
    try:
        q = dns.message.from_wire(wire)
        return max(512, q.payload) if q.edns >= 0 else 512
    except Exception:
        try:
            edns = parse_query(wire).edns
        except FormErr:
            return 512
        return max(512, edns.udp_size) if edns else 512


def check_reply(reply: Any, wire: bytes, tcp: bool, first: bool = True) -> None:
    assert isinstance(reply, bytes), f"reply is {type(reply).__name__}"
    msg = dns.message.from_wire(reply)  # raises on anything malformed
    assert reply[:2] == wire[:2], "the ID is echoed"
    assert msg.flags & dns.flags.QR, "QR set"
    assert msg.rcode() in RCODES, f"rcode {msg.rcode()}"
    if tcp:
        assert len(reply) <= 65535
    elif len(reply) > 512:
        assert len(reply) <= udp_room(wire), f"{len(reply)} bytes over UDP, room {udp_room(wire)}"
    question = readable_question(wire)
    if question is not None and first:
        assert reply[4:6] == b"\0\1" and reply[12 : 12 + len(question)] == question, "the question is echoed"


def check(handler: Handler, wire: bytes, tcp: bool, peer: str | None) -> None:
    """The property for one input; raises AssertionError (or the handler's exception)."""
    panics = handler.panics
    result = drive(handler.respond(wire, tcp, peer))
    assert handler.panics == panics, "the resolver raised (logged, answered SERVFAIL)"
    if result is None:
        assert len(wire) < 12 or wire[2] & 0x80, "a query was dropped"
        return
    if isinstance(result, list):
        assert tcp and result, "a zone transfer goes over TCP only"
        for i, message in enumerate(result):
            check_reply(message, wire, tcp, first=i == 0)
        return
    check_reply(result, wire, tcp)


NAMES = [
    "web.shop.svc.cluster.local", "WEB.Shop.SVC.Cluster.LOCAL", "_http._tcp.web.shop.svc.cluster.local",
    "big.shop.svc.cluster.local", "h0.big.shop.svc.cluster.local", "_dns._udp.big.shop.svc.cluster.local",
    "ext.shop.svc.cluster.local", "alias.shop.svc.cluster.local", "10-244-0-9.shop.pod.cluster.local",
    "nope.shop.svc.cluster.local", "shop.svc.cluster.local", "cluster.local", "CLUSTER.LOCAL", "ns.dns.cluster.local",
    "dns-version.cluster.local", "34.12.96.10.in-addr.arpa", "9.9.9.9.in-addr.arpa", "in-addr.arpa",
    "4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
    "example.com", "Www.Example.ORG", "a.b.c.d.e.f.example.net", ".",
]


TYPES = ["A", "AAAA", "SRV", "PTR", "TXT", "ANY", "SOA", "NS", "CNAME", "MX", "HINFO", "AXFR", "IXFR", 65535, 0, 41]


EDNS = [
    {"use_edns": False},
    {"use_edns": 0},
    {"use_edns": 0, "want_dnssec": True},
    {"use_edns": 0, "payload": 4096},
    {"use_edns": 0, "payload": 65535, "want_dnssec": True},
    {"use_edns": 0, "payload": 100},
    {"use_edns": 1},
    {"use_edns": 0, "options": [dns.edns.GenericOption(10, b"\x01\x02\x03\x04\x05\x06\x07\x08")]},  # cookie
    {"use_edns": 0, "options": [dns.edns.ECSOption("192.0.2.0", 24)]},
    {"use_edns": 0, "options": [dns.edns.GenericOption(12, b"\0" * 40), dns.edns.GenericOption(65001, b"xyz")]},
]


def seed_queries() -> Iterator[tuple[str, bytes]]:
    """(file name, wire) for the seed corpus: every name and type, EDNS variants, odd opcodes."""
    rng = random.Random(8)
    for i, name in enumerate(NAMES):
        for j, rdtype in enumerate(TYPES):
            for edns in (EDNS[0] if (i + j) % 2 else rng.choice(EDNS[1:]),):
                q = dns.message.make_query(name, rdtype, **edns)  # type: ignore[arg-type]
                q.id = rng.randrange(65536)
                if rdtype == "IXFR":
                    q.authority.append(dns.rrset.from_text(name.rstrip(".") + ".", 0, "IN", "SOA", "ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5"))
                label = dns.rdatatype.to_text(rdtype) if isinstance(rdtype, int) else rdtype
                yield f"{name.strip('.').lower() or 'root'}-{label}-{'edns' if edns.get('use_edns') is not False else 'plain'}", q.to_wire()
    for name in ("web.shop.svc.cluster.local", "example.com"):
        for k, edns in enumerate(EDNS):
            q = dns.message.make_query(name, "A", **edns)  # type: ignore[arg-type]
            q.id = rng.randrange(65536)
            yield f"{name}-A-variant{k}", q.to_wire()
        q = dns.message.make_query(name, "A", rdclass="CH")
        q.id = rng.randrange(65536)
        yield f"{name}-A-CH", q.to_wire()
        for opcode in (dns.opcode.NOTIFY, dns.opcode.UPDATE, dns.opcode.STATUS, 3, 15):
            q = dns.message.make_query(name, "SOA")
            q.set_opcode(opcode)
            q.id = rng.randrange(65536)
            yield f"{name}-opcode{int(opcode)}", q.to_wire()
        q = dns.message.make_query(name, "A")
        q.flags |= dns.flags.QR
        q.id = rng.randrange(65536)
        yield f"{name}-qr", q.to_wire()


def write_seeds(directory: Path = SEEDS) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, wire in seed_queries():
        (directory / f"{name.replace('/', '_')}.bin").write_bytes(wire)
        count += 1
    return count


def load(directory: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(directory.glob("*.bin"))]


INTERESTING = (0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xFF)


COUNTS = (0, 1, 2, 3, 0x7F, 0x100, 0x7FFF, 0xFFFF)


RTYPES = (0, 1, 2, 5, 6, 12, 13, 16, 28, 33, 41, 249, 250, 251, 252, 253, 254, 255, 256, 65535)


RCLASSES = (0, 1, 2, 3, 4, 254, 255, 0x8001, 65535)


def _opt(rng: random.Random) -> bytes:
    """An OPT record, mostly well formed: size, extended RCODE, version, flags, options."""
    options = b""
    for _ in range(rng.choice((0, 0, 1, 2))):
        data = rng.randbytes(rng.choice((0, 2, 8, 40)))
        length = len(data) if rng.random() < 0.8 else rng.choice((0, 1, 0xFFFF))
        options += struct.pack("!HH", rng.choice((8, 10, 12, 15, 65001, rng.randrange(65536))), length) + data
    owner = b"\0" if rng.random() < 0.9 else b"\x01a\0"
    size = rng.choice((0, 512, 1232, 4096, 65535, rng.randrange(65536)))
    ttl = (rng.choice((0, 0, 1, 255)) << 24) | (rng.choice((0, 0, 0, 1, 2, 255)) << 16) | rng.choice((0, 0x8000, 0xFFFF))
    rdlen = len(options) if rng.random() < 0.9 else rng.randrange(65536)
    return owner + struct.pack("!HHIH", 41, size, ttl, rdlen) + options


def _labels(data: bytearray) -> list[int]:
    """Offsets of the length bytes of the first name (as far as it goes)."""
    out, pos = [], 12
    while pos < len(data) and data[pos] and len(out) < 130:
        out.append(pos)
        pos += 1 + (data[pos] & 0x3F)
    return out


def _count(data: bytearray, index: int, delta: int) -> None:
    if len(data) >= 12:
        at = 4 + 2 * index
        struct.pack_into("!H", data, at, (struct.unpack_from("!H", data, at)[0] + delta) & 0xFFFF)


def m_flip(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def m_byte(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice(INTERESTING) if rng.random() < 0.5 else rng.randrange(256)


def m_insert(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.randbytes(rng.choice((1, 1, 2, 4, 11, 64)))


def m_delete(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        at = rng.randrange(len(data))
        del data[at : at + rng.choice((1, 1, 2, 4, 16))]


def m_truncate(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    del data[rng.randrange(len(data) + 1) if rng.random() < 0.7 else rng.randrange(14) :]


def m_duplicate(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if data:
        at = rng.randrange(len(data))
        chunk = data[at : at + rng.randrange(1, 64)]
        to = rng.randrange(len(data) + 1)
        data[to:to] = chunk * rng.choice((1, 1, 2, 8))


def m_counts(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if len(data) >= 12:
        struct.pack_into("!H", data, 4 + 2 * rng.randrange(4), rng.choice(COUNTS))


def m_flags(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if len(data) >= 4:
        choice = rng.randrange(4)
        if choice == 0:
            data[2] |= 0x80  # QR
        elif choice == 1:
            data[2] = (data[2] & 0x87) | rng.randrange(16) << 3  # opcode
        else:
            data[2], data[3] = rng.randrange(256), rng.randrange(256)


def m_id(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    if len(data) >= 2:
        data[0], data[1] = rng.randrange(256), rng.randrange(256)


def m_label(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    labels = _labels(data)
    if labels:
        data[rng.choice(labels)] = rng.choice((64, 65, 0x3F, 0x80, 0xBF, 0xC0, 0xFF, 0))


def m_pointer(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    """A compression pointer: to itself (a loop), forwards, past the end, into the header."""
    spots = _labels(data) or [min(12, len(data))]
    at = rng.choice(spots) if rng.random() < 0.6 else rng.randrange(len(data) + 1)
    target = rng.choice((at, at + 2, 0, 2, 12, len(data), len(data) + 40, 0x3FFF, rng.randrange(0x4000)))
    data[at : at + 2] = struct.pack("!H", 0xC000 | (target & 0x3FFF))


def m_long_name(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    """Replace the question name by one of 250-300 octets, or of many 1-octet labels."""
    labels = _labels(data)
    end = (labels[-1] + 1 + (data[labels[-1]] & 0x3F)) if labels else 12
    if rng.random() < 0.5:
        name = (b"\x3f" + b"x" * 63) * 3 + b"\x3e" + b"y" * 62 + (b"\x01z" * rng.choice((0, 1, 2, 20)))
    else:
        name = b"\x01a" * rng.choice((126, 127, 128, 200))
    data[12:end] = name


def m_opt(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    """An OPT appended: in the additional section, or the answer/authority section, or twice."""
    if len(data) < 12:
        return
    opt = _opt(rng)
    where = rng.choice((2, 2, 2, 0, 1))
    if where == 2:
        data += opt * rng.choice((1, 1, 2))
    else:
        data += opt  # counted in an earlier section: OPT in the wrong place
    _count(data, 1 + where, 1)


def m_qtype(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    labels = _labels(data)
    end = (labels[-1] + 1 + (data[labels[-1]] & 0x3F)) if labels else 12
    if end + 5 <= len(data):
        if rng.random() < 0.6:
            struct.pack_into("!H", data, end + 1, rng.choice(RTYPES))
        else:
            struct.pack_into("!H", data, end + 3, rng.choice(RCLASSES))


def m_case(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    for i in range(12, min(len(data), 80)):
        if 97 <= data[i] <= 122 and rng.random() < 0.5:
            data[i] -= 32


def m_splice(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    other = rng.choice(seeds)
    data[rng.randrange(len(data) + 1) :] = other[rng.randrange(len(other) + 1) :]


def m_record(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    """A random record in a random section: compressed owner, random type, rdata length that lies."""
    if len(data) < 12:
        return
    rdata = rng.randbytes(rng.choice((0, 4, 16)))
    rdlen = len(rdata) if rng.random() < 0.8 else rng.randrange(65536)
    owner = rng.choice((b"\0", b"\xc0\x0c", b"\x01a\xc0\x0c", b"\xc0" + bytes([rng.randrange(256)])))
    data += owner + struct.pack("!HHIH", rng.choice(RTYPES), rng.choice(RCLASSES), rng.randrange(1 << 32), rdlen) + rdata
    _count(data, rng.randrange(1, 4), 1)


def m_grow(rng: random.Random, data: bytearray, seeds: list[bytes]) -> None:
    data += rng.randbytes(rng.choice((100, 600, 1500, 5000)))


MUTATIONS: tuple[Callable[[random.Random, bytearray, list[bytes]], None], ...] = (
    m_flip, m_flip, m_byte, m_byte, m_insert, m_delete, m_truncate, m_duplicate, m_counts, m_flags, m_id,
    m_label, m_pointer, m_long_name, m_opt, m_opt, m_qtype, m_qtype, m_case, m_splice, m_record, m_grow,
)


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3, 4, 6))):
        rng.choice(MUTATIONS)(rng, data, seeds)
    return bytes(data)


class Failure:
    def __init__(self, wire: bytes, tcp: bool, peer: str | None, error: str) -> None:
        self.wire, self.tcp, self.peer, self.error = wire, tcp, peer, error

    def __str__(self) -> str:
        return f"{'tcp' if self.tcp else 'udp'} from {self.peer}: {self.wire.hex()}\n{self.error}"


def campaign(count: int, seed: int, handler: Handler | None = None, stop_after: int = 10,
             progress: Callable[[int, float], None] | None = None) -> tuple[int, list[Failure], float]:
    """Run `count` mutated inputs; returns (inputs run, failures, slowest input in seconds)."""
    handler = handler or make_handler()
    seeds = load(SEEDS) + load(CRASHES)
    assert seeds, f"no seed corpus in {SEEDS} (bench/fuzz.py --write-seeds)"
    rng = random.Random(seed)
    failures: list[Failure] = []
    quiet = logging.getLogger("clusterdns").level, logging.getLogger("clusterdns.query").level
    logging.getLogger("clusterdns").setLevel(logging.CRITICAL)  # SERVFAIL lines, refused transfers:
    logging.getLogger("clusterdns.query").setLevel(logging.CRITICAL)  # thousands, and slow to format
    try:
        return _campaign(handler, seeds, rng, count, failures, stop_after, progress)
    finally:
        logging.getLogger("clusterdns").setLevel(quiet[0])
        logging.getLogger("clusterdns.query").setLevel(quiet[1])


def _campaign(handler: Handler, seeds: list[bytes], rng: random.Random, count: int, failures: list[Failure], stop_after: int,
              progress: Callable[[int, float], None] | None) -> tuple[int, list[Failure], float]:
    slowest = 0.0
    run = 0
    # An input is slow by this thread's CPU time: on a machine busy with other work the
    # wall clock also counts stalls of the whole process. A wait (no CPU) shows on the wall
    # clock, with a bound no stall reaches.
    clock, wall = time.thread_time, time.perf_counter
    for run in range(1, count + 1):
        wire = mutate(rng, seeds)
        tcp = rng.random() < 0.25
        peer = rng.choice(PEERS)
        started, started_wall = clock(), wall()
        try:
            check(handler, wire, tcp, peer)
        except Exception:
            failures.append(Failure(wire, tcp, peer, traceback.format_exc(limit=6)))
            if len(failures) >= stop_after:
                break
        spent, waited = clock() - started, wall() - started_wall
        slowest = max(slowest, spent)
        if spent > SLOW_INPUT or waited > HUNG_INPUT:
            failures.append(Failure(wire, tcp, peer, f"took {spent:.3f} s of CPU, {waited:.3f} s in all"))
        if progress and run % 100_000 == 0:
            progress(run, slowest)
    return run, failures, slowest


def save_crash(wire: bytes, directory: Path = CRASHES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{hashlib.sha1(wire).hexdigest()[:16]}.bin"
    path.write_bytes(wire)
    return path
