"""Watch the manifests directory with watchdog and call back once per burst of changes."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

log = logging.getLogger("clusterdns")

DEBOUNCE = 0.05  # seconds of quiet before a rebuild: one rebuild per editor save or git checkout
WRITE_WAIT = 2.0  # seconds a file still open for writing may hold a rebuild back


class _Events(FileSystemEventHandler):
    """Pokes the watcher on every change, and tells it which files are open and written.

    inotify reports opens and closes (IN_OPEN, IN_CLOSE_WRITE): a file opened, modified
    and not yet closed is being written (an editor saving in place truncates it first;
    `kubectl get -o yaml > file` streams it), and reading it now would load half of it.
    Stat polling and other platforms report no opens, so nothing is held back there.
    """

    def __init__(self, poke: Callable[[], None]) -> None:
        self.poke = poke
        self.lock = threading.Lock()
        # open file -> [how many opens are not closed yet, when it was first modified since (0: not yet)]
        self.open: dict[str, list[Any]] = {}

    def on_any_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if not event.is_directory:
            self._track(kind, str(event.src_path))
        if kind not in ("opened", "closed_no_write"):
            self.poke()

    def _track(self, kind: str, path: str) -> None:
        with self.lock:
            state = self.open.get(path)
            if kind == "opened":
                if state is None:
                    self.open[path] = [1, 0.0]
                else:
                    state[0] += 1
            elif state is None:
                return
            elif kind == "modified":
                state[1] = state[1] or time.monotonic()
            elif kind in ("closed", "closed_no_write"):
                state[0] -= 1
                if state[0] <= 0:
                    del self.open[path]
            elif kind in ("deleted", "moved"):
                del self.open[path]

    def being_written(self) -> bool:
        """A file is open and modified, for less than WRITE_WAIT (a writer that never
        closes, or a missed close, holds nothing back for longer)."""
        now = time.monotonic()
        with self.lock:
            return any(0.0 < since and now - since < WRITE_WAIT for _, since in self.open.values())


class Watcher:
    """Debounces file events into calls of `on_change` from a worker thread.

    The callback never runs twice at once; events that arrive while it runs schedule
    one more run. `mode` is "auto" (inotify where available) or "poll" (stat polling,
    for Docker Desktop bind mounts and network file systems where inotify is silent).
    """

    def __init__(self, root: str | Path, on_change: Callable[[], None], mode: str = "auto", poll_interval: float = 1.0, debounce: float = DEBOUNCE) -> None:
        self.root = str(root)
        self.on_change = on_change
        self.debounce = debounce
        self.observer: Any = PollingObserver(timeout=poll_interval) if mode == "poll" else Observer()
        self.lock = threading.Lock()
        self.timer: threading.Timer | None = None
        self.running = threading.Lock()
        self.handler = _Events(self.poke)
        self.extra: dict[str, Any] = {}  # outside directory -> watchdog watch

    def watch_outside(self, directories: set[str]) -> bool:
        """Also watch these directories (not recursively): targets of symlinked manifests.

        True when a new directory is watched: the caller then rescans once more, because
        a write there before the watch existed produced no event.
        """
        for gone in set(self.extra) - directories:
            self.observer.unschedule(self.extra.pop(gone))
        added = False
        for new in directories - set(self.extra):
            try:
                self.extra[new] = self.observer.schedule(self.handler, new, recursive=False)
                added = True
            except OSError as e:
                log.warning("cannot watch %s (target of a symlinked manifest): %s", new, e)
        return added

    def start(self) -> None:
        self.observed = self._identity()
        # The real path: inotify follows inodes, and a new path makes a new watch when the
        # root is replaced (watchdog keys its watches by path).
        self.root_watch = self.observer.schedule(self.handler, self.observed[0] or self.root, recursive=True)
        self.observer.daemon = True
        self.observer.start()

    def _identity(self) -> tuple[str, int]:
        """What the root is now: a swapped symlink or a replaced directory changes this."""
        try:
            return os.path.realpath(self.root), os.stat(self.root).st_ino
        except OSError:
            return "", 0

    def _rewatch_root(self) -> None:
        """The root was replaced (`mv new zones`, a git-sync link swap): watch the new one.

        inotify watches follow the old directory's inode, so without this no later edit
        would be seen.
        """
        now = self._identity()
        if now == self.observed or not now[0]:
            return
        log.warning("%s was replaced; watching the new directory", self.root)
        with suppress(KeyError, OSError):
            self.observer.unschedule(self.root_watch)
        try:
            self.root_watch = self.observer.schedule(self.handler, now[0], recursive=True)
            self.observed = now
        except OSError as e:
            log.error("cannot watch the new %s: %s", self.root, e)

    def poke(self) -> None:
        """Something changed: (re)start the quiet-period timer."""
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = threading.Timer(self.debounce, self._fire)
            self.timer.daemon = True
            self.timer.start()

    def _fire(self) -> None:
        if self.handler.being_written():
            self.poke()  # read it once it is closed (IN_CLOSE_WRITE pokes again) or WRITE_WAIT passed
            return
        with self.running:
            try:
                self._rewatch_root()
                self.on_change()
            except Exception:
                log.exception("reload after a file change failed; still serving the previous data")

    def stop(self) -> None:
        with self.lock:
            if self.timer is not None:
                self.timer.cancel()
        self.observer.stop()
        self.observer.join(5)
