"""The commands that read the manifests once, as `serve` would, without serving: `check`,
`records` (and `records --explain`), `export-zone`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from clusterdns.config.addresses import is_reverse_zone
from clusterdns.config.settings import Config
from clusterdns.config.sources import config_from_args
from clusterdns.errors import ConfigError, summarize
from clusterdns.pipeline import Pipeline, load
from clusterdns.snapshot.table import Snapshot
from clusterdns.tools.explain import explain
from clusterdns.tools.zonefile import export, forward_records, reverse_records, rr_line

log = logging.getLogger("clusterdns")


def load_snapshot(config: Config, quiet: bool = False) -> Snapshot:
    """Read the manifests once, as `serve` would, and compile the snapshot; log its problems
    (a problem that repeats as one line: `check` lists every one). A directory that is not
    there is an error (exit 2), not an empty zone (Pipeline)."""
    snap = load(config)
    for problem in summarize(snap.problems):
        if not quiet or problem.level == "error":
            (log.error if problem.level == "error" else log.warning)("%s", problem)
    return snap


def run_export(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    zone = (args.zone_name or config.cluster_domain).lower().rstrip(".")
    if not _exportable(zone, config):
        external = " (a k8s_external zone: its records are the LoadBalancer addresses, asked live)" if zone in config.external_zones else ""
        below = " (or a reverse zone below a reverse one)" if config.reverse_zones else ""
        raise ConfigError(f"export-zone {zone}: not one of the --zone zones{external}; they are {', '.join(config.zones)}{below}")
    text = export(load_snapshot(config), zone)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _exportable(zone: str, config: Config) -> bool:
    """A zone the server is authoritative for: a --zone, or a reverse zone inside a reverse --zone
    (its PTRs are a part of that zone's)."""
    return zone in config.zones or (is_reverse_zone(zone) and any(zone.endswith("." + z) for z in config.reverse_zones))


def _with_directory(args: argparse.Namespace) -> Config:
    config = config_from_args(args)
    if getattr(args, "directory", None):
        config = dataclasses.replace(config, manifests=args.directory)
    return config


def run_check(args: argparse.Namespace) -> int:
    """Every problem `serve` would log, sorted by file and line; exit 1 on errors."""
    config = _with_directory(args)
    pipeline = Pipeline(config.manifests, config)
    snap = pipeline.refresh(full=True).snapshot
    problems = sorted(snap.problems, key=lambda p: (p.file, p.line, p.level))
    for problem in problems:
        print(problem)
    errors = sum(p.level == "error" for p in problems)
    warnings = len(problems) - errors
    state = snap.state
    print(f"{config.manifests}: {len(pipeline.store.files)} files, {len(state.services)} services, {len(state.pods)} pods: "
          f"{errors} errors, {warnings} warnings")
    return 1 if errors else 0


def run_records(args: argparse.Namespace) -> int:
    """Zone-file lines grouped by namespace (or under NAME), or the explanation of one name."""
    config = _with_directory(args)
    snap = load_snapshot(config, quiet=True)
    if args.explain:
        print("\n".join(explain(snap, config, args.explain)))
        return 0
    zone = config.cluster_domain
    under = args.name.lower().rstrip(".") if args.name else None
    groups: dict[str, list[str]] = {}
    # Each record with the zone it came from: a name's text cannot tell (a cluster domain
    # may itself end in .arpa, e.g. home.arpa, RFC 8375).
    records = [(owner, rr, zone, None) for owner, rr in forward_records(snap, zone)]
    for reverse in config.reverse_zones:
        records += [(owner, rr, reverse, "reverse") for owner, rr in reverse_records(snap, reverse)]
    for owner, rr, origin, group in records:
        name = owner.rstrip(".")
        if under and not (name == under or name.endswith("." + under)):
            continue
        groups.setdefault(group or _group(name, zone), []).append(rr_line(owner, rr, origin))
    if under and not groups:  # as grep: nothing found is exit 1, with the command that says why
        log.error("no records at or below %s: `clusterdns records --explain %s` says why", under, under)
        return 1
    for group in sorted(groups, key=lambda g: (g != "zone", g == "reverse", g)):
        print(f"; {group}")
        print("\n".join(groups[group]))
    return 0


def _group(name: str, zone: str) -> str:
    """'namespace <ns>' for names under <ns>.svc/<ns>.pod of the cluster zone, else 'zone'."""
    labels = name[: -len(zone)].rstrip(".").split(".") if name.endswith(zone) else []
    if len(labels) >= 2 and labels[-1] in ("svc", "pod"):
        return f"namespace {labels[-2]}"
    return "zone"
