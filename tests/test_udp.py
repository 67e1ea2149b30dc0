"""The UDP receive loops: recvmmsg/sendmmsg (the _udpbatch extension) and plain recvfrom/sendto.

Each is driven directly on loopback sockets, and `clusterdns serve` is run on each path
with real clients: many senders at once, bursts longer than one batch, IPv6, replies that
come later (forwarding) and replies the socket cannot take.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import dns.rcode
import pytest

from clusterdns import transports
from tests.conftest import SHARED
from tests.upstream import Upstream

FIXTURE = SHARED / "cases" / "fixture" / "unit"
PATHS = {"batched": {}, "plain": {"CLUSTERDNS_NO_MMSG": "1"}}


def loops() -> list[Callable[[socket.socket, Callable[[bytes, Any], bytes | None]], int]]:
    found = [transports._serve_plain]
    if transports._udpbatch is not None:
        found.append(transports._serve_batched)
    return found


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def client(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(5)
    return sock


@pytest.fixture
def clients() -> Iterator[Callable[..., socket.socket]]:
    """clients(family, host) -> a bound UDP client socket, closed after the test."""
    made: list[socket.socket] = []

    def make(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
        made.append(client(family, host))
        return made[-1]

    yield make
    for sock in made:
        sock.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="recvmmsg is Linux's")
def test_the_batched_loop_is_built_where_a_compiler_is() -> None:
    # Installed with `pip install -e .` on Linux, the extension must exist: without it the
    # server quietly falls back to one system call per datagram and loses a third of its speed.
    assert transports._udpbatch is not None, "clusterdns/_udpbatch.c was not compiled"
    assert transports.serve is transports._serve_batched or transports.serve is transports._serve_plain


@pytest.mark.parametrize("serve", loops(), ids=lambda f: f.__name__)
def test_each_sender_gets_its_own_replies(serve, listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
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
        assert serve(listener, answer) == 0
    assert len(seen) == 240
    for n, c in enumerate(senders):
        got = [c.recvfrom(100) for _ in range(80)]
        assert [data for data, _ in got] == [b"re:%d-%d" % (n, i) for i in range(80)]
        assert {addr for _, addr in got} == {listener.getsockname()}
    assert {peer for _, peer in seen} == {c.getsockname() for c in senders}


@pytest.mark.parametrize("serve", loops(), ids=lambda f: f.__name__)
def test_none_means_no_reply_and_big_datagrams_arrive_whole(serve, listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    big = bytes(range(256)) * 200  # 51,200 bytes: far past 512 and any EDNS buffer
    seen: list[bytes] = []
    c.sendto(b"quiet", listener.getsockname())
    c.sendto(big, listener.getsockname())
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        serve(listener, lambda data, peer: seen.append(data) or (None if data == b"quiet" else b"ok:%d" % len(data)))
    assert seen == [b"quiet", big]
    assert c.recvfrom(100)[0] == b"ok:51200"
    c.settimeout(0.2)
    with pytest.raises(TimeoutError):
        c.recvfrom(100)


@pytest.mark.parametrize("serve", loops(), ids=lambda f: f.__name__)
def test_ipv6_peers_keep_their_socket_module_spelling(serve, clients: Callable[..., socket.socket]) -> None:
    sock = clients(socket.AF_INET6, "::1")
    sock.setblocking(False)
    c = clients(socket.AF_INET6, "::1")
    c.sendto(b"six", sock.getsockname())
    peers: list[Any] = []
    deadline = time.monotonic() + 5
    while not peers and time.monotonic() < deadline:
        serve(sock, lambda data, peer: peers.append(peer) or b"back")
    assert peers == [c.getsockname()]  # ("::1", port, 0, 0), as socket.recvfrom gives it
    assert c.recvfrom(10) == (b"back", sock.getsockname())


@pytest.mark.skipif(transports._udpbatch is None, reason="the extension is not built")
def test_batched_loop_sends_what_is_ready_then_raises(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    for word in (b"one", b"two", b"boom", b"four"):
        c.sendto(word, listener.getsockname())

    def answer(data: bytes, peer: Any) -> bytes:
        if data == b"boom":
            raise ValueError("handler bug")
        return data.upper()

    time.sleep(0.05)  # all four queued, so one recvmmsg takes them together
    with pytest.raises(ValueError, match="handler bug"):
        transports._serve_batched(listener, answer)
    assert [c.recvfrom(10)[0] for _ in range(2)] == [b"ONE", b"TWO"]
    # The loop is usable again afterwards (its buffers are released on the error path).
    assert transports._serve_batched(listener, lambda d, p: None) == 0


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_server_answers_bursts_from_many_clients(path: str, serve_env) -> None:
    """`clusterdns serve` on each path: 8 threads x 300 queries at once, every reply right."""
    server = serve_env(PATHS[path])
    names = ["kubedns.kube-system.svc.cluster.local", "nothing.testns.svc.cluster.local", "dns-version.cluster.local"]
    failures: list[str] = []

    def worker(n: int) -> None:
        sock = client()
        try:
            for i in range(300):
                q = dns.message.make_query(names[(n + i) % 3], "TXT" if (n + i) % 3 == 2 else "A")
                sock.sendto(q.to_wire(), (server.host, server.port))
                reply = dns.message.from_wire(sock.recvfrom(4096)[0])
                if reply.id != q.id or reply.question != q.question:
                    failures.append(f"{n}/{i}: reply to another query")
                want = dns.rcode.NXDOMAIN if "nothing" in names[(n + i) % 3] else dns.rcode.NOERROR
                if reply.rcode() != want:
                    failures.append(f"{n}/{i}: {dns.rcode.to_text(reply.rcode())}")
        except Exception as e:  # noqa: BLE001 (reported below)
            failures.append(f"{n}: {e!r}")
        finally:
            sock.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures[:5]


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_server_sends_forwarded_replies_later_on_each_path(path: str, serve_env) -> None:
    with Upstream(["example.org. 60 IN A 192.0.2.10"], delay=0.05) as up:
        server = serve_env(PATHS[path], upstream=f"{up.address[0]}:{up.address[1]}")
        local = server.query("kubedns.kube-system.svc.cluster.local", "A")
        r = server.query("example.org", "A")
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].to_text() == "192.0.2.10"
        assert local.answer[0][0].to_text() == "10.0.0.10"


@pytest.fixture
def serve_env() -> Iterator[Callable[..., Any]]:
    """serve_env(env, upstream=...) -> a `clusterdns serve` on the unit fixture with `env` set."""
    from tests.conftest import Server, clusterdns_argv

    servers: list[Server] = []

    def start(env: dict[str, str], upstream: str = "none") -> Server:
        argv = clusterdns_argv("serve", "--manifests", str(FIXTURE), "--zone", "cluster.local", "--listen", "127.0.0.1:0", "--upstream", upstream)
        server = Server(argv, env=env)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def test_a_failing_receive_loop_logs_once_and_keeps_serving(caplog: pytest.LogCaptureFixture, clients: Callable[..., socket.socket]) -> None:
    """A bug outside the handler (here: the counters) costs its batch and one log line a
    minute, not a traceback per packet; the socket is read again on the next event."""
    import asyncio

    from clusterdns.metrics import ListenerStats

    class Echo:
        last = ("A", "NOERROR", "kubernetes", False)

        def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> bytes:
            return wire

    class Broken(ListenerStats):
        broken = True

        def record(self, *args: Any) -> None:
            if self.broken:
                raise RuntimeError("counter bug")
            super().record(*args)

    async def run() -> tuple[int, list[bytes]]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        stats = Broken("dns://test", "udp", 1)
        udp = transports.UDPServer(sock, Echo(), stats)  # type: ignore[arg-type]
        c = clients()
        c.setblocking(False)
        for i in range(5):
            c.sendto(b"bad%d" % i, sock.getsockname())
            await asyncio.sleep(0.02)
        stats.broken = False
        c.sendto(b"good", sock.getsockname())
        await asyncio.sleep(0.1)
        got = []
        while True:
            try:
                got.append(c.recv(100))
            except BlockingIOError:
                break
        udp.close()
        return udp.failures, got

    failures, got = asyncio.run(run())
    assert failures == 5
    assert got == [b"good"]
    lines = [r for r in caplog.records if "UDP receive loop failed" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is not None
