"""Server blocks: which answer chain a question goes through, as CoreDNS picks a server block
by the longest zone that holds the name (core/dnsserver/server.go ServeDNS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from clusterdns.rewrite import Rewriter
from clusterdns.serve.request import Pass, Request, Result
from clusterdns.snapshot.table import Snapshot


class Source(Protocol):
    """One answer source in a chain (a CoreDNS plugin): answers, or passes the question on."""

    plugin: str  # its name in metrics and logs, as CoreDNS's plugin label

    def serve(self, snap: Snapshot, request: Request) -> Result | Pass: ...


@dataclass(frozen=True)
class Block:
    """One server block: the zones it holds (label tuples; () is the root) and its sources, in order."""

    zones: tuple[tuple[str, ...], ...]
    sources: tuple[Source, ...]
    rewriter: Rewriter | None = None  # `rewrite name` rules, applied before the sources


class Blocks:
    """The blocks of a server, found by name: the longest zone that holds it wins, the root
    last (a stub domain `consul.local` beats `.`; `notconsul.local` is not under it)."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        self.blocks = tuple(blocks)
        self.by_zone: dict[tuple[str, ...], int] = {}
        for index, block in enumerate(self.blocks):
            for zone in block.zones:
                self.by_zone.setdefault(zone, index)  # the first block naming a zone has it
        self.root = self.by_zone.pop((), None)
        self.depths = sorted({len(z) for z in self.by_zone}, reverse=True)

    def find(self, labels: tuple[str, ...]) -> Block | None:
        """The block for a question's (lower-cased) labels; None: no block holds it (REFUSED)."""
        by_zone = self.by_zone
        for depth in self.depths:
            if depth <= len(labels):
                index = by_zone.get(labels[len(labels) - depth :])
                if index is not None:
                    return self.blocks[index]
        return self.blocks[self.root] if self.root is not None else None
