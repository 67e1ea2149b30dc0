"""Forward raw DNS queries to upstream resolvers: UDP first, TCP on TC, one deadline per call.

forward()/lookup() do one stateless exchange; the Forwarder class (what the server uses) adds
CoreDNS forward's policy, upstream health, max_concurrent and the cache of forwarded answers;
check_loop() is CoreDNS's loop plugin, run once at start-up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import secrets
import select
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.rdatatype

from clusterdns.cache import Cache
from clusterdns.config.addresses import Address, hostport_text, parse_hostport
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.codes import FORMERR, NOTIMP, QR, REFUSED, SERVFAIL, TC
from clusterdns.wire import FormErr, Query, read_question

log = logging.getLogger("clusterdns")

DNS_PORT = 53
MAX_ATTEMPT = 2.0  # per-upstream read timeout, as CoreDNS forward's `read_timeout`
MIN_ATTEMPT = 0.5  # never slice an attempt thinner than this (unless less time is left)
EDNS_PAYLOAD = 1232  # the DNS Flag Day 2020 UDP payload size, for our own lookups

# RFC 1035 4.1.1 header bits in byte 2 (QR, Opcode, AA, TC, RD).
_QR = QR >> 8
_TC = TC >> 8
_TRY_NEXT = frozenset({SERVFAIL, REFUSED})
# Error replies that may legitimately come back without a question section (as dnspython allows).
_NO_QUESTION_OK = frozenset({FORMERR, SERVFAIL, NOTIMP, REFUSED})

# systemd-resolved's stub listener: inside a container or Pod it is not the host's resolver,
# and CoreDNS's loop plugin README tells users to point at the real upstreams instead.
SYSTEMD_RESOLVED_STUB = "127.0.0.53"

Question = tuple[tuple[bytes, bytes], ...]  # ((lower-cased wire qname, qtype+qclass), ...)


async def forward(query: bytes, upstreams: Sequence[Address], timeout: float = 2.5, *, tcp: bool = False) -> bytes | None:
    """Send the client's raw query to `upstreams` in order; the first usable reply, with the client's ID.

    The whole call has one deadline, `timeout` seconds from now. Each upstream gets an attempt of
    min(MAX_ATTEMPT, max(time left / upstreams left, MIN_ATTEMPT), time left) seconds, so a silent
    upstream cannot eat the time of the ones after it, and a refused port (ICMP unreachable) moves
    on at once. A TC reply is retried over TCP on the same upstream within what is left of the
    deadline; if that fails, the truncated reply is returned as is (the client may retry over TCP).
    REFUSED and SERVFAIL move on to the next upstream; if nothing better comes, the last of them is
    returned. None means no upstream answered in time (the caller answers SERVFAIL). Never raises
    on network errors.
    """
    question = _question(query)
    if question is None or not upstreams or timeout <= 0:
        return None
    deadline = asyncio.get_running_loop().time() + timeout
    return await _in_order(query, question, upstreams, deadline, MAX_ATTEMPT, tcp)


async def _in_order(query: bytes, question: Question, upstreams: Sequence[Address], deadline: float, attempt: float,
                    tcp: bool, report: Callable[[Address, bytes | None], None] | None = None) -> bytes | None:
    """forward()'s loop: each upstream in turn until a usable reply or the deadline.

    `attempt` is the per-upstream timeout; `report(upstream, reply or None)` hears every attempt.
    """
    loop = asyncio.get_running_loop()
    fallback: bytes | None = None
    for index, upstream in enumerate(upstreams):
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        budget = min(attempt, max(remaining / (len(upstreams) - index), MIN_ATTEMPT), remaining)
        reply = await _exchange(query, question, upstream, budget, deadline, tcp, attempt)
        if report is not None:
            report(upstream, reply)
        if reply is None:
            continue
        if reply[3] & 0x0F in _TRY_NEXT:
            fallback = reply
            continue
        return query[:2] + reply[2:]
    return query[:2] + fallback[2:] if fallback is not None else None


async def lookup(name: str, rdtype: int, upstreams: Sequence[Address], timeout: float = 2.5) -> dns.message.Message | None:
    """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232); the parsed reply, or None."""
    return _parsed(await forward(_lookup_query(name, rdtype), upstreams, timeout))


def _lookup_query(name: str, rdtype: int) -> bytes:
    rrtype = dns.rdatatype.RdataType.make(rdtype)
    return dns.message.make_query(name, rrtype, use_edns=0, payload=EDNS_PAYLOAD).to_wire()  # RD is set by default


def _parsed(reply: bytes | None) -> dns.message.Message | None:
    if reply is None:
        return None
    try:
        return dns.message.from_wire(reply)
    except dns.exception.DNSException:
        return None


def upstreams_from_resolv_conf(path: str = "/etc/resolv.conf", exclude: Iterable[Address] = ()) -> list[Address]:
    """The `nameserver` addresses of a resolv.conf (port 53), in order, without duplicates.

    Dropped, so that we never forward to ourselves:
    - exact matches of `exclude` (our own listen addresses; 0.0.0.0 is not expanded);
    - 127.0.0.53, systemd-resolved's stub, which is not reachable the same way from a container
      (use /run/systemd/resolve/resolv.conf, which lists the real upstreams, on such hosts).
    127.0.0.11 is kept: it is Docker's embedded DNS, the right upstream inside a container.
    Scoped IPv6 (fe80::1%eth0) is skipped: we do not carry the zone index to the socket.
    A missing or unreadable file gives an empty list.
    """
    excluded = {(_canonical(host), port) for host, port in exclude}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return []
    found: list[Address] = []
    for line in lines:
        # resolv.conf(5): "#" or ";" in the first column starts a comment; be lenient anywhere.
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2 or words[0] != "nameserver" or "%" in words[1]:
            continue
        host = _canonical(words[1])
        if not host or host == SYSTEMD_RESOLVED_STUB:
            continue
        address = (host, DNS_PORT)
        if address not in excluded and address not in found:
            found.append(address)
    return found


def parse_upstream(text: str) -> Address:
    """`1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:53` -> (host, port); port 53 by default.

    Raises ConfigError on anything else.
    """
    return parse_hostport(text, default_port=DNS_PORT)


def _canonical(host: str) -> str:
    """The compressed form of an IP address ("" if it is not one), so "::1" matches "0::1"."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return ""


