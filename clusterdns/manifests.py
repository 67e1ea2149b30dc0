"""Read Kubernetes manifests from a directory: files in, (file, document, line, mapping) out."""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from clusterdns.errors import Problem

try:  # libyaml is ~10x faster than the pure-Python loader
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

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
    with gc_paused():
        return _read_file(root, relpath)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic objects are built.

    Documents, objects and the derived cluster hold no reference cycles, so nothing waits
    for the collector; while tens of thousands of them are built it would run full
    collections over all of them again and again (10,000 Services + Deployments: 0.15 s
    of 1.5 s reading, a third of deriving).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_file(root: str | Path, relpath: str | PurePosixPath) -> list[Entry]:
    rel = PurePosixPath(relpath).as_posix()
    try:
        text = _read_text(Path(root) / rel)
    except OSError as e:
        return [Problem("error", f"cannot read file: {e.strerror or e}", file=rel)]
    except UnicodeDecodeError as e:
        return [Problem("error", f"not UTF-8 text (byte {e.start})", file=rel)]
    if rel.lower().endswith(".json"):
        return list(_json_entries(rel, text))
    return list(_yaml_entries(rel, text))


def _read_text(path: Path) -> str:
    """The file as text; its bytes are let go before it is parsed (a 60 MB dump: 60 MB less at the peak)."""
    return path.read_bytes().decode("utf-8-sig")


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

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"
# PyYAML's own constructors for the YAML 1.1 scalars (`yes` is a bool, `0o17` an int, ...).
_SCALARS = {
    f"tag:yaml.org,2002:{name}": SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float", "binary", "timestamp")
}
# First characters for which a plain scalar may be something other than a string.
_RESOLVED_FIRST = frozenset(k for k in _BaseLoader.yaml_implicit_resolvers if k is not None)
_SIMPLE_RESOLVERS = None not in _BaseLoader.yaml_implicit_resolvers and not _BaseLoader.yaml_path_resolvers
_resolved: dict[str, str] = {}  # plain scalar -> tag, for those that start with such a character
_RESOLVED_MAX = 20_000


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader; a plain scalar's tag is resolved once per distinct value.

    libyaml calls back into Python to resolve each plain scalar. One whose first character
    starts none of the YAML 1.1 implicit patterns (bool, int, float, null, timestamp,
    merge...) is a string, as PyYAML finds after trying no pattern; the others are cached.
    """

    if _SIMPLE_RESOLVERS:

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                if value[:1] not in _RESOLVED_FIRST:
                    return _STR
                tag = _resolved.get(value)
                if tag is None:
                    if len(_resolved) >= _RESOLVED_MAX:
                        _resolved.clear()
                    tag = _resolved[value] = super().resolve(kind, value, implicit)
                return tag
            return super().resolve(kind, value, implicit)


class _NotPlain(Exception):
    """A document `_document` leaves to PyYAML's own construction."""


_NO_KEY = object()


def _document(loader: Any) -> Any:
    """The next document's data, built straight from libyaml's events (after its DocumentStartEvent).

    PyYAML's `load` first composes the whole document into nodes (two Marks each), then
    walks them with generic, generator-based constructors. Building from the events is
    what that gives, for the plain data of manifests: mappings, sequences, anchors and the
    YAML 1.1 scalars (with PyYAML's own scalar constructors). Anything else (merge keys
    `<<`, `!!set`, unknown tags, an unhashable key, an undefined or repeated anchor) raises
    _NotPlain, and the caller lets PyYAML read the document: its result or its error.

    20,000 documents (10,000 Services + Deployments): stock CSafeLoader 79 µs per document,
    this 40 (median of 7). A 10 MB `kubectl get -o yaml` List of 30,000 items, one document:
    9.0 s and 670 MB peak before, 1.6 s and 145 MB (the nodes were never all alive at once).
    """
    anchors: dict[str, Any] = {}
    stack: list[list[Any]] = []  # [container, its pending key] for each open mapping/sequence
    root = None
    get_event, resolve = loader.get_event, loader.resolve
    while True:
        event = get_event()
        cls = event.__class__
        if cls is ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(ScalarNode, event.value, event.implicit)
            if tag == _STR:
                value = event.value
            elif tag == _INT and event.value.isdigit() and event.value[0] != "0":  # ports: a plain decimal
                value = int(event.value)
            else:
                scalar = _SCALARS.get(tag)
                if scalar is None:
                    raise _NotPlain(tag)
                value = scalar(loader, ScalarNode(tag, event.value))
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.tag not in (None, "!", _MAP if cls is MappingStartEvent else _SEQ):
                raise _NotPlain(event.tag)
            value = {} if cls is MappingStartEvent else []
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            root = stack.pop()[0]
            continue
        elif cls is AliasEvent:
            if event.anchor not in anchors:
                raise _NotPlain("undefined alias")
            value = anchors[event.anchor]
        elif cls is DocumentEndEvent:
            return root
        else:
            raise _NotPlain(cls.__name__)
        if cls is not AliasEvent and event.anchor is not None:
            if event.anchor in anchors:
                raise _NotPlain("repeated anchor")
            anchors[event.anchor] = value
        if not stack:
            root = value
        elif stack[-1][0].__class__ is list:
            stack[-1][0].append(value)
        elif stack[-1][1] is _NO_KEY:
            if value.__class__ is dict or value.__class__ is list:
                raise _NotPlain("unhashable key")
            stack[-1][1] = value
        else:
            stack[-1][0][stack[-1][1]] = value
            stack[-1][1] = _NO_KEY
        if cls is MappingStartEvent or cls is SequenceStartEvent:
            stack.append([value, _NO_KEY])




