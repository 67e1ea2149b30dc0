"""`clusterdns` command line: `serve`, with flags generated from the Config definition."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from clusterdns import __version__
from clusterdns.config import Config, settings
from clusterdns.errors import ClusterDNSError

log = logging.getLogger("clusterdns")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field, from its Setting (default shown, never duplicated here)."""
    for name, default, s in settings():
        kw: dict[str, Any] = {"dest": name, "help": s.help}
        if s.switch:
            kw["action"] = "store_true"
        else:
            if s.metavar:
                kw["metavar"] = s.metavar
            if s.choices:
                kw["choices"] = s.choices
            if s.convert:
                kw["type"] = s.convert
            if s.repeat:
                kw["action"] = "append"
        parser.add_argument(s.flag, **kw)
    parser.set_defaults(**{name: None for name, _, s in settings() if not s.switch})


def config_from_args(args: argparse.Namespace) -> Config:
    values = {}
    for name, _, s in settings():
        value = getattr(args, name)
        if value is None or (s.switch and value is False):
            continue
        values[name] = tuple(value) if s.repeat else value
    return Config(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clusterdns", description="Authoritative cluster DNS from Kubernetes manifests, no cluster needed.")
    parser.add_argument("--version", action="version", version=f"clusterdns {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve DNS for the manifests directory")
    add_config_flags(serve)
    serve.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    export = sub.add_parser("export-zone", help="print the records as an RFC 1035 zone file (for NSD, Knot, BIND)")
    add_config_flags(export)
    export.add_argument("zone_name", nargs="?", metavar="ZONE", help="zone to export (default: the cluster domain)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    return parser


def setup_logging(quiet: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("clusterdns: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def run_serve(args: argparse.Namespace) -> int:
    from clusterdns import server

    try:
        import uvloop  # 3x the queries per second of asyncio's own loop (spec/performance.md)

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    server.run(config_from_args(args), runner)
    return 0


def load_snapshot(config: Config) -> Any:
    """Read the manifests once, as `serve` would, and compile the snapshot."""
    from clusterdns import snapshot
    from clusterdns.store import ManifestStore

    store = ManifestStore(config.manifests, config)
    store.refresh()
    state = store.state()
    for problem in state.problems:
        (log.error if problem.level == "error" else log.warning)("%s", problem)
    return snapshot.build(state, config)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "quiet", False))
    try:
        if args.command == "serve":
            return run_serve(args)
        if args.command == "export-zone":
            return run_export(args)
    except ClusterDNSError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1
