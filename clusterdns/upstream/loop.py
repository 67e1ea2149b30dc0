"""Forwarding loop detection, as CoreDNS's loop plugin: run once at start-up, after binding."""

from __future__ import annotations

import secrets
import select
import socket
import struct
import time
from collections.abc import Sequence

import dns.message
import dns.rdatatype

from clusterdns.config.addresses import Address, hostport_text
from clusterdns.errors import ConfigError
from clusterdns.upstream.exchange import _QR, Question, matches, question_of

LOOP_PROBE_ZONE = "clusterdns-loop-probe."  # outside every zone of ours, so we would forward it
LOOP_CHECK_TIMEOUT = 2.0


def check_loop(sockets: Sequence[socket.socket], upstreams: Sequence[Address], timeout: float = LOOP_CHECK_TIMEOUT) -> None:
    """Raise ConfigError if a probe sent to an upstream comes back to one of our UDP `sockets`.

    Call it after binding and before serving: see find_loops().
    """
    looped = find_loops(sockets, upstreams, timeout)
    if looped:
        names = ", ".join(hostport_text(*u) for u in looped)
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
            question = question_of(wire)
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
                    if not data or matches(data, qid, question):
                        del waiting[sock]
                        sock.close()
                    continue
                for data in _drain(sock):
                    theirs = question_of(data) if len(data) >= 12 and not data[2] & _QR else None
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
