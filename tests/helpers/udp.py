"""UDP test helpers: the receive loops there are, client sockets, and draining the extension's loop."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from clusterdns.serve import udp as listeners

needs_extension = pytest.mark.skipif(listeners._udpbatch is None, reason="the extension is not built")


def loops() -> list[Callable[[socket.socket, Callable[[bytes, Any], bytes | None]], None]]:
    """The receive loops this build has: plain recvfrom/sendto, and recvmmsg/sendmmsg when the extension is built."""
    found = [listeners._serve_plain]
    if listeners._udpbatch is not None:
        found.append(listeners._serve_batched)
    return found


def client(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
    """A UDP socket bound to `host`, with a 5 s timeout."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(5)
    return sock


def drain(listener: socket.socket, want: int, answer: Callable[[bytes, Any], bytes | None], *known: Any) -> None:
    """The extension's serve() until `want` datagrams were read (a known answer is read without a callback)."""
    got = 0
    deadline = time.monotonic() + 5
    while got < want and time.monotonic() < deadline:
        got += listeners._udpbatch.serve(listener.fileno(), answer, *known)[0]
    assert got == want
