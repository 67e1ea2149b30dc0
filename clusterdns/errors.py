"""Errors and load-time problems, each naming where it came from."""

from __future__ import annotations

import heapq
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass


class ClusterDNSError(Exception):
    """Base class for every error clusterdns raises on purpose."""


class ConfigError(ClusterDNSError):
    """A setting that cannot be used; raised at start-up only."""

    def __str__(self) -> str:  # a quoted value too long to read (a 5,000-digit "plugin name") is cut, as shown() cuts
        return _LONG_QUOTED.sub(lambda m: f"{m[1]}{m[2][:SHOWN]}...{m[1]} ({len(m[2]):,} characters)", super().__str__())


SHOWN = 60  # characters of a value a message quotes
# A quoted value without spaces (prose between two apostrophes has some): what a message
# quotes of the user's text; its paths are not quoted, so they stay whole.
_LONG_QUOTED = re.compile(rf"(['\"])([^'\"\s]{{{SHOWN + 21},}})\1")


def printable(number: int) -> bool:
    """Whether str() can write the integer: Python refuses past sys.get_int_max_str_digits()
    decimal digits (4,300 by default), which a hex or octal literal can pass."""
    limit = sys.get_int_max_str_digits()
    return not limit or number.bit_length() < limit * 3.32  # log2(10) bits a digit, rounded down


def shown(value: object) -> str:
    """A value as a message quotes it (its repr), cut after SHOWN characters with its length
    said: a 4,301-digit port or a 100 KB label is named, not printed whole."""
    if isinstance(value, int) and not printable(value):
        return f"an integer of {value.bit_length():,} bits"
    text = repr(value)
    if len(text) <= SHOWN + 20:
        return text
    return f"{text[:SHOWN]}... ({len(value) if isinstance(value, str) else len(text):,} characters)"


def cut(text: str) -> str:
    """Text of the user's that a message writes unquoted (a selector), cut as shown() cuts."""
    return text if len(text) <= SHOWN + 20 else f"{text[:SHOWN]}... ({len(text):,} characters)"


@dataclass(frozen=True)
class Problem:
    """One error or warning found while reading manifests or deriving the cluster.

    `file` is the manifest path as given (relative to the manifests directory when
    possible), `doc` the 0-based document index inside a multi-document file (or the
    item index inside a `kind: List`, written as "3/2"), `line` the 1-based line where
    that document starts (0 when unknown), `field` a dotted path like `spec.ports[0].port`.
    """

    level: str  # "error" | "warning"
    message: str
    file: str = ""
    doc: str = ""
    line: int = 0
    kind: str = ""
    name: str = ""
    field: str = ""

    def __str__(self) -> str:
        where = self.file or "<manifests>"
        if self.line:
            where += f":{self.line}"
        if self.doc:
            where += f" (document {self.doc})"
        what = f"{self.kind} {cut(self.name)}".strip()
        parts = [f"{self.level}: {where}"]
        if what:
            parts.append(what)
        if self.field:
            parts.append(f"field {self.field}")
        return ": ".join(parts) + f": {self.message}"


# A word that carries a value (a number, an address, a quoted string, a path, a name, a
# selector): what differs between problems of the same class.
_VALUE = re.compile(r"\S*[0-9'\"/=]\S*")
_INDEX = re.compile(r"\[\d+\]")
FIRST = 3  # the objects a repeated problem names


def problem_class(p: Problem) -> tuple[str, str, str, str]:
    """What problems that repeat share: level, kind, field (indices left out) and message
    (values left out): `selector app=a matches no Pods` and `... app=b ...` are one class."""
    return p.level, p.kind, _INDEX.sub("[*]", p.field), _VALUE.sub("…", _CUT.sub("", p.message))


_CUT = re.compile(r"\.\.\. \([\d,]+ characters\)")  # what shown() and cut() add to a long value: one class with the short ones


@dataclass(frozen=True)
class Repeated:
    """One problem class found more than FIRST times, said once: the count, the first
    few objects by file and line, the message (whose last words say the fix)."""

    problems: tuple[Problem, ...]

    @property
    def level(self) -> str:
        return self.problems[0].level

    def __str__(self) -> str:
        first, n = self.problems[0], len(self.problems)
        kind = first.kind or "file"
        what = f"{n} {kind if kind.endswith('s') else kind + 's'}"
        same_field = all(p.field == first.field for p in self.problems)
        field = f"field {first.field if same_field else _INDEX.sub('[*]', first.field)}: " if first.field else ""
        alike = "" if all(p.message == first.message for p in self.problems) else " (and alike)"
        first_few = ", ".join(_where(p) for p in heapq.nsmallest(FIRST, self.problems, key=lambda p: (p.file, p.line)))
        return f"{self.level}: {what}: {field}{first.message}{alike} (first: {first_few}; {n - FIRST} more: `clusterdns check` lists every one)"


def _where(p: Problem) -> str:
    where = f"{p.file or '<manifests>'}:{p.line}" if p.line else p.file or "<manifests>"
    if "/" in p.doc:  # an item of a `kind: List`: they share the List's line
        where += f" item {p.doc.split('/')[1]}"
    return f"{where} {p.name}" if p.name else where


def summarize(problems: Iterable[Problem]) -> list[Problem | Repeated]:
    """The problems as the log says them: a class found more than FIRST times is one line
    (Repeated), at the place of its first problem; the others as they are."""
    listed = list(problems)
    # Grouped by what they say word for word first (most repeats do), then by class.
    same: dict[tuple[str, str, str, str], list[Problem]] = {}
    for p in listed:
        same.setdefault((p.level, p.kind, p.field, p.message), []).append(p)
    classes: dict[tuple[str, str, str, str], list[Problem]] = {}
    for found in same.values():
        classes.setdefault(problem_class(found[0]), []).extend(found)
    big = {id(found[0]): found for found in classes.values() if len(found) > FIRST}
    members = {id(p) for found in big.values() for p in found}
    out: list[Problem | Repeated] = []
    for p in listed:
        if id(p) not in members:
            out.append(p)
        elif id(p) in big:
            out.append(Repeated(tuple(big[id(p)])))
    return out


class ManifestError(ClusterDNSError):
    """A manifest object that cannot be used; carries the Problem that describes it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem
