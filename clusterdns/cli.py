"""`clusterdns` command line: `serve`, with flags generated from the Config definition."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from clusterdns import __version__
from clusterdns.config.addresses import HEALTH_PORT
from clusterdns.config.convert import TRUE
from clusterdns.config.sources import add_config_flags, config_sources
from clusterdns.errors import ClusterDNSError
from clusterdns.tools import compare, offline, status

log = logging.getLogger("clusterdns")


class CommandParser(argparse.ArgumentParser):
    """argparse's parser, saying a mistake in two lines (the error, and where the options are
    listed) instead of the whole usage first; an option is taken only when spelled in full
    (`--manifest` is refused, not read as --manifests: a later flag would change its meaning)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands: dict[str, CommandParser] = {}

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the {'commands' if self.commands else 'options'})\n")

    def unrecognized(self, words: list[str]) -> NoReturn:
        """Words no option or positional took, with the option meant when one is close."""
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        flags = [w.split("=")[0] for w in words if w.startswith("--")]
        if any(f in options for f in flags):  # an option after `--`, where every word is positional
            self.error(f"unrecognized arguments: {' '.join(words)} (options go before --)")
        guesses = [close[0] for f in flags for close in [difflib.get_close_matches(f, options, n=1, cutoff=0.75)] if close]
        self.error(f"unrecognized arguments: {' '.join(words)}" + (f" (did you mean {', '.join(guesses)}?)" if guesses else ""))


def build_parser() -> CommandParser:
    parser = CommandParser(prog="clusterdns", description="Authoritative cluster DNS from Kubernetes manifests, no cluster needed.")
    parser.add_argument("--version", action="version", version=f"clusterdns {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices  # type: ignore[assignment]
    serve = sub.add_parser("serve", help="serve DNS for the manifests directory")
    add_config_flags(serve)
    export = sub.add_parser("export-zone", help="print the records as an RFC 1035 zone file (for NSD, Knot, BIND)")
    add_config_flags(export, offline=True)
    export.add_argument("zone_name", nargs="?", metavar="ZONE", help="zone to export (default: the cluster domain)")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    check = sub.add_parser("check", help="read the manifests as serve would and report every error and warning")
    add_config_flags(check, offline=True)
    check.add_argument("directory", nargs="?", metavar="DIR", help="the manifests directory (default: --manifests)")
    records = sub.add_parser("records", help="print the records served (zone-file lines), or explain one name")
    add_config_flags(records, offline=True)
    records.add_argument("directory", nargs="?", metavar="DIR", help="the manifests directory (default: --manifests)")
    records.add_argument("name", nargs="?", metavar="NAME", help="only records at or below this name")
    records.add_argument("--explain", metavar="NAME", help="say which manifests made each record of NAME, or why it is NXDOMAIN")
    compared = sub.add_parser("compare", help="ask clusterdns and another DNS server the same questions and diff the answers")
    compare.add_arguments(compared)
    for p in (serve, export, check, records, compared):  # docs/corefile.md
        p.add_argument("--config", metavar="FILE", help="YAML file of settings (keys: these flags' names); flags and CLUSTERDNS_* beat it")
        p.add_argument("--corefile", metavar="FILE", help="CoreDNS Corefile (the subset in docs/corefile.md); flags, CLUSTERDNS_* and --config beat it")
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
    from clusterdns.serve import start

    sources = config_sources(args)
    config = sources.make()
    setup_logging(config.quiet)  # quiet may come from --config, a Corefile or the environment

    try:
        import uvloop  # 3x the queries per second of asyncio's own loop (measured with bench/bench.py)

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    start.run(config, runner, sources)
    return 0


# Each command's optional positionals, in order: argparse fills them only from the words before
# the first option, so `records DIR --upstream none NAME` left NAME over (parse_args refused it).
LATE_POSITIONALS = {"check": ("directory",), "records": ("directory", "name"), "export-zone": ("zone_name",)}


def parse(parser: CommandParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """parse_args, with a command's positionals also taken from after its options."""
    args, left = parser.parse_known_args(argv)
    ended = left[:1] == ["--"]  # what follows `--` is positional, whatever it starts with
    left = left[1:] if ended else left
    for dest in LATE_POSITIONALS.get(args.command, ()):
        if left and getattr(args, dest) is None and (ended or not left[0].startswith("-")):
            setattr(args, dest, left.pop(0))
    if left:
        parser.commands[args.command].unrecognized(left)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    setup_logging(bool(getattr(args, "quiet", False)) or os.environ.get("CLUSTERDNS_QUIET", "").strip().lower() in TRUE)
    try:
        if args.command == "serve":
            return run_serve(args)
        if args.command == "export-zone":
            return offline.run_export(args)
        if args.command == "status":
            return status.run_status(args)
        if args.command == "check":
            return offline.run_check(args)
        if args.command == "records":
            return offline.run_records(args)
        if args.command == "compare":
            return compare.run(args)
    except ClusterDNSError as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1
