"""Errors and load-time problems, each naming where it came from."""

from __future__ import annotations

from dataclasses import dataclass


class ClusterDNSError(Exception):
    """Base class for every error clusterdns raises on purpose."""


class ConfigError(ClusterDNSError):
    """A setting that cannot be used; raised at start-up only."""


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
        what = f"{self.kind} {self.name}".strip()
        parts = [f"{self.level}: {where}"]
        if what:
            parts.append(what)
        if self.field:
            parts.append(f"field {self.field}")
        return ": ".join(parts) + f": {self.message}"


class ManifestError(ClusterDNSError):
    """A manifest object that cannot be used; carries the Problem that describes it."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem
