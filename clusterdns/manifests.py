"""Read Kubernetes manifests from a directory: files in, (file, document, line, mapping) out."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from clusterdns.errors import Problem

try:  # libyaml is ~10x faster than the pure-Python loader
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# kubectl splits a stream at lines that start with "---" (k8s.io/apimachinery
# pkg/util/yaml YAMLReader); the YAML spec forbids such a line inside content, so
# splitting the text ourselves is safe and gives each document its own line number
# and its own parse error.
_SEPARATOR = re.compile(r"^---(?=[ \t\r]|$)", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One YAML/JSON document: a mapping, where it was found, and its first line."""

    file: str  # path relative to the manifests root, posix separators
    doc: str  # "0", "1", ... or "0/3" for item 3 of a `kind: List` in document 0
    line: int  # 1-based line where the document's content starts (a List item: the List's)
    data: dict[str, Any]


Entry = Document | Problem


def is_manifest_path(relpath: str | PurePosixPath) -> bool:
    """True when a path (relative to the root) names a file `read_directory` would read.

    Every component starting with `.` is hidden: dotfiles, `.git`, editor swap files,
    and the `..data` / `..2024_...` internals of a Kubernetes ConfigMap volume (whose
    top-level `file.yaml -> ..data/file.yaml` links are what we read). Names ending in
    `~` are editor backups.
    """
    parts = PurePosixPath(relpath).parts
    if not parts or any(_hidden(p) for p in parts):
        return False
    return parts[-1].lower().endswith(MANIFEST_SUFFIXES)


def read_directory(root: str | Path) -> list[Entry]:
    """Every document of every manifest under `root`, recursively, sorted by path.

    Symlinked files and directories are followed (each real directory is entered once,
    so link loops end). Unparseable files or documents become error Problems naming the
    file and line; the other documents are still returned.
    """
    base = Path(root)
    if base.is_file():
        return read_file(base.parent, base.name)
    paths, problems = list_files(base)
    entries: list[Entry] = list(problems)
    for rel in paths:
        entries.extend(read_file(base, rel))
    return entries


def list_files(root: str | Path) -> tuple[list[str], list[Problem]]:
    """The manifest files under `root` (relative posix paths, sorted) and walk problems.

    The same walk as `read_directory`: hidden names skipped, symlinks followed, each real
    directory entered once; a dangling symlink is a warning.
    """
    base = Path(root)
    if not base.is_dir():
        return [], [Problem("error", "manifests directory not found", file=str(root))]
    problems: list[Problem] = []
    paths = sorted(_walk(base, PurePosixPath(), {os.path.realpath(base)}, problems))
    return paths, problems


