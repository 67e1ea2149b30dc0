"""`--loadbalance round_robin` through `clusterdns serve`: repeated questions get their
addresses in every order, on the C path, the Python path and TCP (CoreDNS's
plugin/loadbalance/loadbalance.go shuffles every reply, cached ones included)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from tests.helpers.process import Server, clusterdns_argv, read_frame

HEADLESS = """\
apiVersion: v1
kind: Service
metadata: {name: pool, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: pool, namespace: default}
subsets:
- addresses: [{ip: 10.1.0.1}, {ip: 10.1.0.2}, {ip: 10.1.0.3}]
  ports: [{name: http, port: 80}]
"""
QNAME = "pool.default.svc.cluster.local."


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb")
    (root / "pool.yaml").write_text(HEADLESS)
    return root


def start(manifests: Path, *flags: str, env: dict[str, str] | None = None) -> Server:
    return Server(clusterdns_argv("serve", "--manifests", str(manifests), "--listen", "127.0.0.1:0", "--upstream", "none",
                                  "--health", "none", "--ready", "none", "--metrics", "none", *flags), env=env)


@pytest.fixture(scope="module", params=["batched", "plain"])
def balancing(request: pytest.FixtureRequest, manifests: Path) -> Iterator[Server]:
    server = start(manifests, env={"CLUSTERDNS_NO_MMSG": "1"} if request.param == "plain" else None)
    yield server
    server.stop()


def udp_orders(server: Server, qtype: str = "A", section: str = "answer", n: int = 120) -> set[tuple[str, ...]]:
    """The orders seen over `n` identical queries (the same bytes, so repeats are cache hits)."""
    wire = dns.message.make_query(QNAME, qtype).to_wire()
    seen = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for _ in range(n):
            sock.sendto(wire, (server.host, server.port))
            msg = dns.message.from_wire(sock.recv(65535))
            seen.add(tuple(rd.to_text() for rrset in getattr(msg, section) for rd in rrset))
    return seen


def test_udp_repeats_come_in_every_order(balancing: Server) -> None:
    orders = udp_orders(balancing)
    assert all(sorted(order) == ["10.1.0.1", "10.1.0.2", "10.1.0.3"] for order in orders)
    assert len(orders) == 6  # 120 draws of 6 orders: a missing one has odds below 1e-8


def test_srv_additional_addresses_are_shuffled(balancing: Server) -> None:
    assert len(udp_orders(balancing, "SRV", "additional")) == 6
    assert len(udp_orders(balancing, "SRV", "answer")) == 1  # SRV records keep their order (CoreDNS: "rest")


def test_tcp_repeats_come_in_every_order(balancing: Server) -> None:
    wire = dns.message.make_query(QNAME, "A").to_wire()
    seen = set()
    with socket.create_connection((balancing.host, balancing.port), timeout=5) as sock:
        for _ in range(120):
            sock.sendall(len(wire).to_bytes(2, "big") + wire)
            msg = dns.message.from_wire(read_frame(sock))
            seen.add(tuple(rd.address for rrset in msg.answer for rd in rrset))
    assert len(seen) == 6


def test_loadbalance_off_keeps_one_order(manifests: Path) -> None:
    server = start(manifests, "--loadbalance", "off")
    try:
        assert len(udp_orders(server, n=30)) == 1
    finally:
        server.stop()


def test_a_corefile_without_loadbalance_keeps_one_order(manifests: Path, tmp_path: Path) -> None:
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:53 {{\n    kubernetes cluster.local {{\n        manifests {manifests}\n    }}\n}}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0"))
    try:
        assert len(udp_orders(server, n=30)) == 1
    finally:
        server.stop()
    corefile.write_text(f".:53 {{\n    loadbalance\n    kubernetes cluster.local {{\n        manifests {manifests}\n    }}\n}}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0"))
    try:
        assert len(udp_orders(server)) == 6
    finally:
        server.stop()
