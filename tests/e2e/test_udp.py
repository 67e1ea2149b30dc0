"""`clusterdns serve` on each UDP receive loop, recvmmsg/sendmmsg (the _udpbatch extension) and
plain recvfrom/sendto, with real clients: many senders at once, and replies that come later
(forwarding). The loops themselves are driven directly in tests/serve/test_udp.py."""

from __future__ import annotations

import threading

import dns.message
import dns.rcode
import pytest

from tests.helpers.process import UNIT_FIXTURE
from tests.helpers.udp import client
from tests.helpers.upstream import Upstream

FIXTURE = UNIT_FIXTURE
PATHS = {"batched": {}, "plain": {"CLUSTERDNS_NO_MMSG": "1"}}


@pytest.mark.parametrize("path", PATHS, ids=list(PATHS))
def test_server_answers_bursts_from_many_clients(path: str, serve) -> None:
    """`clusterdns serve` on each path: 8 threads x 300 queries at once, every reply right."""
    server = serve(FIXTURE, "--zone", "cluster.local", env=PATHS[path])
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
def test_server_sends_forwarded_replies_later_on_each_path(path: str, serve) -> None:
    with Upstream(["example.org. 60 IN A 192.0.2.10"], delay=0.05) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}", env=PATHS[path])
        local = server.query("kubedns.kube-system.svc.cluster.local", "A")
        r = server.query("example.org", "A")
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].to_text() == "192.0.2.10"
        assert local.answer[0][0].to_text() == "10.0.0.10"
