"""What a plugin handler writes to while the Corefile is mapped: raw setting values, each with
where it came from, the server block's own facts, and warnings."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from clusterdns.config.corefile_syntax import Directive
from clusterdns.errors import ConfigError


class Located(Protocol):
    """Something written in a Corefile: a directive, an option, a server block."""

    line: int
    path: str


@dataclass
class Forward:
    """One `forward FROM TO...` of a block: FROM as a zone, TO as written (no resolv.conf)."""

    zone: str
    targets: list[str]
    resolv_conf: bool
    at: Directive


@dataclass
class Block:
    """One server block: its zones, its port, where it starts, what `bind` gave it, its
    `forward` lines and the plugins it names (to tell the cluster's block from a stub domain's)."""

    zones: list[str]
    port: int | None
    at: Located
    binds: list[str] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    plugins: list[Directive] = field(default_factory=list)

    @property
    def line(self) -> int:
        return self.at.line


class Context:
    """What a handler writes to: raw setting values with where each came from, and warnings."""

    def __init__(self, path: str, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings
        self.raw: dict[str, tuple[Any, str]] = {}  # setting -> (raw value, "FILE:LINE" or "")
        self.kubernetes_at: Directive | None = None
        self.cache_disabled: list[tuple[Directive, str, list[str]]] = []  # (where, success|denial, zones)

    def where(self, at: Located | int) -> str:
        """FILE:LINE of something written (an imported file's own name and line)."""
        if isinstance(at, int):
            return f"{self.path}:{at}"
        return f"{at.path}:{at.line}"

    def error(self, at: Located | int, message: str) -> ConfigError:
        return ConfigError(f"{self.where(at)}: {message}")

    def unknown(self, at: Located | int, what: str, name: str, known: Iterable[str]) -> ConfigError:
        """`what "name" is not supported`, with the known word it is closest to, if any."""
        close = difflib.get_close_matches(name, sorted(known), n=1)
        return self.error(at, f'{what} "{name}" is not supported by clusterdns' + (f' (did you mean "{close[0]}"?)' if close else ""))

    def warn(self, at: Located | int, message: str) -> None:
        self.warnings.append(f"{self.where(at)}: {message}")

    def set(self, name: str, value: Any, at: Located | int | None, what: str) -> None:
        where = self.where(at) if at is not None else ""
        if name in self.raw and self.raw[name][0] != value:
            raise ConfigError(f"{where}: {what} conflicts with {self.raw[name][1]} (clusterdns has one {name} for the whole server)")
        self.raw[name] = (value, where)

    def arity(self, e: Directive, low: int, high: int | None, what: str) -> None:
        n = len(e.args)
        if n < low or (high is not None and n > high):
            if high == low:
                want = f"{low} argument{'s' if low != 1 else ''}"
            elif high is None:
                want = f"at least {low} argument{'s' if low != 1 else ''}"
            else:
                want = f"{low} to {high} arguments" if low else f"at most {high} argument{'s' if high != 1 else ''}"
            raise self.error(e, f"{what} takes {want}, not {n}")

    def no_block(self, e: Directive, what: str) -> None:
        if e.block is not None:
            raise self.error(e, f"{what} takes no {{ }} block in clusterdns")


PluginHandler = Callable[[Context, Directive, Block], None]
