"""What the server says: what it serves at start-up, and per load or reload one log line, the
problems not reported before, and the figures /status and `clusterdns status` show."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from clusterdns.config.addresses import Address, hostport_text
from clusterdns.config.settings import Config
from clusterdns.errors import summarize
from clusterdns.manifests.hosts_file import describe as describe_hosts
from clusterdns.model import ClusterState
from clusterdns.objects.store import Change
from clusterdns.snapshot.table import Snapshot

log = logging.getLogger("clusterdns")


class Reports:
    """Log lines and figures across reloads: a problem is logged once, not at every reload."""

    def __init__(self, manifests: str) -> None:
        self.manifests = manifests
        self.reported: set[tuple[str, int, str]] = set()  # problems already logged
        self.last_reload: dict[str, Any] = {}
        self.reloads = 0

    def loaded(self, change: Change, old: Snapshot | None, new: Snapshot, seconds: float) -> None:
        state = new.state
        fresh = {(p.file, p.line, p.message) for p in new.problems}
        # A problem that repeats is one line (its count, the first few, the fix): /status and `check` list every one.
        for problem in summarize(p for p in new.problems if (p.file, p.line, p.message) not in self.reported):
            (log.error if problem.level == "error" else log.warning)("%s", problem)
        self.reported = fresh
        errors = sum(p.level == "error" for p in new.problems)
        before = f"{old.names()} → " if old else ""
        objects = f"; objects {object_changes(old.state, state)}" if old is not None else ""
        log.info(
            "%s %s: %s%s; %d services, %d pods, %d namespaces; %s%d names; serial %d%s; %.0f ms",
            "reloaded" if old else "loaded", self.manifests, change, objects, len(state.services), len(state.pods),
            len(state.namespaces), before, new.names(), new.serial,
            f"; {errors} errors" if errors else "", seconds * 1000,
        )
        self.reloads += 1
        self.last_reload = {
            "time": time.time(), "seconds": seconds, "change": str(change), "serial": new.serial,
            "services": len(state.services), "pods": len(state.pods), "names": new.names(),
            "errors": [str(p) for p in new.problems if p.level == "error"],
            "warnings": [str(p) for p in new.problems if p.level == "warning"],
        }


def object_changes(old: ClusterState, new: ClusterState) -> str:
    """'+added -removed ~changed' over Services and Pods (derived ones included)."""
    if len(old.services) == len(new.services) and len(old.pods) == len(new.pods):
        # The common reload: an object or a few changed in place. Both lists are sorted by
        # key and derive() hands back the very same object for an unchanged one, so a walk
        # side by side (`is` first) answers without 2 x 160,000-entry dicts at the envelope;
        # it stops at the first pair whose keys differ (something came or went).
        changed = _changed_in_place(old.services, new.services, lambda s: s.key)
        if changed is not None:
            pods = _changed_in_place(old.pods, new.pods, lambda p: (p.namespace, p.name))
            if pods is not None:
                return f"+0 -0 ~{changed + pods}"
    before = {("svc",) + s.key: s for s in old.services} | {("pod", p.namespace, p.name): p for p in old.pods}
    after = {("svc",) + s.key: s for s in new.services} | {("pod", p.namespace, p.name): p for p in new.pods}
    added = sum(1 for k in after if k not in before)
    removed = sum(1 for k in before if k not in after)
    changed = sum(1 for k, v in after.items() if k in before and before[k] is not v and before[k] != v)
    return f"+{added} -{removed} ~{changed}"


def _changed_in_place(old: Sequence[Any], new: Sequence[Any], key: Callable[[Any], Any]) -> int | None:
    """How many objects differ between two lists of the same keys in the same order; None
    when the keys are not the same."""
    changed = 0
    for a, b in zip(old, new):
        if a is b:
            continue
        if key(a) != key(b):
            return None
        changed += a != b
    return changed


def announce(config: Config, bound: list[Address], upstreams: tuple[Address, ...], stubs: dict[str, tuple[Address, ...]],
             snap: Snapshot | None) -> None:
    """The start-up lines: where DNS is served, where other names go, what answers besides the cluster."""
    for host, port in bound:
        log.info("serving DNS on %s (udp, tcp)", hostport_text(host, port))
    for zone, addresses in stubs.items():
        log.info("forwarding names under %s to %s", zone, ", ".join(hostport_text(h, p) for h, p in addresses))
    if upstreams:
        log.info("forwarding other names to %s", ", ".join(hostport_text(h, p) for h, p in upstreams))
    else:
        log.info("no upstream: names outside %s get REFUSED", ", ".join(config.zones))
    if snap is not None and snap.hosts is not None:
        log.info("answering from hosts %s: %s", config.hosts_file or "(inline entries)", describe_hosts(snap.hosts))
    if config.external_zones:
        log.info("answering external addresses under %s (k8s_external)", ", ".join(config.external_zones))
    if config.watch != "off":
        log.info("watching %s (%s)", config.manifests, "polling" if config.watch == "poll" else "inotify")
    if config.workers > 1:
        log.info("%d worker processes share each port (SO_REUSEPORT)", config.workers)
