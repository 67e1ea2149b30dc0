"""What a plugin handler writes to while the Corefile is mapped: raw setting values, each with
the line it came from, and warnings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clusterdns.config.corefile_syntax import Directive
from clusterdns.errors import ConfigError


@dataclass
class Block:
    """One server block: its zones, its port, its first line, the addresses `bind` gave it."""

    zones: list[str]
    port: int | None
    line: int
    binds: list[str] = field(default_factory=list)


class Context:
    """What a handler writes to: raw setting values with the line each came from, and warnings."""

    def __init__(self, path: str, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings
        self.raw: dict[str, tuple[Any, int]] = {}
        self.kubernetes_line = 0
        self.forward_line = 0
        self.forward_to: list[str] | None = None
        self.cache_disabled: list[tuple[int, list[str]]] = []  # (line, zones) of `disable success|denial ZONES`

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}: {message}")

    def set(self, name: str, value: Any, line: int, what: str) -> None:
        if name in self.raw and self.raw[name][0] != value:
            raise self.error(line, f"{what} conflicts with line {self.raw[name][1]} (clusterdns has one {name} for the whole server)")
        self.raw[name] = (value, line)

    def arity(self, e: Directive, low: int, high: int | None, what: str) -> None:
        n = len(e.args)
        if n < low or (high is not None and n > high):
            if high == low:
                want = f"{low} argument{'s' if low != 1 else ''}"
            elif high is None:
                want = f"at least {low} argument{'s' if low != 1 else ''}"
            else:
                want = f"{low} to {high} arguments" if low else f"at most {high} argument{'s' if high != 1 else ''}"
            raise self.error(e.line, f"{what} takes {want}, not {n}")

    def no_block(self, e: Directive, what: str) -> None:
        if e.block is not None:
            raise self.error(e.line, f"{what} takes no {{ }} block in clusterdns")


Handler = Callable[[Context, Directive, Block], None]
