"""The UDP receive loops: recvmmsg/sendmmsg (the _udpbatch extension) and plain recvfrom/sendto.

Each is driven directly on loopback sockets: many senders, bursts longer than one batch,
IPv6 peers, a UDPServer on the real handler learning repeats, and a loop that fails. The
extension's known answers are in test_udp_known.py; `clusterdns serve` on each loop is in
tests/e2e/test_udp.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import pytest

from clusterdns.config.settings import Config
from clusterdns.ops.counters import ListenerStats
from clusterdns.serve import udp as listeners
from clusterdns.serve.server import Server as ClusterDNS
from tests.helpers.manifests import service_yaml
from tests.helpers.process import UNIT_FIXTURE
from tests.helpers.udp import drain, loops, needs_extension

FIXTURE = UNIT_FIXTURE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg is Linux's")
def test_the_batched_loop_is_built_where_a_compiler_is() -> None:
    # Installed with `pip install -e .` on Linux, the extension must exist: without it the
    # server quietly falls back to one system call per datagram and loses a third of its speed.
    assert listeners._udpbatch is not None, "clusterdns/serve/_udpbatch.c was not compiled"


@pytest.mark.parametrize("env, loop", [({}, "_serve_batched"), ({"CLUSTERDNS_NO_MMSG": "1"}, "_serve_plain")])
def test_clusterdns_no_mmsg_selects_the_plain_loop(env: dict[str, str], loop: str) -> None:
    if listeners._udpbatch is None:
        loop = "_serve_plain"
    environ = {k: v for k, v in os.environ.items() if k != "CLUSTERDNS_NO_MMSG"} | env
    code = "from clusterdns.serve import udp; print(udp.serve.__name__)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=30, check=True)
    assert run.stdout.strip() == loop


@pytest.mark.parametrize("loop", loops(), ids=lambda f: f.__name__)
def test_each_sender_gets_its_own_replies(loop, listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    """Three clients, 80 datagrams each (more than three batches of 64), all queued before
    the first drain (240 fit the default receive buffer)."""
    senders = [clients() for _ in range(3)]
    seen: list[tuple[bytes, Any]] = []

    def answer(data: bytes, peer: Any) -> bytes:
        seen.append((data, peer))
        return b"re:" + data

    for i in range(80):
        for n, c in enumerate(senders):
            c.sendto(b"%d-%d" % (n, i), listener.getsockname())
    deadline = time.monotonic() + 5
    while len(seen) < 240 and time.monotonic() < deadline:
        loop(listener, answer)
    assert len(seen) == 240
    for n, c in enumerate(senders):
        got = [c.recvfrom(100) for _ in range(80)]
        assert [data for data, _ in got] == [b"re:%d-%d" % (n, i) for i in range(80)]
        assert {addr for _, addr in got} == {listener.getsockname()}
    assert {peer for _, peer in seen} == {c.getsockname() for c in senders}


@pytest.mark.parametrize("loop", loops(), ids=lambda f: f.__name__)
def test_many_peers_each_get_their_own_replies(loop, listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    """200 clients on four loopback addresses, three rounds: more peers than the batched
    loop's 64 remembered (address, port) tuples, so remembered ones are replaced and reused."""
    senders = [clients(socket.AF_INET, f"127.0.0.{1 + i % 4}") for i in range(200)]
    seen: list[Any] = []

    def answer(data: bytes, peer: Any) -> bytes:
        seen.append(peer)
        return b"re:" + data

    for r in range(3):
        for n, c in enumerate(senders):
            c.sendto(b"%d-%d" % (n, r), listener.getsockname())
        deadline = time.monotonic() + 5
        while len(seen) < 200 * (r + 1) and time.monotonic() < deadline:
            loop(listener, answer)
        assert len(seen) == 200 * (r + 1)
    for n, c in enumerate(senders):
        assert [c.recvfrom(100)[0] for _ in range(3)] == [b"re:%d-%d" % (n, r) for r in range(3)]
    assert sorted(seen) == sorted(c.getsockname() for c in senders for _ in range(3))
    assert all(type(peer) is tuple and type(peer[0]) is str and type(peer[1]) is int for peer in seen)