# --- one upstream ------------------------------------------------------------------------------


async def _exchange(query: bytes, question: Question, upstream: Address, budget: float, deadline: float, tcp: bool,
                    attempt: float) -> bytes | None:
    """One attempt on one upstream: UDP (or TCP if asked), then TCP if the UDP reply has TC."""
    if tcp:
        return await _tcp(query, question, upstream, budget)
    reply = await _udp(query, question, upstream, budget)
    if reply is None or not reply[2] & _TC:
        return reply
    # RFC 1035 4.2.1 / RFC 7766 5: a truncated UDP reply means "ask again over TCP". The retry
    # stays inside the call's deadline, so it cannot overrun what the client was promised.
    remaining = min(attempt, deadline - asyncio.get_running_loop().time())
    full = await _tcp(query, question, upstream, remaining) if remaining > 0 else None
    return full if full is not None else reply


class _UDPReply(asyncio.DatagramProtocol):
    """Waits for the first datagram `accept` likes; None in the future means the upstream failed."""

    def __init__(self, accept: Callable[[bytes], bool]) -> None:
        self.accept = accept
        self.result: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        # Garbage, stale or spoofed replies are ignored; we keep waiting for the real one.
        if not self.result.done() and self.accept(data):
            self.result.set_result(data)

    def error_received(self, exc: Exception) -> None:
        # On a connected UDP socket an ICMP port/host unreachable arrives as ConnectionRefusedError
        # (or another OSError): that upstream is down, stop waiting for it.
        if not self.result.done():
            self.result.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.result.done():
            self.result.set_result(None)


