"""`clusterdns compare`: ask two DNS servers the same questions and show where they differ.

The questions come from a case file in the CoreDNS case format (tests/cases/README.md) (`--cases`), or are generated
from a manifests directory (`--manifests`): every name and type clusterdns would serve for it,
plus negative probes around each (wrong types, unknown endpoints, Services and namespaces,
empty non-terminals, search-path expansions). Nothing is started: `--self` (default
127.0.0.1:5353) and `--against` must already be serving.

Replies are compared normalised: RCODE; the AA and TC flags; answer, authority and additional
as sets of lower-cased presentation lines; TTLs (and the SOA MINIMUM, the negative-caching
TTL) dropped unless --ttl-sensitive; SOA serials never compared. Exit 0 when every reply matches, 1 when any differs, 2 on usage or network
errors. See docs/compare.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from clusterdns.config.addresses import DEFAULT_PORT, Address, hostport_text, parse_hostport
from clusterdns.config.sources import UNSET, add_config_flags, config_from_args, config_sources
from clusterdns.errors import ConfigError
from clusterdns.tools.offline import load_snapshot
from clusterdns.tools.questions import AskedQuestion, questions_from_cases, questions_from_snapshot
from clusterdns.wire import OUR_UDP_SIZE

DEFAULT_SELF = hostport_text("127.0.0.1", DEFAULT_PORT)  # where `make run` serves
SECTIONS = ("answer", "authority", "additional")


@dataclass(frozen=True)
class Options:
    """What a comparison looks at."""

    ttl_sensitive: bool = False
    positive_only: bool = False  # compare rcode, AA and the answer section only
    ignore_srv_weight: bool = False


@dataclass(frozen=True)
class Summary:
    """A reply reduced to what the comparison looks at."""

    rcode: str
    flags: tuple[str, ...]
    sections: dict[str, frozenset[str]] = field(hash=False)

    def differences(self, other: Summary) -> list[str]:
        """Readable lines for what differs (`-` only here, `+` only in the other)."""
        out = []
        if self.rcode != other.rcode:
            out.append(f"  rcode: {self.rcode} | {other.rcode}")
        if self.flags != other.flags:
            out.append(f"  flags: {' '.join(self.flags) or '-'} | {' '.join(other.flags) or '-'}")
        for name in self.sections:
            mine, theirs = self.sections[name], other.sections.get(name, frozenset())
            if mine != theirs:
                out.append(f"  {name}:")
                out += [f"    - {line}" for line in sorted(mine - theirs)]
                out += [f"    + {line}" for line in sorted(theirs - mine)]
        return out


class NetworkError(Exception):
    """A server did not answer (timeout, refused connection, broken stream)."""


class Asker:
    """Asks one server: UDP, and again over TCP when the reply is truncated; or TCP only.

    TCP questions share one connection (kubectl port-forward makes every new connection
    slow), reopened once if the server closed it.
    """

    def __init__(self, label: str, address: Address, tcp_only: bool = False, timeout: float = 2.0, retries: int = 2) -> None:
        self.label = label
        self.host, self.port = address
        self.tcp_only = tcp_only
        self.timeout = timeout
        self.retries = retries
        self.sock: socket.socket | None = None

    def __str__(self) -> str:
        return f"{self.label} {hostport_text(self.host, self.port)}"

    def ask(self, question: AskedQuestion) -> tuple[dns.message.Message, bool]:
        """The reply, and whether a UDP reply had TC set (the reply is then the TCP one)."""
        query = dns.message.make_query(question.qname, question.qtype, use_edns=0, payload=OUR_UDP_SIZE)
        if self.tcp_only:
            return self._tcp(query), False
        reply = self._udp(query)
        if reply.flags & dns.flags.TC:
            return self._tcp(query), True
        return reply, False

    def _udp(self, query: dns.message.Message) -> dns.message.Message:
        for attempt in range(self.retries + 1):
            try:
                return dns.query.udp(query, self.host, port=self.port, timeout=self.timeout, ignore_trailing=True)
            except dns.exception.Timeout:
                if attempt == self.retries:
                    raise NetworkError(f"{self}: no answer over UDP in {self.timeout:g} s ({self.retries + 1} tries)") from None
            except (OSError, dns.exception.DNSException) as e:
                raise NetworkError(f"{self}: UDP: {e}") from None
        raise AssertionError("unreachable")

    def _tcp(self, query: dns.message.Message) -> dns.message.Message:
        for attempt in range(2):
            try:
                if self.sock is None:
                    family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                    self.sock = socket.socket(family, socket.SOCK_STREAM)
                    self.sock.settimeout(self.timeout)
                    self.sock.connect((self.host, self.port))
                return dns.query.tcp(query, self.host, port=self.port, timeout=self.timeout, sock=self.sock)
            except (OSError, EOFError, dns.exception.DNSException) as e:
                self.close()
                if attempt == 1 or isinstance(e, ConnectionRefusedError):
                    raise NetworkError(f"{self}: TCP: {e or type(e).__name__}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def normalise(msg: dns.message.Message, udp_tc: bool, options: Options) -> Summary:
    """rcode, flags that matter (AA, TC) and the sections as sets of lower-cased lines."""
    flags = []
    if msg.flags & dns.flags.AA:
        flags.append("aa")
    if (udp_tc or msg.flags & dns.flags.TC) and not options.positive_only:
        flags.append("tc")  # positive-only ignores the sections whose size decides TC
    names = ("answer",) if options.positive_only else SECTIONS
    sections = {name: frozenset(_lines(getattr(msg, name), options)) for name in names}
    return Summary(dns.rcode.to_text(msg.rcode()), tuple(flags), sections)


def _lines(rrsets: Iterable[Any], options: Options) -> Iterable[str]:
    for rrset in rrsets:
        rdclass = dns.rdataclass.to_text(rrset.rdclass)
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        ttl = f" {rrset.ttl}" if options.ttl_sensitive else ""
        for rd in rrset:
            if rrset.rdtype == dns.rdatatype.SOA:
                # The serial never counts; MINIMUM is the negative-caching TTL (RFC 2308 4): a TTL.
                minimum = rd.minimum if options.ttl_sensitive else "-"
                text = f"{rd.mname} {rd.rname} SERIAL {rd.refresh} {rd.retry} {rd.expire} {minimum}"
            elif rrset.rdtype == dns.rdatatype.SRV and options.ignore_srv_weight:
                text = f"{rd.priority} * {rd.port} {rd.target}"
            else:
                text = rd.to_text()
            yield f"{rrset.name}{ttl} {rdclass} {rdtype} {text}".lower()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Ask two DNS servers the same questions and print where their answers differ "
        "(exit 0: all equal, 1: differences, 2: usage or network error)."
    )
    parser.add_argument("--against", required=True, metavar="HOST:PORT", help="the server to compare with (CoreDNS, a secondary, ...; port 53 if omitted)")
    parser.add_argument("--self", dest="self_address", default=DEFAULT_SELF, metavar="HOST:PORT", help=f"the clusterdns to compare (default {DEFAULT_SELF})")
    parser.add_argument("--cases", metavar="FILE", help="take the questions of a case file (tests/cases/coredns-unit.yaml format)")
    parser.add_argument("--profile", metavar="NAME", help="with --cases: the cases of this profile (default: cases without `config`)")
    parser.add_argument("--tcp", action="store_true", help="ask over TCP only (kubectl port-forward carries only TCP)")
    parser.add_argument("--ttl-sensitive", action="store_true", help="compare TTLs (and the SOA MINIMUM) too")
    parser.add_argument("--positive-only", action="store_true",
                        help="only questions clusterdns answers with records; compare rcode, AA and the answer section only")
    parser.add_argument("--zone-records", action="store_true",
                        help="only the names and types a zone transfer carries (what a secondary such as NSD holds)")
    parser.add_argument("--ignore-srv-weight", action="store_true",
                        help="do not compare SRV weights (a zone transfer's weights are not the live answers')")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS", help="per query (default 2)")
    parser.add_argument("--list", action="store_true", help="print the questions and exit, asking nothing")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list the questions that match")
    add_config_flags(parser, offline=True)  # the serve flags that shape a snapshot: --manifests, --zone, --ttl, --pods, ...
    for action in parser._actions:  # compare has no default directory: the questions come from one or the other
        if action.dest == "manifests":
            action.help = "ask about the names of the manifests in this directory (give this, a --corefile or --config that names it, or --cases)"


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        questions, source = _questions(args, out)
        self_asker = Asker("self", parse_hostport(args.self_address, 53), args.tcp, args.timeout)
        against = Asker("against", parse_hostport(args.against, 53), args.tcp, args.timeout)
    except ConfigError as e:
        print(f"clusterdns compare: {e}", file=sys.stderr)
        return 2
    if args.list:
        for q in questions:
            print(q, file=out)
        return 0
    options = Options(args.ttl_sensitive, args.positive_only, args.ignore_srv_weight)
    how = "tcp" if args.tcp else "udp, tcp when truncated"
    print(f"--- {self_asker}\n+++ {against}\n{len(questions)} questions from {source} ({how})", file=out)
    try:
        differing = compare(questions, self_asker, against, options, out, args.verbose)
    except NetworkError as e:
        print(f"clusterdns compare: {e}", file=sys.stderr)
        return 2
    finally:
        self_asker.close()
        against.close()
    print(f"{len(questions)} questions: {len(questions) - differing} equal, {differing} differ", file=out)
    return 1 if differing else 0


def compare(questions: Sequence[AskedQuestion], mine: Asker, theirs: Asker, options: Options, out: TextIO, verbose: bool = False) -> int:
    """Ask both, print a block per differing question; the number of differing questions."""
    differing = 0
    for q in questions:
        a = normalise(*mine.ask(q), options)
        b = normalise(*theirs.ask(q), options)
        lines = a.differences(b)
        if lines:
            differing += 1
            print(f"\n{q}", file=out)
            for line in lines:
                print(line, file=out)
        elif verbose:
            print(f"= {q} {a.rcode}", file=out)
    return differing


def _questions(args: argparse.Namespace, out: TextIO) -> tuple[list[AskedQuestion], str]:
    # The manifests from the flag, the environment, or the settings files (a Corefile's `manifests`).
    sources = config_sources(args)
    manifests_given = args.manifests is not UNSET or "CLUSTERDNS_MANIFESTS" in os.environ or bool(sources.corefile or sources.config_file)
    if args.cases and args.manifests is not UNSET:
        raise ConfigError("give --cases or --manifests, not both")
    if args.cases:
        if args.zone_records:
            raise ConfigError("--zone-records needs --manifests")
        return questions_from_cases(args.cases, args.profile, out), args.cases
    if not manifests_given:
        raise ConfigError("give --cases FILE or --manifests DIR (directly, or as the manifests of a --corefile or --config): where do the questions come from?")
    if args.profile:
        raise ConfigError("--profile goes with --cases")
    config = config_from_args(args)
    snap = load_snapshot(config)
    questions = questions_from_snapshot(snap, config, args.positive_only, args.zone_records)
    return questions, f"manifests {config.manifests}"
