"""Manifest files into objects: each file's documents converted (convert.py), problems kept,
and many files read by forked worker processes when that is faster."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from clusterdns.errors import ManifestError, Problem
from clusterdns.manifests.documents import ReadResult
from clusterdns.manifests.files import gc_paused, read_documents
from clusterdns.model import Source
from clusterdns.objects.convert import from_manifest, object_ref
from clusterdns.objects.fields import Reading
from clusterdns.objects.kinds import KubeObject, ObjectRef

Read = list[KubeObject | ObjectRef]  # a file's objects


@dataclass(frozen=True)
class FileRead:
    """One file's objects and problems, and its documents' keys for the next read to compare."""

    objects: Read
    problems: list[Problem]
    keys: Sequence[int] = ()
    lines: Sequence[int] = ()  # each YAML document's first line


# Reading many files on several cores: forked workers parse and convert, and send back
# the slim objects. 2 cores, the other one idle: 10,000 Services + 50,000 Pod manifests
# (100 files, 60,000 documents) 3.7 -> 2.5 s; 10,000 Services + Deployments (20,000
# documents) 1.26 -> 0.9 s (load average 1.7 from other work: 1.26 -> 0.95 s). With the
# cores busy (load average 3) it was slower (1.3 -> 1.75 s): so only below a load average
# of one per core, and only in a single-threaded process (fork copies no other thread,
# and a lock another thread held would stay held in the child): the first load, not the
# watcher's reloads.
PARALLEL_MIN_FILES = 50
PARALLEL_MIN_BYTES = 5_000_000


def read_files(
    root: str | Path, rels: Sequence[str], reading: Reading | None = None, previous: Sequence[FileRead | None] = ()
) -> list[FileRead]:
    """`read_objects(read_file(root, rel))` for each file, in order.

    `previous`: each file's last read, if any; the documents that did not change since keep
    its objects and problems and are not read again. Many files (PARALLEL_MIN_FILES, or
    PARALLEL_MIN_BYTES in all) are read by worker processes when that is faster (see
    above); the results are the same.
    """
    reading = reading or Reading()
    workers = _parallel_workers(root, rels)
    if workers < 2 or any(previous):
        last = list(previous) + [None] * (len(rels) - len(previous))
        return [_read_one(str(root), rel, reading, before) for rel, before in zip(rels, last, strict=True)]
    context = multiprocessing.get_context("fork")
    # Each worker gets a Reading of its own (the parent's interner is not sent over).
    with context.Pool(workers, initializer=_start_worker, initargs=(reading.relaxed_service_names,)) as pool:
        return pool.map(_read_in_worker, [(str(root), rel) for rel in rels], chunksize=max(1, len(rels) // (workers * 8)))


def _read_one(root: str, rel: str, reading: Reading, previous: FileRead | None = None) -> FileRead:
    read = read_documents(root, rel, previous.keys, previous.lines) if previous is not None else read_documents(root, rel)
    problems: list[Problem] = []
    objects = read_objects(read.entries, problems, reading)
    if previous is not None and read.kept:
        part = 1 if read.by_item else 0  # "3" or "3/0" is document 3; a JSON List's "0/5" is item 5
        objects = _merged(previous.objects, objects, read.kept, part, lambda o: o.source.doc, _moved_object)
        problems = _merged(previous.problems, problems, read.kept, part, lambda p: p.doc, _moved_problem)
    return FileRead(objects, problems, read.keys, read.lines)


def _merged(old: list, new: list, kept: Mapping[int, tuple[int, int]], part: int, doc: Callable[[Any], str], move: Callable[[Any, str, int], Any]) -> list:
    """The objects (or problems) of the `kept` documents from `old`, moved to their new index and
    line, and those of the others from `new`, in document order as one read of the file gives them."""
    def index(item: Any) -> int:
        parts = doc(item).split("/")
        return int(parts[part]) if len(parts) > part and parts[part] else -1  # -1: not of one document (none in a file that reads)

    before: defaultdict[int, list[Any]] = defaultdict(list)
    for item in old:
        before[index(item)].append(item)
    out = list(new)
    for now, (was, lines) in kept.items():
        for item in before.get(was, ()):
            if now == was and not lines:
                out.append(item)
            else:
                parts = doc(item).split("/")
                parts[part] = str(now)
                out.append(move(item, "/".join(parts), lines))
    return sorted(out, key=index)  # stable: items of one document keep their order


def _moved_object(obj: Any, doc: str, lines: int) -> Any:
    return replace(obj, source=Source(obj.source.file, doc, obj.source.line + lines))


def _moved_problem(p: Problem, doc: str, lines: int) -> Problem:
    return replace(p, doc=doc, line=p.line + lines if p.line else 0)


_worker_reading = Reading()  # set in each worker process of read_files(), and only there


def _start_worker(relaxed_service_names: bool) -> None:
    global _worker_reading
    _worker_reading = Reading(relaxed_service_names)


def _read_in_worker(task: tuple[str, str]) -> FileRead:
    return _read_one(*task, _worker_reading)


def _parallel_workers(root: str | Path, rels: Sequence[str]) -> int:
    """How many processes should read these files: 1 (here) unless it pays (see PARALLEL_MIN_FILES)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if os.getloadavg()[0] >= cores:
        return 1
    if len(rels) < PARALLEL_MIN_FILES:
        size = 0
        for rel in rels:
            with suppress(OSError):
                size += os.stat(Path(root) / rel).st_size
        if size < PARALLEL_MIN_BYTES:
            return 1
    return min(cores, 8)


def read_objects(entries: Iterable[ReadResult], problems: list[Problem], reading: Reading | None = None) -> Read:
    """The objects of read documents; Problems (parse errors, invalid objects) go to `problems`.

    Documents of other kinds become ObjectRefs when they name a namespace, because any
    object in a namespace shows that the namespace exists.
    """
    with gc_paused():
        return _read_objects(entries, problems, reading or Reading())


def _read_objects(entries: Iterable[ReadResult], problems: list[Problem], reading: Reading) -> Read:
    out: list[KubeObject | ObjectRef] = []
    for entry in entries:
        if isinstance(entry, Problem):
            problems.append(entry)
            continue
        try:
            obj = from_manifest(entry, problems, reading)
        except ManifestError as e:
            problems.append(e.problem)
            continue
        if obj is None:
            ref = object_ref(entry)
            if ref is not None:
                out.append(ref)
        else:
            out.append(obj)
    return out
