"""Idle TCP connections to the upstreams, reused first in, first out, as CoreDNS's forward keeps
them (plugin/pkg/proxy/persistent.go): --upstream-expire closes one left idle that long,
--max-idle-conns bounds how many wait per upstream."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable

from clusterdns.config.addresses import Address

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class TCPPool:
    """Connections per upstream; `hits`/`misses` count reuses and new dials per upstream
    (coredns_proxy_conn_cache_hits_total / _misses_total{to, proto="tcp"})."""

    def __init__(self, expire: float, max_idle: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.expire = expire  # 0: a connection is never kept
        self.max_idle = max_idle  # 0: no bound
        self.clock = clock
        self.idle: dict[Address, deque[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]]] = {}
        self.hits: Counter[Address] = Counter()
        self.misses: Counter[Address] = Counter()

    def take(self, upstream: Address) -> Connection | None:
        """The oldest idle connection to `upstream` still fit to use (counted as a hit), or None
        (counted as a miss: the caller dials)."""
        waiting = self.idle.get(upstream)
        now = self.clock()
        while waiting:
            reader, writer, used = waiting.popleft()
            if now - used > self.expire or writer.is_closing() or reader.at_eof():
                writer.close()
                continue
            self.hits[upstream] += 1
            return reader, writer
        self.misses[upstream] += 1
        return None

    def give(self, upstream: Address, connection: Connection) -> None:
        """A connection whose exchange went well, back to wait for the next one (or closed)."""
        reader, writer = connection
        waiting = self.idle.setdefault(upstream, deque())
        if self.expire <= 0 or (self.max_idle and len(waiting) >= self.max_idle) or writer.is_closing():
            writer.close()
            return
        waiting.append((reader, writer, self.clock()))

    def close(self) -> None:
        for waiting in self.idle.values():
            for _, writer, _ in waiting:
                writer.close()
        self.idle.clear()