def _json_entries(rel: str, text: str) -> Iterator[Entry]:
    try:
        data = json.loads(text)  # 10x faster than reading the same text as YAML
    except json.JSONDecodeError as e:
        yield Problem("error", f"invalid JSON: {e.msg} (column {e.colno})", file=rel, doc="0", line=e.lineno)
        return
    line = _first_content_line(text, 1)
    yield from _expand(rel, "0", line, data)


def _yaml_entries(rel: str, text: str) -> Iterator[Entry]:
    chunks = _split_documents(text)
    documents = _load_stream(text, chunks)
    for index, (chunk, start_line) in enumerate(chunks):
        doc = str(index)
        if documents is not None:
            data = documents[index]
        else:
            try:
                data = _load(chunk)
            except yaml.YAMLError as e:
                yield _yaml_problem(rel, doc, chunk, start_line, e)
                continue
        if data is None:  # an empty document ("---" twice, or only comments)
            continue
        yield from _expand(rel, doc, _first_content_line(chunk, start_line), data)


def _load(chunk: str) -> Any:
    """The one document of a chunk (None when empty), as `yaml.load` with a safe loader gives it."""
    loader = _Loader(chunk)
    try:
        loader.get_event()  # StreamStartEvent
        data = None
        if not loader.check_event(StreamEndEvent):
            loader.get_event()  # DocumentStartEvent
            data = _document(loader)
        if loader.check_event(StreamEndEvent):
            return data
    except Exception:  # noqa: BLE001 - PyYAML's own reading says what is wrong, if anything
        pass
    finally:
        loader.dispose()
    return yaml.load(chunk, Loader=_Loader)  # a safe loader: plain data only


def _load_stream(text: str, chunks: list[tuple[str, int]]) -> list[Any] | None:
    """Each chunk's document, read with one loader for the whole file; None when that may differ.

    A loader per document cost 14 µs of set-up each (20,000 documents: 0.3 s). The whole
    file is read at once when it parses, has no `%` directive (those end a chunk, not
    start the next document), and yields one document per chunk, each starting inside its
    chunk. Otherwise (None) every chunk is read alone, for per-document errors and lines.
    """
    if text.startswith("%") or "\n%" in text:  # a directive line
        return None
    documents: list[Any] = []
    loader = _Loader(text)
    try:
        loader.get_event()  # StreamStartEvent
        while not loader.check_event(StreamEndEvent):
            index = len(documents)
            if index >= len(chunks):
                return None
            loader.get_event()  # DocumentStartEvent
            line = loader.peek_event().start_mark.line + 1  # where the content starts
            data = _document(loader)
            if data is not None and (line < chunks[index][1] or (index + 1 < len(chunks) and line >= chunks[index + 1][1])):
                return None
            documents.append(data)
    except Exception:  # noqa: BLE001 - read chunk by chunk instead: each document's own result or error
        return None
    finally:
        loader.dispose()
    return documents if len(documents) == len(chunks) else None


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


def _lines(text: str) -> Iterator[str]:
    """The lines of text as `str.splitlines(keepends=True)` gives them, a block at a time.

    Only the first lines are usually wanted: splitting all of a 60 MB `kubectl get -o json`
    dump (one document) to find its first line took 0.5 s and 150 MB.
    """
    size = 4096
    start = 0
    while start < len(text):
        lines = text[start : start + size].splitlines(keepends=True)
        if start + size < len(text):
            lines.pop()  # it may go on in the next block (or end in a "\r" of "\r\n")
            if not lines:  # a line longer than the block
                size *= 2
                continue
        yield from lines
        start += sum(map(len, lines))


def _only_preamble(chunk: str) -> bool:
    """True when a chunk has nothing but blank lines, comments and `%` directives."""
    for raw in _lines(chunk):
        s = raw.strip()
        if s and not s.startswith("#") and not raw.startswith("%"):
            return False
    return True


def _first_content_line(chunk: str, start_line: int) -> int:
    """The line of the first non-blank, non-comment line that is not a bare `---`."""
    line = start_line
    for raw in _lines(chunk):
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
