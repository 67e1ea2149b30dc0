"""The manifests directory as per-file objects: incremental re-reads and per-file last-good.

A rescan stats every manifest file (following symlinks, so a ConfigMap volume's
`..data` swap shows up as changed files) and re-reads only files whose signature
changed. A file that stops parsing, or whose objects become invalid, keeps
contributing its last good objects until it is fixed or deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterdns.config.settings import Config
from clusterdns.errors import Problem
from clusterdns.manifests.files import list_files
from clusterdns.objects.fields import Reading
from clusterdns.objects.read import FileRead, read_files

Signature = tuple[int, int, int, int, int]


@dataclass
class FileState:
    signature: Signature
    # What this file contributes now: its last read, or (that read having an error) its last
    # good objects with that read's problems.
    read: FileRead
    good: bool  # the last read had no error

    @property
    def objects(self) -> list[Any]:
        return self.read.objects

    @property
    def problems(self) -> list[Problem]:
        return self.read.problems

    def last_read(self) -> FileRead | None:
        """What a re-read may keep of the documents that did not change: only a good read's."""
        return self.read if self.good and self.read.keys else None


@dataclass
class Change:
    """What one rescan found."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_last_good: list[str] = field(default_factory=list)
    walk: bool = False  # the walk's own problems changed (the directory went away or came back)

    @property
    def files(self) -> int:
        return len(self.added) + len(self.modified) + len(self.removed)

    def __str__(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.modified)} modified", f"{len(self.removed)} removed"]
        if self.kept_last_good:
            parts.append(f"{len(self.kept_last_good)} broken (serving their last good version)")
        return ", ".join(parts)


class ManifestStore:
    """Per-file objects of one manifests directory."""

    def __init__(self, root: str | Path, config: Config) -> None:
        self.root = Path(root)
        self.config = config
        self.files: dict[str, FileState] = {}
        self.walk_problems: list[Problem] = []
        self.reading = Reading(config.relaxed_service_names)  # one interner for every file, every refresh

    def refresh(self, full: bool = False) -> Change:
        """Rescan the directory; re-read new and changed files (every file when `full`)."""
        change = Change()
        paths, walk_problems = list_files(self.root)
        gone = not paths and not self.root.is_dir()
        if gone and self.files:  # an unmounted volume, a directory being swapped: what was read keeps serving
            walk_problems = [Problem("error", "manifests directory not found: serving the files read from it before until it is back", file=str(self.root))]
        change.walk, self.walk_problems = walk_problems != self.walk_problems, walk_problems
        if gone:
            return change  # nothing to remove, nothing to read
        current = set(paths)
        for rel in [r for r in self.files if r not in current]:
            del self.files[rel]
            change.removed.append(rel)
        changed = []
        for rel in paths:
            sig = self._signature(rel)
            old = self.files.get(rel)
            if sig is None or (old is not None and old.signature == sig and not full):
                continue
            changed.append((rel, sig, old))
        rels = [rel for rel, _, _ in changed]
        previous = [old.last_read() if old is not None and not full else None for _, _, old in changed]
        read = read_files(self.root, rels, self.reading, previous)  # many files: in worker processes
        for (rel, sig, old), result in zip(changed, read):
            self.files[rel] = self._state(rel, sig, old, result)
            (change.added if old is None else change.modified).append(rel)
            if not self.files[rel].good and old is not None and self.files[rel].objects is old.objects:
                change.kept_last_good.append(rel)
        return change

    def _signature(self, rel: str) -> Signature | None:
        try:
            st = os.stat(self.root / rel)  # follows symlinks: a swapped target is a change
        except OSError:
            return None
        # ctime too: every write moves it and utime cannot set it back, so a same-size edit
        # within one mtime tick (1-2 s on some file systems) is still a change.
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)

    def _state(self, rel: str, sig: Signature, old: FileState | None, read: FileRead) -> FileState:
        good = not any(p.level == "error" for p in read.problems)
        if not good and old is not None and (old.good or old.objects):
            # Per-file last good: the broken version does not replace what was serving.
            note = Problem("warning", "serving the last good version of this file until it is fixed", file=rel)
            return FileState(sig, FileRead(old.objects, read.problems + [note]), False)
        return FileState(sig, read, good)

    def outside_dirs(self) -> set[str]:
        """Directories outside the root that hold targets of symlinked manifests.

        inotify reports changes where they happen, so a `link.yaml -> ../elsewhere/x.yaml`
        needs a watch on `../elsewhere` too.
        """
        root = os.path.realpath(self.root)
        dirs = set()
        for rel in self.files:
            real = os.path.realpath(self.root / rel)
            if not real.startswith(root + os.sep):
                dirs.add(os.path.dirname(real))
        return dirs

    def newest_mtime(self) -> int:
        """The newest modification time (seconds) of the manifests and their directories:
        the same for every worker and replica reading the same files, so it makes a
        serial they agree on (a deletion shows in its directory's mtime)."""
        newest = 0
        dirs = {self.root}
        for rel, state in self.files.items():
            newest = max(newest, state.signature[0])
            dirs.add((self.root / rel).parent)
        for d in dirs:
            try:
                newest = max(newest, os.stat(d).st_mtime_ns)
            except OSError:
                pass
        return newest // 1_000_000_000

    def objects(self) -> list[Any]:
        return [obj for rel in sorted(self.files) for obj in self.files[rel].objects]

    def problems(self) -> list[Problem]:
        return list(self.walk_problems) + [p for rel in sorted(self.files) for p in self.files[rel].problems]
