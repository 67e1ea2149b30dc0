"""The manifests directory: which files count, and reading one file into documents."""

from __future__ import annotations

import codecs
import gc
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from clusterdns.errors import Problem
from clusterdns.manifests.documents import ReadResult, document_keys, split_documents, yaml_documents
from clusterdns.manifests.json_items import json_file

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def list_files(root: str | Path) -> tuple[list[str], list[Problem]]:
    """The manifest files under `root` (relative posix paths, sorted) and walk problems.

    Hidden names skipped, symlinks followed, each real
    directory entered once; a dangling symlink is a warning.
    """
    base = Path(root)
    if not base.is_dir():
        return [], [Problem("error", "manifests directory not found", file=str(root))]
    problems: list[Problem] = []
    paths = sorted(_walk(base, PurePosixPath(), {os.path.realpath(base)}, problems))
    if not paths:  # a typo in the path, or files not yet written: said, not an empty zone in silence
        problems.append(Problem("warning", f"no manifest files ({', '.join(MANIFEST_SUFFIXES)}) here yet: the cluster is empty", file=str(root)))
    return paths, problems


@dataclass(frozen=True)
class FileDocuments:
    """What reading one file gave: its documents and problems, but those `kept` from the previous read."""

    entries: list[ReadResult]
    keys: Sequence[int] = ()  # each document's key (documents.py), or a JSON List's and its items' (json_items.py)
    lines: Sequence[int] = ()  # each YAML document's first line
    # Documents left unread: index -> (its index in the previous read, how many lines it moved)
    kept: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    by_item: bool = False  # the indexes are of a JSON List's items (json_items.py), not of YAML documents


def read_file(root: str | Path, relpath: str | PurePosixPath) -> list[ReadResult]:
    """The documents of one manifest file."""
    return read_documents(root, relpath).entries


def read_documents(root: str | Path, relpath: str | PurePosixPath, keys: Sequence[int] = (), lines: Sequence[int] = ()) -> FileDocuments:
    """The documents of one manifest file, but those whose key is one of `keys` (the file's
    last read, its documents starting at `lines`): an edit of one Service in a file of 1,600
    documents parses one document, not 1,600 (130 ms -> 5 ms), and a line added moves the
    documents after it rather than have them read again."""
    with gc_paused():
        return _read_file(root, relpath, keys, lines)


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


def _read_file(root: str | Path, relpath: str | PurePosixPath, previous: Sequence[int], previous_lines: Sequence[int]) -> FileDocuments:
    rel = PurePosixPath(relpath).as_posix()
    path, is_json = Path(root) / rel, rel.lower().endswith(".json")
    try:
        if is_json:
            data = _read_utf8(path)  # JSON is parsed from its bytes
        else:
            text = _read_text(path)
    except OSError as e:
        return FileDocuments([Problem("error", f"cannot read file: {e.strerror or e}", file=rel)])
    except UnicodeDecodeError as e:
        return FileDocuments([Problem("error", f"not UTF-8 text (byte {e.start})", file=rel)])
    if is_json:
        entries, keys, same = json_file(rel, data, previous)
        return FileDocuments(entries, keys, kept={i: (i, 0) for i in same}, by_item=True)
    chunks = split_documents(text)
    keys = document_keys(chunks)
    lines = array("I", [line for _, line in chunks])
    first: dict[int, int] = {}
    for i, key in enumerate(previous):
        first.setdefault(key, i)
    kept = {j: (first[key], lines[j] - previous_lines[first[key]]) for j, key in enumerate(keys) if key in first}
    return FileDocuments(list(yaml_documents(rel, text, chunks, frozenset(kept))), keys, lines, kept)


def _read_text(path: Path) -> str:
    """The file as text; its bytes are let go before it is parsed (a 60 MB dump: 60 MB less at the peak)."""
    return path.read_bytes().decode("utf-8-sig")


def _read_utf8(path: Path) -> bytes:
    """The file's bytes less a UTF-8 BOM, checked to be UTF-8 as _read_text checks them (JSON is
    parsed from bytes: json_items.py)."""
    data = path.read_bytes()
    if not data.isascii():  # 0.5 ms for 11 MB of ASCII, against 6 ms to decode it
        data.decode("utf-8-sig")
    return data[3:] if data.startswith(codecs.BOM_UTF8) else data


# --- directory walk ---------------------------------------------------------------


def _hidden(name: str) -> bool:
    """Names the walk skips: every name starting with `.` (dotfiles, `.git`, editor swap files,
    and the `..data` / `..2024_...` internals of a Kubernetes ConfigMap volume, whose top-level
    `file.yaml -> ..data/file.yaml` links are what is read), and editor backups ending in `~`."""
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