def read_file(root: str | Path, relpath: str | PurePosixPath) -> list[Entry]:
    """The documents of one manifest file (for incremental reloads)."""
    rel = PurePosixPath(relpath).as_posix()
    try:
        raw = (Path(root) / rel).read_bytes()
    except OSError as e:
        return [Problem("error", f"cannot read file: {e.strerror or e}", file=rel)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [Problem("error", f"not UTF-8 text (byte {e.start})", file=rel)]
    if rel.lower().endswith(".json"):
        return list(_json_entries(rel, text))
    return list(_yaml_entries(rel, text))


# --- directory walk ---------------------------------------------------------------


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.endswith("~")


def _walk(directory: Path, rel: PurePosixPath, seen: set[str], problems: list[Problem]) -> Iterator[str]:
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        problems.append(Problem("error", f"cannot list directory: {e.strerror or e}", file=rel.as_posix() or "."))
        return
    for entry in entries:
        if _hidden(entry.name):
            continue
        child = rel / entry.name
        if entry.is_dir(follow_symlinks=True):
            real = os.path.realpath(entry.path)
            if real not in seen:  # a symlink loop, or a directory already read under another name
                seen.add(real)
                yield from _walk(Path(entry.path), child, seen, problems)
        elif entry.name.lower().endswith(MANIFEST_SUFFIXES):
            if entry.is_file(follow_symlinks=True):
                yield child.as_posix()
            elif entry.is_symlink():
                problems.append(Problem("warning", "dangling symlink skipped", file=child.as_posix()))


# --- parsing ----------------------------------------------------------------------


def _json_entries(rel: str, text: str) -> Iterator[Entry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        yield Problem("error", f"invalid JSON: {e.msg} (column {e.colno})", file=rel, doc="0", line=e.lineno)
        return
    line = _first_content_line(text, 0, 1)
    yield from _expand(rel, "0", line, data)


def _yaml_entries(rel: str, text: str) -> Iterator[Entry]:
    for index, (chunk, start_line) in enumerate(_split_documents(text)):
        doc = str(index)
        try:
            data = yaml.load(chunk, Loader=_Loader)  # a safe loader: plain data only
        except yaml.YAMLError as e:
            yield _yaml_problem(rel, doc, chunk, start_line, e)
            continue
        if data is None:  # an empty document ("---" twice, or only comments)
            continue
        yield from _expand(rel, doc, _first_content_line(chunk, 0, start_line), data)


def _split_documents(text: str) -> list[tuple[str, int]]:
    """Split a YAML stream at `---` lines: (document text, line of its first character).

    Each chunk keeps its own `---` line, so `--- !tag ...` still parses. A leading chunk
    holding only comments or `%` directives is not a document of its own: it is joined
    to the next one.
    """
    starts = [m.start() for m in _SEPARATOR.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    chunks: list[tuple[str, int]] = []
    line = 1
    pending = ""  # leading comments/directives waiting for their document
    pending_line = 1
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        if i == 0 and start == 0 and not chunk.startswith("---") and _only_preamble(chunk) and len(starts) > 1:
            pending, pending_line = chunk, line
        elif pending:
            chunks.append((pending + chunk, pending_line))
            pending = ""
        else:
            chunks.append((chunk, line))
        line += chunk.count("\n")
    return chunks


def _only_preamble(chunk: str) -> bool:
    """True when a chunk has nothing but blank lines, comments and `%` directives."""
    for raw in chunk.splitlines():
        s = raw.strip()
        if s and not s.startswith("#") and not raw.startswith("%"):
            return False
    return True


def _first_content_line(chunk: str, offset: int, start_line: int) -> int:
    """The line of the first non-blank, non-comment line that is not a bare `---`."""
    line = start_line
    for raw in chunk[offset:].splitlines():
        s = raw.strip()
        bare_marker = raw.startswith("---") and (len(s) == 3 or s[3:].lstrip().startswith("#"))
        if s and not s.startswith("#") and not raw.startswith("%") and not bare_marker:
            return line
        line += 1
    return start_line


def _yaml_problem(rel: str, doc: str, chunk: str, start_line: int, e: yaml.YAMLError) -> Problem:
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = ": ".join(p for p in (e.context, e.problem) if p)
        last_line = start_line + chunk.rstrip("\r\n").count("\n")  # "end of stream" marks point past it
        line = min(start_line + mark.line, last_line)
        return Problem("error", f"invalid YAML: {what} (column {mark.column + 1})", file=rel, doc=doc, line=line)
    return Problem("error", f"invalid YAML: {e}", file=rel, doc=doc, line=start_line)


def _expand(rel: str, doc: str, line: int, data: Any) -> Iterator[Entry]:
    """One Document, or one per item of a `kind: List` (also typed lists like `ServiceList`)."""
    if not isinstance(data, dict):
        yield Problem("error", f"document is a {type(data).__name__}, not a mapping; ignored", file=rel, doc=doc, line=line)
        return
    kind = data.get("kind")
    items = data.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        # Raw API lists (`PodList`) omit kind/apiVersion on their items; `kubectl get
        # -o yaml` writes `kind: List` with complete items.
        item_kind = kind[: -len("List")]
        for i, item in enumerate(items):
            if isinstance(item, dict) and item_kind and "kind" not in item:
                item = {**item, "kind": item_kind, "apiVersion": item.get("apiVersion", data.get("apiVersion"))}
            yield from _expand(rel, f"{doc}/{i}", line, item)
        return
    yield Document(rel, doc, line, data)
