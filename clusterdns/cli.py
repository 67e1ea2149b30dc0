"""`clusterdns` command line: `serve`, with flags generated from the Config definition."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from clusterdns import __version__, compare
from clusterdns.config.addresses import HEALTH_PORT
from clusterdns.config.settings import Config
from clusterdns.config.sources import TRUE, add_config_flags, config_from_args
from clusterdns.errors import ClusterDNSError

log = logging.getLogger("clusterdns")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterdns", description="Authoritative cluster DNS from Kubernetes manifests, no cluster needed.")
    parser.add_argument("--version", action="version", version=f"clusterdns {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve DNS for the manifests directory")
    add_config_flags(serve)
    export = sub.add_parser("export-zone", help="print the records as an RFC 1035 zone file (for NSD, Knot, BIND)")
    add_config_flags(export)
    export.add_argument("zone_name", nargs="?", metavar="ZONE", help="zone to export (default: the cluster domain)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    check = sub.add_parser("check", help="read the manifests as serve would and report every error and warning")
    add_config_flags(check)
    check.add_argument("directory", nargs="?", metavar="DIR", help="the manifests directory (default: --manifests)")
    records = sub.add_parser("records", help="print the records served (zone-file lines), or explain one name")
    add_config_flags(records)
    records.add_argument("directory", nargs="?", metavar="DIR", help="the manifests directory (default: --manifests)")
    records.add_argument("name", nargs="?", metavar="NAME", help="only records at or below this name")
    records.add_argument("--explain", metavar="NAME", help="say which manifests made each record of NAME, or why it is NXDOMAIN")
    for p in (serve, export, check, records):  # docs/corefile.md
        p.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: these flags' names); flags and CLUSTERDNS_* beat it")
        p.add_argument("--corefile", metavar="FILE", help="CoreDNS Corefile (the subset in docs/corefile.md); flags, CLUSTERDNS_* and --config beat it")
    compare.add_arguments(sub.add_parser("compare", help="ask clusterdns and another DNS server the same questions and diff the answers"))
    status = sub.add_parser("status", help="ask a running server how its last reload went (via its /status endpoint)")
    status.add_argument("--health", default=f"127.0.0.1:{HEALTH_PORT}", metavar="HOST:PORT", help="the server's --health address")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    return parser


def setup_logging(quiet: bool = False) -> None:
    """Everything to stderr: our own lines prefixed `clusterdns:`, query lines as CoreDNS prints them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("clusterdns: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    queries = logging.getLogger("clusterdns.query")
    plain = logging.StreamHandler(sys.stderr)
    plain.setFormatter(logging.Formatter("%(message)s"))
    queries.handlers[:] = [plain]
    queries.setLevel(logging.INFO)
    queries.propagate = False


def run_serve(args: argparse.Namespace) -> int:
    from clusterdns.serve import server

    config = config_from_args(args)
    setup_logging(config.quiet)  # quiet may come from --config, a Corefile or the environment

    try:
        import uvloop  # 3x the queries per second of asyncio's own loop (measured with bench/bench.py)

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    server.run(config, runner)
    return 0


def load_snapshot(config: Config, quiet: bool = False) -> Any:
    """Read the manifests once, as `serve` would, and compile the snapshot; log its problems."""
    from clusterdns.pipeline import load

    snap = load(config)
    for problem in snap.problems:
        if not quiet or problem.level == "error":
            (log.error if problem.level == "error" else log.warning)("%s", problem)
    return snap


def run_export(args: argparse.Namespace) -> int:
    from clusterdns.zonefile import export

    config = config_from_args(args)
    zone = (args.zone_name or config.cluster_domain).lower().rstrip(".")
    text = export(load_snapshot(config), zone)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _with_directory(args: argparse.Namespace) -> Config:
    config = config_from_args(args)
    if getattr(args, "directory", None):
        config = dataclasses.replace(config, manifests=args.directory)
    return config


def run_check(args: argparse.Namespace) -> int:
    """Every problem `serve` would log, sorted by file and line; exit 1 on errors."""
    from clusterdns.pipeline import Pipeline

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
    from clusterdns.explain import explain
    from clusterdns.zonefile import forward_records, reverse_records, rr_line

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


def run_status(args: argparse.Namespace) -> int:
    """Print the last reload's status; exit 1 when the manifests have errors, 2 when unreachable."""
    import json
    import urllib.request

    from clusterdns.config.addresses import parse_hostport

    host, port = parse_hostport(args.health, HEALTH_PORT)
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = json.load(response)
    except OSError as e:
        log.error("cannot reach %s: %s", url, e)
        return 2
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        last = status.get("last_reload", {})
        print(f"ready: {'yes' if status.get('ready') else 'no'}; manifests {status.get('manifests')}; listening on {', '.join(status.get('listen', []))}")
        print(f"last reload: {last.get('change')}; {last.get('services')} services, {last.get('pods')} pods, {last.get('names')} names; "
              f"serial {last.get('serial')}; {last.get('seconds', 0) * 1000:.0f} ms; {status.get('reloads')} reloads, {status.get('reload_failures')} failed")
        for line in last.get("errors", []) + last.get("warnings", []):
            print(f"  {line}")
    return 1 if status.get("last_reload", {}).get("errors") else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(bool(getattr(args, "quiet", False)) or os.environ.get("CLUSTERDNS_QUIET", "").strip().lower() in TRUE)
    try:
        if args.command == "serve":
            return run_serve(args)
        if args.command == "export-zone":
            return run_export(args)
        if args.command == "status":
            return run_status(args)
        if args.command == "check":
            return run_check(args)
        if args.command == "records":
            return run_records(args)
        if args.command == "compare":
            return compare.run(args)
    except ClusterDNSError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1
