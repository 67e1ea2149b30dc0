"""Problems found while deriving, each naming the object, its file and its line."""

from __future__ import annotations

from typing import Any

from clusterdns.errors import Problem


def problem(obj: Any, level: str, message: str, field: str = "") -> Problem:
    """A Problem about a manifest object, a model Service or a Pod a workload would make
    (which names its kind in KIND)."""
    s = obj.source
    kind = getattr(obj, "KIND", None) or type(obj).__name__
    return Problem(level, message, file=s.file, doc=s.doc, line=s.line, kind=kind, name=display_name(obj), field=field)


def display_name(obj: Any) -> str:
    return f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
