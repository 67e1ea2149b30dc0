"""Fixtures of the serve unit tests: a loopback UDP listener and client sockets."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.udp import client


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A non-blocking UDP socket on 127.0.0.1, for a receive loop to serve."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


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