async def _udp(query: bytes, question: Question, upstream: Address, budget: float) -> bytes | None:
    """Send over a fresh connected UDP socket (ephemeral port, random ID); the matching reply or None."""
    # RFC 5452 9.2: a fresh unpredictable ID and source port per attempt. Connecting the socket
    # makes the kernel drop datagrams from any other address and port (RFC 5452 9.1).
    qid = secrets.randbelow(0x10000)
    loop = asyncio.get_running_loop()
    transport: asyncio.DatagramTransport | None = None
    try:
        async with asyncio.timeout(budget):
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _UDPReply(lambda data: _matches(data, qid, question)), remote_addr=upstream
            )
            transport.sendto(struct.pack("!H", qid) + query[2:])
            return await protocol.result
    except (OSError, TimeoutError):
        return None
    finally:
        if transport is not None:
            transport.close()


async def _tcp(query: bytes, question: Question, upstream: Address, budget: float) -> bytes | None:
    """Send over a fresh TCP connection with RFC 1035 4.2.2 length framing; the matching reply or None."""
    qid = secrets.randbelow(0x10000)
    message = struct.pack("!H", qid) + query[2:]
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(budget):
            reader, writer = await asyncio.open_connection(*upstream)
            writer.write(struct.pack("!H", len(message)) + message)
            await writer.drain()
            while True:  # RFC 7766 7: replies may come out of order; skip ones not for us
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await reader.readexactly(length)
                if _matches(reply, qid, question):
                    return reply
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()


# --- wire checks -------------------------------------------------------------------------------


def _matches(reply: bytes, qid: int, question: Question) -> bool:
    """RFC 5452 9.1 / RFC 1035 7.3: same ID, QR set, same opcode, same question (name ignoring case)."""
    if len(reply) < 12 or struct.unpack_from("!H", reply)[0] != qid or not reply[2] & _QR:
        return False
    theirs = _question(reply)  # None unless opcode 0 (QUERY), the only one we forward
    if theirs == question:
        return True
    # Some servers drop the question from error replies; take those rather than time out.
    return theirs == () and reply[3] & 0x0F in _NO_QUESTION_OK


def _question(message: bytes) -> Question | None:
    """The question section as comparable values, or None if it cannot be read.

    Names are compared as lower-cased wire labels (RFC 4343: ASCII case-insensitive); length
    octets are at most 63 and so unaffected by bytes.lower(). Compression pointers are refused:
    the question follows the header directly, so there is nothing earlier to point at (RFC 1035
    4.1.4), and RFC 9619 says a query carries exactly one question.
    """
    if len(message) < 12 or (message[2] >> 3) & 0x0F != 0:
        return None
    (count,) = struct.unpack_from("!H", message, 4)
    offset, out = 12, []
    for _ in range(count):
        try:
            name, type_class, offset = read_question(message, offset)
        except FormErr:
            return None
        out.append((name, type_class))
    return tuple(out)


# --- the server's forwarder: policy, health, concurrency, cache --------------------------------

PROBE_INTERVAL = 0.5  # CoreDNS forward: health check every 0.5 s while an upstream is down
PROBE_TIMEOUT = 1.0  # a health probe waits at most this (or --upstream-timeout if shorter)
DEADLINE_CAP = 4.0  # a forwarded query ends (SERVFAIL) before a stub's 5 s timeout
_NS_PROBE = dns.message.make_query(".", dns.rdatatype.NS).to_wire()  # `. IN NS`, RD set, as CoreDNS's health check
_NS_QUESTION: Question = _question(_NS_PROBE) or ()


class Overloaded(Exception):
    """--max-concurrent forwarded queries are already outstanding: answer REFUSED at once."""


def query_deadline(upstream_timeout: float) -> float:
    """The one deadline of a forwarded query: min(4.0, 2 × --upstream-timeout + 0.5) seconds.

    With the default 2 s that is 4 s: two upstreams each get their full 2 s read timeout (a
    silent first one, not yet marked down, still leaves the second its chance), and SERVFAIL
    goes out before the 5 s after which glibc and musl stubs give up on a server. The extra
    0.5 s is for a TC -> TCP retry. With one upstream the answer (or SERVFAIL) comes after at
    most --upstream-timeout, plus a TCP retry if the reply was truncated.
    """
    return min(DEADLINE_CAP, 2 * upstream_timeout + 0.5)


