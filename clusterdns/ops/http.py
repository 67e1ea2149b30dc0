"""The operations HTTP routes CoreDNS users probe: /health, /ready, /metrics (and /status).

A minimal HTTP/1.0 responder on asyncio: one GET per connection, no keep-alive. Each
route has its own address (CoreDNS's health :8080, ready :8181, prometheus :9153),
and `none` turns it off (listen.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from clusterdns.ops.metrics import Counts, DNSCollector

log = logging.getLogger("clusterdns")

Response = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Awaitable[Response]]
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class OpsSource(Protocol):
    """What the routes read of the server (serve/server.py's Server)."""

    def not_ready(self) -> str: ...

    def status(self) -> dict[str, Any]: ...

    async def worker_counts(self) -> list[Counts]: ...


class Routes:
    """What each path answers, from the server's state."""

    def __init__(self, server: OpsSource, registry: CollectorRegistry, collector: DNSCollector) -> None:
        self.server = server
        self.registry = registry
        self.collector = collector  # takes the --workers children's counts for each scrape

    async def health(self) -> Response:
        # Liveness: OK while the process runs, during the lameduck drain too (CoreDNS health).
        return 200, "text/plain; charset=utf-8", b"OK"

    async def ready(self) -> Response:
        reason = self.server.not_ready()
        if reason:
            return 503, "text/plain; charset=utf-8", reason.encode()
        return 200, "text/plain; charset=utf-8", b"OK"

    async def metrics(self) -> Response:
        # With --workers, each child's counts first (server.worker_counts); nothing awaits
        # between handing them over and rendering, so concurrent scrapes cannot mix them up.
        self.collector.remote = await self.server.worker_counts()
        try:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        finally:
            self.collector.remote = []

    async def status(self) -> Response:
        return 200, "application/json", json.dumps(self.server.status(), indent=1).encode()


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, routes: dict[str, Route]) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        path = target.split("?", 1)[0]
        if path not in routes:
            status, ctype, body = 404, "text/plain", b"not found\n"
        elif method not in ("GET", "HEAD"):
            status, ctype, body = 405, "text/plain", b"GET only\n"
        else:
            status, ctype, body = await routes[path]()
        writer.write(f"HTTP/1.0 {status} {REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + (body if method != "HEAD" else b""))
        await writer.drain()
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError, ConnectionError):
        pass
    finally:
        writer.close()


async def start(address: tuple[str, int], routes: dict[str, Route]) -> tuple[asyncio.Server, int]:
    """Listen on address for these paths; returns the server and the bound port."""
    server = await asyncio.start_server(lambda r, w: _serve_one(r, w, routes), address[0], address[1], reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    return server, port
