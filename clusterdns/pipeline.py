"""Changed files to a new Snapshot: the one path from the manifests directory to answers.

`serve` keeps one Pipeline and calls `refresh()` on every change; `check`, `records`,
`export-zone` and `compare` call `load()` once. Each stage's output is the next one's
input: the store re-reads changed files into objects (objects/store.py), derive() makes
the cluster of them (derive/), and the snapshot is compiled from that (snapshot/). What
makes a reload incremental lives here, in the pipeline, and is passed to the stages: the
store's per-file objects, derive's memo and the previous snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from clusterdns.config.settings import Config
from clusterdns.derive.cluster import derive
from clusterdns.derive.memo import Memo
from clusterdns.errors import ConfigError
from clusterdns.manifests.hosts_file import Fingerprint, hosts_of
from clusterdns.manifests.hosts_file import reload as reload_hosts
from clusterdns.objects.store import Change, ManifestStore
from clusterdns.snapshot.build import build as build_snapshot
from clusterdns.snapshot.table import Snapshot


@dataclass(frozen=True)
class Update:
    """What one refresh found and made."""

    change: Change
    snapshot: Snapshot
    previous: Snapshot | None  # None on the first load

    @property
    def rebuilt(self) -> bool:
        """False when no file changed and the snapshot is the previous one."""
        return self.snapshot is not self.previous


class Pipeline:
    """One manifests directory, read incrementally into successive snapshots."""

    def __init__(self, root: str | Path, config: Config, previous: Snapshot | None = None) -> None:
        """`previous`: the snapshot served before a configuration reload, so the first build here
        keeps its serial when the records come out the same. A directory that is not there is
        a ConfigError (exit 2 at start-up), not an empty zone; one that goes away later is an
        error of the next refresh, and what was read from it keeps serving (objects/store.py)."""
        if not Path(root).is_dir():
            hint = " (it is a file: give the directory the manifests are in)" if Path(root).exists() else ""
            if str(root) == Config.__dataclass_fields__["manifests"].default:  # nothing named a directory
                hint = " (zones is the default: give --manifests DIR, or `manifests DIR` in the Corefile's kubernetes block)"
            raise ConfigError(f"{root}: manifests directory not found{hint}")
        self.config = config
        self.store = ManifestStore(root, config)
        self.memo: Memo | None = None  # derive()'s memo of the last refresh
        self.snapshot: Snapshot | None = previous
        self.first = True
        self.hosts = hosts_of(config)  # --hosts-file and --host: read beside the manifests
        self.hosts_seen: Fingerprint | None = None  # the hosts file as last read (mtime, size)

    def refresh(self, full: bool = False) -> Update:
        """Rescan the directory (every file again when `full`) and build a new snapshot if
        anything changed; the previous snapshot stays the answer when nothing did."""
        previous = self.snapshot
        change = self.store.refresh(full=full)
        if not self.first and not change.files and not change.walk:
            return Update(change, previous, previous)  # type: ignore[arg-type]
        if self.first:
            self._read_hosts()
            self.first = False
        state, self.memo = derive(self.store.objects(), self.config, self.store.problems(), self.memo)
        self.snapshot = build_snapshot(state, self.config, previous, self.store.newest_mtime(), self.hosts)
        return Update(change, self.snapshot, previous)

    def refresh_hosts(self) -> Update:
        """Re-read the hosts file if it changed (by mtime and size, as CoreDNS's readHosts), and
        make the snapshot that answers with it; the manifests are not looked at."""
        previous = self.snapshot
        if previous is None or not self._read_hosts():
            return Update(Change(), previous, previous)  # type: ignore[arg-type]
        self.snapshot = replace(previous, hosts=self.hosts)
        return Update(Change(), self.snapshot, previous)

    def _read_hosts(self) -> bool:
        """Whether the hosts file was (re-)read; a missing file keeps what was read last."""
        if self.hosts is None or self.config.hosts_file is None:
            return False
        self.hosts, self.hosts_seen, changed = reload_hosts(self.hosts, self.config.hosts_file, self.hosts_seen)
        return changed


def load(config: Config) -> Snapshot:
    """The snapshot of `config.manifests` as `serve` would build it at start-up."""
    return Pipeline(config.manifests, config).refresh(full=True).snapshot
