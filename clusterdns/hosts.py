"""What a hosts table answers for a question, as CoreDNS's `hosts` plugin does (plugin/hosts/hosts.go)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

from clusterdns.codes import AAAA, NOERROR, PTR, A
from clusterdns.manifests.hosts_file import Address, Hosts, HostsTable, Labels
from clusterdns.names import address_from_reverse, under
from clusterdns.records import RR, Name
from clusterdns.resolver import Answer


class Action(enum.Enum):
    REPLY = "reply"  # hosts writes `answer`: NOERROR, AA, no Authority or Additional
    SERVFAIL = "servfail"  # hosts returns SERVFAIL and writes nothing: a bare SERVFAIL, no AA
    NEXT = "next"  # plugin.NextOrFailure: the next plugin answers, SERVFAIL when there is none


@dataclass(frozen=True, slots=True)
class Outcome:
    """What hosts does with a question; `answer` is set for REPLY only, `why` is for logs."""

    action: Action
    answer: Answer | None = None
    why: str = ""


_OUTSIDE = Outcome(Action.NEXT, why="not in the hosts zones (any fallthrough setting)")
_NO_PTR = Outcome(Action.NEXT, why="no hosts entry for this reverse name (any fallthrough setting)")
_UNSUPPORTED = Outcome(Action.NEXT, why="not A, AAAA or PTR: fallthrough_unsupported")
_FALL = Outcome(Action.NEXT, why="no hosts entry for the name: fallthrough")
_UNKNOWN = Outcome(Action.SERVFAIL, why="no hosts entry for the name, no fallthrough (hosts has no SOA for an NXDOMAIN)")
_NODATA = Outcome(Action.REPLY, Answer(NOERROR), why="the name has hosts entries, none of this type")


def _family(table: HostsTable, labels: Labels, v4: bool) -> tuple[Address, ...]:
    """The exact name's addresses, else those of the name with its first label made `*` (replaceWithAsteriskLabel;
    none for one label). Per source and family: an AAAA-only name does not hide an A wildcard (not RFC 4592)."""
    exact, wild = (table.v4, table.wild4) if v4 else (table.v6, table.wild6)
    found = exact.get(labels)
    if found is None and len(labels) >= 2:
        found = wild.get(("*",) + labels[1:])
    return found or ()


def addresses(hosts: Hosts, labels: Labels, qtype: int) -> tuple[Address, ...]:
    """hostsfile.go LookupStaticHostV4 (qtype A) or V6 (any other): the file's, then the inline ones
    (concatenated: the README's "override" is not what the code does). Labels lower-case."""
    v4 = qtype == A
    return _family(hosts.file, labels, v4) + _family(hosts.inline, labels, v4)


def names_for(hosts: Hosts, ip: Address) -> tuple[Labels, ...]:
    """hostsfile.go LookupStaticAddr: the file's names for the address, then the inline ones."""
    key = (ip.ipv4_mapped or ip).packed if isinstance(ip, IPv6Address) else ip.packed  # Go prints mapped ones as IPv4
    return hosts.file.reverse.get(key, ()) + hosts.inline.reverse.get(key, ())


def reverse_address(labels: Labels) -> Address | None:
    """The address a PTR question names (names.address_from_reverse, CoreDNS's
    ExtractAddressFromReverse), else None."""
    text = address_from_reverse(labels)
    return ip_address(text) if text else None


def answer(hosts: Hosts, labels: Labels, qtype: int) -> Outcome:
    """What plugin/hosts/hosts.go ServeDNS does with a question (lower-case labels, as clusterdns/wire.py
    parses them). Owners are the lower-cased question name (CoreDNS's state.Name()), not the asked spelling."""
    if qtype != PTR and not under(labels, hosts.zones):
        return _OUTSIDE  # PTR skips this check: reverse zones need not be listed
    owner = Name(labels, in_zone=False)
    if qtype == PTR:
        ip = reverse_address(labels)
        names = names_for(hosts, ip) if ip is not None else ()
        if not names:
            return _NO_PTR
        rrs = tuple(RR(owner, PTR, hosts.ttl, Name(n, in_zone=False)) for n in names)
        return Outcome(Action.REPLY, Answer(NOERROR, rrs), why="hosts PTR")
    if qtype in (A, AAAA):
        found = addresses(hosts, labels, qtype)
        if found:
            return Outcome(Action.REPLY, Answer(NOERROR, tuple(RR(owner, qtype, hosts.ttl, ip.packed) for ip in found)), why="hosts entry")
    elif hosts.fallthrough_unsupported and under(labels, hosts.fallthrough):
        return _UNSUPPORTED
    if addresses(hosts, labels, A) or addresses(hosts, labels, AAAA):  # otherRecordsExist
        return _NODATA
    return _FALL if under(labels, hosts.fallthrough) else _UNKNOWN