@dataclass(eq=False)
class UpstreamState:
    """One upstream's health and counters (for coredns_forward_* / coredns_proxy_* metrics)."""

    address: Address
    fails: int = 0  # consecutive attempts without a usable reply
    down: bool = False  # marked down after --max-fails fails; probed until it answers
    requests: int = 0  # attempts sent (coredns_forward_requests_total{to})
    responses: Counter[int] = field(default_factory=Counter)  # replies by RCODE (coredns_forward_responses_total{to,rcode})
    failures: int = 0  # attempts that timed out, were refused (ICMP) or got only garbage
    healthcheck_failures: int = 0  # failed `. NS` probes (coredns_proxy_healthcheck_failures_total{to})
    probe_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return hostport_text(*self.address)


class Forwarder:
    """The upstreams of one server: what the handler forwards through.

    - order: --upstream-policy random (a fresh shuffle per query, CoreDNS's default),
      round_robin (the starting upstream advances by one per query) or sequential (as given);
      upstreams marked down go after the healthy ones, and if every upstream is down they are
      all tried anyway (CoreDNS without failfast_all_unhealthy_upstreams; counted in
      `healthcheck_broken`);
    - health: --max-fails consecutive attempts without a usable reply (timeout, ICMP refused,
      garbage) mark an upstream down (0: never). A background task, owned by this object and
      started on the running loop, sends it `. IN NS` at once and then every 0.5 s until any
      valid reply comes back (a real query answered meanwhile also brings it back). REFUSED and
      SERVFAIL replies prove the upstream is alive: they reset the count (and the next upstream
      is tried for a better answer);
    - time: one deadline per query (query_deadline()), each attempt at most --upstream-timeout;
    - concurrency: past --max-concurrent outstanding upstream exchanges, forward() raises
      Overloaded at once (the handler answers REFUSED) and counts it in `rejects`
      (coredns_forward_max_concurrent_rejects_total). Cache hits are not outstanding;
    - cache: the answers of forwarded names (clusterdns.cache), if --cache > 0; `cache` is
      None otherwise.
    Replies are checked as forward() checks them (fresh ID and port, same question, connected
    UDP socket so only the upstream's address is heard). close() cancels the probe tasks.
    """

    def __init__(self, upstreams: Sequence[Address], config: Config | None = None) -> None:
        config = config if config is not None else Config()
        if not 0 < config.upstream_timeout <= 60:
            raise ConfigError(f"--upstream-timeout {config.upstream_timeout}: must be more than 0 and at most 60 seconds")
        if config.max_fails < 0:
            raise ConfigError(f"--max-fails {config.max_fails}: must be 0 (never mark down) or more")
        if config.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent {config.max_concurrent}: must be at least 1")
        if config.cache < 0:
            raise ConfigError(f"--cache {config.cache}: must be 0 (off) or more seconds")
        if config.cache_size < 1:
            raise ConfigError(f"--cache-size {config.cache_size}: must be at least 1")
        self.upstreams = tuple(upstreams)
        self.policy = config.upstream_policy
        self.attempt_timeout = config.upstream_timeout
        self.timeout = query_deadline(config.upstream_timeout)
        self.max_fails = config.max_fails
        self.max_concurrent = config.max_concurrent
        self.cache: Cache | None = Cache(config.cache, config.cache_size) if config.cache > 0 else None
        self.state = {u: UpstreamState(u) for u in self.upstreams}
        self.outstanding = 0  # upstream exchanges in progress
        self.rejects = 0  # queries refused for --max-concurrent
        self.healthcheck_broken = 0  # queries that found every upstream down (coredns_forward_healthcheck_broken_total)
        self._turn = 0  # round_robin's next first upstream
        self._closed = False

    async def forward(self, query: bytes, tcp: bool = False, parsed: Query | None = None) -> bytes | None:
        """The reply to the client's raw query (with its ID), or None if no upstream answered in time.
        `parsed`: the handler's parse_query() of it, so the question is not read again.

        Raises Overloaded when --max-concurrent exchanges are outstanding.
        """
        cache = self.cache
        key = None
        if cache is not None:
            key = cache.key(query) if parsed is None else cache.key_of(query, parsed)
            if key is not None:
                hit = cache.get(key, query)
                if hit is not None:
                    return hit
        if self.outstanding >= self.max_concurrent:
            self.rejects += 1
            raise Overloaded
        question = _question(query) if parsed is None else ((parsed.key[:-4], parsed.key[-4:]),)
        if question is None or not self.upstreams:
            return None
        self.outstanding += 1
        try:
            deadline = asyncio.get_running_loop().time() + self.timeout
            reply = await _in_order(query, question, self._order(), deadline, self.attempt_timeout, tcp, self._report)
        finally:
            self.outstanding -= 1
        if reply is not None and key is not None:
            return cache.put(key, query, reply)  # type: ignore[union-attr]
        return reply

    async def lookup(self, name: str, rdtype: int) -> dns.message.Message | None:
        """Ask the upstreams `name`/`rdtype` (RD set, EDNS0 payload 1232), through the cache; None on failure."""
        try:
            return _parsed(await self.forward(_lookup_query(name, rdtype)))
        except Overloaded:
            return None

    async def close(self) -> None:
        """Stop the health probes (those running on this loop are awaited)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        tasks = []
        for state in self.state.values():
            task, state.probe_task = state.probe_task, None
            if task is not None and not task.done():
                task.cancel()
                if task.get_loop() is loop:
                    tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def down(self) -> list[Address]:
        """The upstreams marked down now."""
        return [u for u, s in self.state.items() if s.down]

    # --- internals ------------------------------------------------------------------------------

    def _order(self) -> Sequence[Address]:
        upstreams = self.upstreams
        if len(upstreams) > 1:
            if self.policy == "random":
                upstreams = tuple(random.sample(upstreams, len(upstreams)))
            elif self.policy == "round_robin":
                turn = self._turn % len(upstreams)
                self._turn = turn + 1
                upstreams = upstreams[turn:] + upstreams[:turn]
        state = self.state
        healthy = [u for u in upstreams if not state[u].down]
        if len(healthy) == len(upstreams):
            return upstreams
        if not healthy:
            self.healthcheck_broken += 1
        return healthy + [u for u in upstreams if state[u].down]

    def _report(self, upstream: Address, reply: bytes | None) -> None:
        state = self.state[upstream]
        state.requests += 1
        if reply is not None:
            state.responses[reply[3] & 0x0F] += 1
            state.fails = 0
            if state.down:
                state.down = False
                log.info("upstream %s answers again", state.name)
            return
        state.failures += 1
        state.fails += 1
        if self.max_fails and state.fails >= self.max_fails:
            if not state.down:
                state.down = True
                log.warning("upstream %s marked down after %d failed queries; probing it with . NS every %.1f s",
                            state.name, state.fails, PROBE_INTERVAL)
            self._start_probe(state)

    def _start_probe(self, state: UpstreamState) -> None:
        """The probe task of a down upstream, started on the running loop unless one runs there."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        task = state.probe_task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        state.probe_task = loop.create_task(self._probe(state), name=f"probe {state.name}")

    async def _probe(self, state: UpstreamState) -> None:
        budget = min(self.attempt_timeout, PROBE_TIMEOUT)
        while state.down and not self._closed:
            reply = await _udp(_NS_PROBE, _NS_QUESTION, state.address, budget)
            if reply is not None:  # any valid reply, whatever its RCODE: the upstream is reachable
                if state.down:
                    state.down = False
                    state.fails = 0
                    log.info("upstream %s answers the health check again", state.name)
                return
            state.healthcheck_failures += 1
            await asyncio.sleep(PROBE_INTERVAL)