@pytest.mark.parametrize("loop", loops(), ids=lambda f: f.__name__)
def test_none_means_no_reply_and_big_datagrams_arrive_whole(loop, listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    big = bytes(range(256)) * 200  # 51,200 bytes: far past 512 and any EDNS buffer
    seen: list[bytes] = []
    c.sendto(b"quiet", listener.getsockname())
    c.sendto(big, listener.getsockname())
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        loop(listener, lambda data, peer: seen.append(data) or (None if data == b"quiet" else b"ok:%d" % len(data)))
    assert seen == [b"quiet", big]
    assert c.recvfrom(100)[0] == b"ok:51200"
    c.settimeout(0.2)
    with pytest.raises(TimeoutError):
        c.recvfrom(100)


@pytest.mark.parametrize("loop", loops(), ids=lambda f: f.__name__)
def test_ipv6_peers_keep_their_socket_module_spelling(loop, clients: Callable[..., socket.socket]) -> None:
    sock = clients(socket.AF_INET6, "::1")
    sock.setblocking(False)
    c = clients(socket.AF_INET6, "::1")
    c.sendto(b"six", sock.getsockname())
    peers: list[Any] = []
    deadline = time.monotonic() + 5
    while not peers and time.monotonic() < deadline:
        loop(sock, lambda data, peer: peers.append(peer) or b"back")
    assert peers == [c.getsockname()]  # ("::1", port, 0, 0), as socket.recvfrom gives it
    assert c.recvfrom(10) == (b"back", sock.getsockname())


@needs_extension
def test_the_udp_server_learns_repeats_and_forgets_them_on_reload(tmp_path: Path, clients: Callable[..., socket.socket]) -> None:
    """Through the real handler: the second query is a known answer; a reload changes the
    answer and the listener's known answers start again for the new snapshot."""
    (tmp_path / "web.yaml").write_text(service_yaml("web", "10.96.0.20"))
    cluster = ClusterDNS(Config(manifests=tmp_path))
    cluster.load(full=True)
    query = dns.message.make_query("web.default.svc.cluster.local", "A")

    async def ask(udp: listeners.UDPServer, c: socket.socket) -> str:
        query.id = (query.id + 1) % 65536
        c.sendto(query.to_wire(), udp.sock.getsockname())
        for _ in range(100):
            await asyncio.sleep(0.01)
            try:
                reply = dns.message.from_wire(c.recv(512))
            except BlockingIOError:
                continue
            assert reply.id == query.id
            return reply.answer[0][0].to_text()
        raise AssertionError("no reply")

    async def run() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        udp = listeners.UDPServer(sock, cluster.handler, ListenerStats("dns://test", "udp", 1))
        c = clients()
        c.setblocking(False)
        try:
            assert await ask(udp, c) == "10.96.0.20"
            first = cluster.handler.current
            assert udp.replies.snapshot is first and list(udp.replies.table) == [query.to_wire()[2:]]
            assert await ask(udp, c) == "10.96.0.20"
            (tmp_path / "web.yaml").write_text(service_yaml("web", "10.96.0.21"))
            cluster.load(full=True)
            assert cluster.handler.current is not first
            assert await ask(udp, c) == "10.96.0.21"
            assert udp.replies.snapshot is cluster.handler.current
            assert await ask(udp, c) == "10.96.0.21"
            [(cell_key, cell)] = [(k, v) for k, v in udp.stats.cells.items()]
            assert sum(cell[1:]) == 4, "every answer counted once, known or not"
        finally:
            udp.close()

    asyncio.run(run())


def test_a_failing_receive_loop_logs_once_and_keeps_serving(caplog: pytest.LogCaptureFixture, clients: Callable[..., socket.socket]) -> None:
    """A bug outside the handler (here: the counters) costs its batch and one log line a
    minute, not a traceback per packet; the socket is read again on the next event."""

    class Broken(ListenerStats):
        broken = True

        def record(self, *args: Any) -> list[Any]:
            if self.broken:
                raise RuntimeError("counter bug")
            return super().record(*args)

    cluster = ClusterDNS(Config(manifests=FIXTURE))
    cluster.load(full=True)
    query = dns.message.make_query("kubedns.kube-system.svc.cluster.local", "A")

    async def run() -> tuple[int, list[bytes]]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        stats = Broken("dns://test", "udp", 1)
        udp = listeners.UDPServer(sock, cluster.handler, stats)
        c = clients()
        c.setblocking(False)
        for i in range(5):  # one at a time: each is its own failed batch
            c.sendto(query.to_wire(), sock.getsockname())
            for _ in range(200):
                if udp.failures > i:
                    break
                await asyncio.sleep(0.01)
        stats.broken = False
        c.sendto(query.to_wire(), sock.getsockname())
        got = []
        for _ in range(200):
            await asyncio.sleep(0.01)
            try:
                got.append(c.recv(512))
            except BlockingIOError:
                continue
            break
        await asyncio.sleep(0.05)  # nothing more may come
        with suppress(BlockingIOError):
            got.append(c.recv(512))
        udp.close()
        return udp.failures, got

    failures, got = asyncio.run(run())
    assert failures == 5
    assert len(got) == 1 and dns.message.from_wire(got[0]).answer[0][0].to_text() == "10.0.0.10"
    lines = [r for r in caplog.records if "UDP receive loop failed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is not None


def test_without_the_extension_the_plain_loop_serves() -> None:
    """README: without a compiler (no clusterdns.serve._udpbatch) the same loop runs on recvfrom/sendto."""
    code = ("import sys; sys.modules['clusterdns.serve._udpbatch'] = None\n"
            "from clusterdns.serve import udp; print(udp._udpbatch, udp.serve.__name__)")
    environ = {k: v for k, v in os.environ.items() if k != "CLUSTERDNS_NO_MMSG"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=30, check=True)
    assert run.stdout.split() == ["None", "_serve_plain"]


@needs_extension
@pytest.mark.parametrize("extension", [True, False], ids=["in C", "in Python"])
def test_timed_answers_count_their_ttls_down_and_expire(listener: socket.socket, clients: Callable[..., socket.socket], extension: bool) -> None:
    """A kept forwarded answer (serve/timed.py): TTL fields are the stored TTL less the whole
    seconds since the cache stored it, never below 0; counted as a cache request and a hit of
    its kind; past its lifetime it is not answered here (the callback gets the query)."""
    from clusterdns.serve.timed import timed_tail

    tail = bytes(range(8, 30)) + b"\x00\x00\x01\x2c" + b"\x00\x00\x00\x02"  # TTL fields at 22 and 26 of the tail
    ttls = b"".join(int.to_bytes(v, 4, sys.byteorder) for v in (22, 300, 26, 2))
    counts = [0, 0, 0]
    cell = [0.0] + [0] * (len(listeners.DURATION_BUCKETS) + 1)
    stored = time.monotonic() - 3.5  # 3 whole seconds old
    fresh = (tail, cell, None, ttls, stored, stored + 30.0, counts, 2)
    stale = (tail, cell, None, ttls, stored, stored + 3.0, counts, 1)
    if not extension:
        got = timed_tail(fresh, time.monotonic())
        assert got is not None and got[22:26] == (297).to_bytes(4, "big") and got[26:30] == b"\0\0\0\0"
        assert timed_tail(stale, time.monotonic()) is None and counts == [1, 0, 1]
        return
    c = clients()
    known = {b"\x01\x00fresh-enough": fresh, b"\x01\x00stale-enough": stale}
    called: list[bytes] = []
    c.sendto(b"\xab\xcd\x01\x00fresh-enough", listener.getsockname())
    c.sendto(b"\xab\xce\x01\x00stale-enough", listener.getsockname())
    snapshot = object()
    handler = type("Handler", (), {"current": snapshot})()  # what known answers for: the handler's current snapshot
    drain(listener, 2, lambda data, peer: called.append(data) or b"asked", handler, known, snapshot)
    replies = {c.recvfrom(100)[0] for _ in range(2)}
    assert called == [b"\xab\xce\x01\x00stale-enough"]
    assert replies == {b"\xab\xcd" + tail[:22] + (297).to_bytes(4, "big") + b"\0\0\0\0", b"asked"}
    assert counts == [1, 0, 1] and sum(cell[1:]) == 1