# --- forwarding loop detection (CoreDNS's loop plugin) -----------------------------------------

LOOP_PROBE_ZONE = "clusterdns-loop-probe."  # outside every zone of ours, so we would forward it
LOOP_CHECK_TIMEOUT = 2.0


def check_loop(sockets: Sequence[socket.socket], upstreams: Sequence[Address], timeout: float = LOOP_CHECK_TIMEOUT) -> None:
    """Raise ConfigError if a probe sent to an upstream comes back to one of our UDP `sockets`.

    Call it after binding and before serving: see find_loops().
    """
    looped = find_loops(sockets, upstreams, timeout)
    if looped:
        names = ", ".join(UpstreamState(u).name for u in looped)
        raise ConfigError(f"forwarding loop: a query sent to upstream{'s' if len(looped) > 1 else ''} {names} came back to us"
                          " (is /etc/resolv.conf or --upstream pointing at clusterdns itself?)")


def find_loops(sockets: Sequence[socket.socket], upstreams: Sequence[Address], timeout: float = LOOP_CHECK_TIMEOUT) -> list[Address]:
    """The upstreams through which a query comes back to us.

    Like CoreDNS's loop plugin, each upstream is sent `HINFO <random>.<random>.clusterdns-loop-probe.`
    (RD set; a name of its own per upstream, outside our zones, so a forwarder in between passes
    it on). Our own UDP `sockets` are bound but not yet served: we read them directly (select +
    recvfrom) and look for a probe name. The check ends when every upstream has answered (any
    valid reply), refused (ICMP) or looped, or after `timeout` seconds; an upstream that stays
    silent costs the whole timeout at start-up. Datagrams read from our sockets meanwhile are
    dropped, probes and early client queries alike (the clients retry; we were not serving yet).
    A probe that comes back over TCP is not seen (forwarders ask over UDP first).
    """
    probes: dict[bytes, Address] = {}
    waiting: dict[socket.socket, tuple[Address, int, Question]] = {}
    looped: set[Address] = set()
    try:
        for upstream in upstreams:
            name = f"{secrets.randbits(63)}.{secrets.randbits(63)}.{LOOP_PROBE_ZONE}"
            wire = dns.message.make_query(name, dns.rdatatype.HINFO).to_wire()
            question = _question(wire)
            assert question
            probes[question[0][0]] = upstream
            family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.connect(upstream)  # connected: only that address's replies are heard
                sock.send(wire)
            except OSError:
                sock.close()  # unreachable: no loop through it
                continue
            waiting[sock] = (upstream, struct.unpack_from("!H", wire)[0], question)
        ours = list(sockets)
        deadline = time.monotonic() + timeout
        grace = False
        while True:
            if not waiting and not grace:
                # Every upstream answered or looped: a looped copy may still be on its way (a
                # forwarder that asks all its servers at once answers from one, sends one to us).
                grace, deadline = True, min(deadline, time.monotonic() + 0.05)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select(ours + list(waiting), [], [], left)
            for sock in readable:
                if sock in waiting:
                    upstream, qid, question = waiting[sock]
                    try:
                        data = sock.recv(65535)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # ICMP port unreachable and the like: nothing there to loop through
                        data = b""
                    if not data or _matches(data, qid, question):
                        del waiting[sock]
                        sock.close()
                    continue
                for data in _drain(sock):
                    theirs = _question(data) if len(data) >= 12 and not data[2] & _QR else None
                    if theirs and len(theirs) == 1 and theirs[0][0] in probes:
                        upstream = probes[theirs[0][0]]
                        looped.add(upstream)
                        for other, (u, _, _) in list(waiting.items()):
                            if u == upstream:
                                del waiting[other]
                                other.close()
        return [u for u in upstreams if u in looped]
    finally:
        for sock in waiting:
            sock.close()


def _drain(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on `sock`, without blocking."""
    out = []
    while select.select([sock], [], [], 0)[0]:
        try:
            data, _ = sock.recvfrom(65535)
        except OSError:
            break
        out.append(data)
        if len(out) >= 1000:
            break
    return out
