"""clusterdns/hosts.py and manifests/hosts_file.py against CoreDNS's plugin/hosts tests (each table names its source) and the
behaviour spec (/tmp/specs/plugins-a.md sections 1 and 4.1): parsing, lookups, answers, reloads.

Answers go through the real codec: the question is a wire query read by parse_query, and a
REPLY is encoded by clusterdns/wire.py and read back with dnspython.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rdatatype
import pytest

from clusterdns.codes import AAAA, NOERROR, PTR, A
from clusterdns.hosts import Action, Outcome, addresses, answer, names_for, reverse_address
from clusterdns.manifests.hosts_file import EMPTY, Hosts, HostsTable, entries, parse_hosts, reload, zone_labels
from clusterdns.records import Name
from clusterdns.wire import Query, assemble, encode, parse_query

# plugin/hosts/hosts_test.go hostsExample (spec fixture H1).
H1 = """
127.0.0.1 localhost localhost.domain
::1 localhost localhost.domain
10.0.0.1 example.org
::FFFF:10.0.0.2 example.com
10.0.0.3 fallthrough-example.org
1.2.3.4 aa.example.com
5.6.7.8 *.apps.example.com
reload 5s
timeout 3600
"""

# plugin/hosts/hostsfile_test.go fixtures (Go raw strings: the tab indentation is kept).
HOSTS = """255.255.255.255	broadcasthost
	127.0.0.2	odin
	127.0.0.3	odin  # inline comment
	::2             odin
	127.1.1.1	thor
	# aliases
	127.1.1.2	ullr ullrhost
	fe80::1%lo0	localhost
	# Bogus entries that must be ignored.
	123.123.123	loki
	321.321.321.321"""
SINGLELINE = "127.0.0.2  odin"
IPV4HOSTS = """# See https://tools.ietf.org/html/rfc1123.
	#

	# internet address and host name
	127.0.0.1	localhost	# inline comment separated by tab
	127.0.0.2	localhost       # inline comment separated by space

	# internet address, host name and aliases
	127.0.0.3	localhost	localhost.localdomain"""
IPV6HOSTS = """# See https://tools.ietf.org/html/rfc5952, https://tools.ietf.org/html/rfc4007.

	# internet address and host name
	::1						localhost	# inline comment separated by tab
	fe80:0000:0000:0000:0000:0000:0000:0001		localhost       # inline comment separated by space

	# internet address with zone identifier and host name
	fe80:0000:0000:0000:0000:0000:0000:0002%lo0	localhost

	# internet address, host name and aliases
	fe80::3%lo0					localhost	localhost.localdomain"""
CASEHOSTS = """127.0.0.1	PreserveMe	PreserveMe.local
		::1		PreserveMe	PreserveMe.local"""
FIXTURES = {"hosts": HOSTS, "singlelinehosts": SINGLELINE, "ipv4hosts": IPV4HOSTS, "ipv6hosts": IPV6HOSTS, "casehosts": CASEHOSTS}

# plugin/hosts/wildcard_test.go TestLookupWildcardHost.
WILDCARDS = """
127.0.0.53 *.example.org
127.0.1.52 *.intern.example.org
127.0.0.54 foo.example.org
192.168.33.10 *.example.com
192.168.33.11 a.example.com
192.168.33.12 b.example.com
"""

ROOT = zone_labels(["."])


def table_hosts(text: str, origins: tuple[str, ...] = (".",), **options: Any) -> Hosts:
    """A Hosts whose file table is `text` (what readHosts would have loaded)."""
    auto_reverse = options.get("auto_reverse", True)
    return Hosts(zone_labels(origins), parse_hosts(text, origins, auto_reverse), **options)


def question(name: str, qtype: str) -> tuple[bytes, Query]:
    wire = dns.message.make_query(name, qtype).to_wire()
    return wire, parse_query(wire)


def labels(name: str) -> tuple[str, ...]:
    """The question labels clusterdns's parse_query gives for a name (lower-cased)."""
    return question(name, "A")[1].labels


def result(hosts: Hosts, name: str, qtype: str) -> str | list[str]:
    """"next", "servfail", or the encoded reply's answer records in presentation format
    (checked to be NOERROR with AA and empty Authority and Additional, as hosts.go writes it)."""
    wire, query = question(name, qtype)
    outcome = answer(hosts, query.labels, query.qtype)
    if outcome.action is not Action.REPLY:
        assert outcome.answer is None
        return outcome.action.value
    assert outcome.answer is not None
    body = encode(outcome.answer.rcode, (outcome.answer.answer, outcome.answer.authority, outcome.answer.additional), wire, query,
                  outcome.answer.zone_labels)
    reply = dns.message.from_wire(assemble(body, wire, query, 65535))
    assert reply.rcode() == NOERROR and reply.flags & dns.flags.AA
    assert reply.authority == [] and reply.additional == []
    return [f"{rrset.name} {rrset.ttl} IN {dns.rdatatype.to_text(rrset.rdtype)} {rd}" for rrset in reply.answer for rd in rrset]


def text_addresses(hosts: Hosts, name: str, qtype: int) -> list[str]:
    return [ip.compressed for ip in addresses(hosts, labels(name), qtype)]


def text_names(hosts: Hosts, ip: str) -> list[str]:
    return [".".join(n) + "." for n in names_for(hosts, ipaddress.ip_address(ip))]


# --- plugin/hosts/hosts_test.go TestLookupA (hostsTestCases), fixture H1, Origins ".", no fallthrough

LOOKUP_A = [
    ("example.org.", "A", ["example.org. 3600 IN A 10.0.0.1"]),
    ("example.com.", "A", ["example.com. 3600 IN A 10.0.0.2"]),  # ::FFFF:10.0.0.2 is IPv4: an A record
    ("localhost.", "AAAA", ["localhost. 3600 IN AAAA ::1"]),
    ("1.0.0.10.in-addr.arpa.", "PTR", ["1.0.0.10.in-addr.arpa. 3600 IN PTR example.org."]),
    ("2.0.0.10.in-addr.arpa.", "PTR", ["2.0.0.10.in-addr.arpa. 3600 IN PTR example.com."]),
    ("1.0.0.127.in-addr.arpa.", "PTR", ["1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.", "1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.domain."]),
    ("example.org.", "AAAA", []),
    ("example.org.", "MX", []),
    ("aa.example.com.", "A", ["aa.example.com. 3600 IN A 1.2.3.4"]),
    # The Go table expects 5.6.7.8 but passes vacuously (it checks only when a message was
    # written); *.apps.example.com does not cover apps.example.com, so hosts returns SERVFAIL.
    ("apps.example.com.", "A", "servfail"),
]


@pytest.mark.parametrize(("name", "qtype", "expected"), LOOKUP_A)
def test_lookup_a(name: str, qtype: str, expected: str | list[str]) -> None:
    assert result(table_hosts(H1), name, qtype) == expected


def test_lookup_a_fallthrough_case() -> None:
    """hostsTestCases' fallthrough-example.org. AAAA with fall.Root: the name has an A, so
    hosts writes NODATA itself and does not fall through."""
    assert result(table_hosts(H1, fallthrough=ROOT), "fallthrough-example.org.", "AAAA") == []


# --- Derived cases for H1 (spec 4.1, worked out from hosts.go and hostsfile.go)

SIX = ".".join(reversed("0" * 31 + "1")) + ".ip6.arpa."
DERIVED = [
    ("x.apps.example.com.", "A", {}, ["x.apps.example.com. 3600 IN A 5.6.7.8"]),
    ("a.b.apps.example.com.", "A", {}, "servfail"),  # a wildcard covers one label only
    ("x.apps.example.com.", "AAAA", {}, []),  # the name exists through the wildcard A
    ("example.com.", "AAAA", {}, []),  # v4-mapped is A only
    ("missing.example.org.", "A", {}, "servfail"),  # hosts never answers NXDOMAIN
    ("missing.example.org.", "A", {"fallthrough": ROOT}, "next"),
    ("9.9.9.9.in-addr.arpa.", "PTR", {}, "next"),
    ("9.9.9.9.in-addr.arpa.", "PTR", {"fallthrough": ROOT}, "next"),
    (SIX, "PTR", {}, [f"{SIX} 3600 IN PTR localhost.", f"{SIX} 3600 IN PTR localhost.domain."]),
    ("EXAMPLE.ORG.", "A", {}, ["example.org. 3600 IN A 10.0.0.1"]),  # owner lower-cased (state.Name())
    ("example.org.", "A", {"ttl": 60}, ["example.org. 60 IN A 10.0.0.1"]),
    ("1.0.0.10.in-addr.arpa.", "PTR", {"auto_reverse": False}, "next"),  # no_reverse
    ("1.0.0.10.in-addr.arpa.", "PTR", {"ttl": 60}, ["1.0.0.10.in-addr.arpa. 60 IN PTR example.org."]),
]


@pytest.mark.parametrize(("name", "qtype", "options", "expected"), DERIVED)
def test_derived_h1(name: str, qtype: str, options: dict[str, Any], expected: str | list[str]) -> None:
    assert result(table_hosts(H1, **options), name, qtype) == expected


def test_owner_is_lower_case_but_the_question_keeps_its_spelling() -> None:
    wire, query = question("ExAmPlE.OrG.", "A")
    outcome = answer(table_hosts(H1), query.labels, query.qtype)
    assert outcome.answer is not None
    body = encode(NOERROR, (outcome.answer.answer, (), ()), wire, query, outcome.answer.zone_labels)
    reply = dns.message.from_wire(assemble(body, wire, query, 512))
    assert reply.question[0].name.to_text() == "ExAmPlE.OrG."
    assert reply.answer[0].name.to_text() == "example.org."


# --- plugin/hosts/hosts_test.go TestFallthroughUnsupportedType: H1, TXT, a next plugin

UNSUPPORTED = [
    ("existing name returns nodata by default", "example.org.", ["."], False, []),
    ("existing name falls through with opt-in", "example.org.", ["."], True, "next"),
    ("opt-in respects fallthrough zones", "example.org.", ["example.net."], True, []),
    ("missing name still falls through", "missing.example.org.", ["."], False, "next"),
]


@pytest.mark.parametrize(("case", "name", "fall", "unsupported", "expected"), UNSUPPORTED)
def test_fallthrough_unsupported_type(case: str, name: str, fall: list[str], unsupported: bool, expected: str | list[str]) -> None:
    hosts = table_hosts(H1, fallthrough=zone_labels(fall), fallthrough_unsupported=unsupported)
    assert result(hosts, name, "TXT") == expected


# --- The ServeDNS summary table (spec 1.4), Origins example.org: every row, then with fallthrough

SUMMARY_FILE = """
10.0.0.1 example.org www.example.org
fd00::1 v6.example.org
10.0.0.9 outside.net
"""
SUMMARY = [
    ("A with entries", "www.example.org.", "A", {}, ["www.example.org. 3600 IN A 10.0.0.1"]),
    ("AAAA with entries", "v6.example.org.", "AAAA", {}, ["v6.example.org. 3600 IN AAAA fd00::1"]),
    ("name has AAAA, A asked", "v6.example.org.", "A", {}, []),
    ("name has AAAA, MX asked", "v6.example.org.", "MX", {}, []),
    ("name has A, TXT asked", "www.example.org.", "TXT", {}, []),
    ("name unknown", "nope.example.org.", "A", {}, "servfail"),
    ("name unknown, other type", "nope.example.org.", "MX", {}, "servfail"),
    ("qname outside zones", "outside.net.", "A", {}, "next"),
    ("qname outside zones, fallthrough off or on", "outside.net.", "A", {"fallthrough": ROOT}, "next"),
    ("PTR known; in-addr.arpa need not be a zone", "1.0.0.10.in-addr.arpa.", "PTR", {}, [
        "1.0.0.10.in-addr.arpa. 3600 IN PTR example.org.", "1.0.0.10.in-addr.arpa. 3600 IN PTR www.example.org."]),
    ("PTR of a name dropped for its zone", "9.0.0.10.in-addr.arpa.", "PTR", {}, "next"),
    ("PTR unknown", "2.0.0.10.in-addr.arpa.", "PTR", {}, "next"),
    ("PTR on a forward name", "www.example.org.", "PTR", {}, "next"),
    ("PTR on a partial reverse name", "0.0.10.in-addr.arpa.", "PTR", {}, "next"),
    ("fallthrough: name unknown", "nope.example.org.", "A", {"fallthrough": ROOT}, "next"),
    ("fallthrough zone covers the name", "nope.example.org.", "A", {"fallthrough": zone_labels(["example.org"])}, "next"),
    ("fallthrough zone does not cover it", "nope.example.org.", "A", {"fallthrough": zone_labels(["other.org"])}, "servfail"),
    ("fallthrough leaves NODATA alone", "v6.example.org.", "MX", {"fallthrough": ROOT}, []),
    ("fallthrough_unsupported: NODATA for MX goes on", "v6.example.org.", "MX", {"fallthrough": ROOT, "fallthrough_unsupported": True}, "next"),
    ("fallthrough_unsupported: not for A", "v6.example.org.", "A", {"fallthrough": ROOT, "fallthrough_unsupported": True}, []),
    ("fallthrough_unsupported outside its zones", "v6.example.org.", "MX",
     {"fallthrough": zone_labels(["other.org"]), "fallthrough_unsupported": True}, []),
]


@pytest.mark.parametrize(("case", "name", "qtype", "options", "expected"), SUMMARY)
def test_serve_dns_summary(case: str, name: str, qtype: str, options: dict[str, Any], expected: str | list[str]) -> None:
    assert result(table_hosts(SUMMARY_FILE, ("example.org",), **options), name, qtype) == expected


def test_no_zones_pass_every_forward_name_on() -> None:
    """plugin.Zones(nil).Matches is always "": only PTR questions are answered."""
    hosts = Hosts((), parse_hosts(H1, (".",)))
    assert result(hosts, "example.org.", "A") == "next"
    assert result(hosts, "1.0.0.10.in-addr.arpa.", "PTR") == ["1.0.0.10.in-addr.arpa. 3600 IN PTR example.org."]


def test_outcome_values() -> None:
    hosts = table_hosts(H1)
    nodata = answer(hosts, labels("example.org."), AAAA)
    assert nodata.action is Action.REPLY and nodata.answer is not None
    assert (nodata.answer.rcode, nodata.answer.answer, nodata.answer.authority, nodata.answer.additional) == (NOERROR, (), (), ())
    failed = answer(hosts, labels("nope.example.org."), A)
    assert (failed.action, failed.answer) == (Action.SERVFAIL, None) and failed.why
    passed = answer(hosts, labels("9.9.9.9.in-addr.arpa."), PTR)
    assert (passed.action, passed.answer) == (Action.NEXT, None) and passed.why
    found = answer(hosts, labels("example.org."), A)
    assert found.answer is not None
    assert [(rr.owner, rr.rtype, rr.ttl, rr.rdata) for rr in found.answer.answer] == [
        (Name(("example", "org"), in_zone=False), A, 3600, bytes([10, 0, 0, 1]))]
    ptr = answer(hosts, labels("1.0.0.10.in-addr.arpa."), PTR)
    assert ptr.answer is not None and ptr.answer.answer[0].rdata == Name(("example", "org"), in_zone=False)


# --- plugin/hosts/hostsfile_test.go TestLookupStaticHost: each query as given, lower and upper case

STATIC_HOST = [
    ("hosts", "odin.", ["127.0.0.2", "127.0.0.3"], ["::2"]),
    ("hosts", "thor.", ["127.1.1.1"], []),
    ("hosts", "ullr.", ["127.1.1.2"], []),
    ("hosts", "ullrhost.", ["127.1.1.2"], []),
    ("hosts", "localhost.", [], ["fe80::1"]),
    ("hosts", "loki.", [], []),  # 123.123.123 is not an address
    ("singlelinehosts", "odin.", ["127.0.0.2"], []),
    ("ipv4hosts", "localhost.", ["127.0.0.1", "127.0.0.2", "127.0.0.3"], []),
    ("ipv4hosts", "localhost.localdomain.", ["127.0.0.3"], []),
    ("ipv6hosts", "localhost.", [], ["::1", "fe80::1", "fe80::2", "fe80::3"]),
    ("ipv6hosts", "localhost.localdomain.", [], ["fe80::3"]),
    ("casehosts", "PreserveMe.", ["127.0.0.1"], ["::1"]),
    ("casehosts", "PreserveMe.local.", ["127.0.0.1"], ["::1"]),
]


@pytest.mark.parametrize(("fixture", "name", "v4", "v6"), STATIC_HOST)
def test_lookup_static_host(fixture: str, name: str, v4: list[str], v6: list[str]) -> None:
    hosts = table_hosts(FIXTURES[fixture])
    for form in (name, name.lower(), name.upper(), name.rstrip(".")):
        assert text_addresses(hosts, form, A) == v4
        assert text_addresses(hosts, form, AAAA) == v6


# --- plugin/hosts/hostsfile_test.go TestLookupStaticAddr (PTR targets come back lower-cased)

STATIC_ADDR = [
    ("hosts", "255.255.255.255", ["broadcasthost."]),
    ("hosts", "127.0.0.2", ["odin."]),
    ("hosts", "127.0.0.3", ["odin."]),
    ("hosts", "::2", ["odin."]),
    ("hosts", "127.1.1.1", ["thor."]),
    ("hosts", "127.1.1.2", ["ullr.", "ullrhost."]),
    ("hosts", "fe80::1", ["localhost."]),
    ("singlelinehosts", "127.0.0.2", ["odin."]),
    ("ipv4hosts", "127.0.0.1", ["localhost."]),
    ("ipv4hosts", "127.0.0.2", ["localhost."]),
    ("ipv4hosts", "127.0.0.3", ["localhost.", "localhost.localdomain."]),
    ("ipv6hosts", "::1", ["localhost."]),
    ("ipv6hosts", "fe80::1", ["localhost."]),
    ("ipv6hosts", "fe80::2", ["localhost."]),
    ("ipv6hosts", "fe80::3", ["localhost.", "localhost.localdomain."]),
    ("casehosts", "127.0.0.1", ["preserveme.", "preserveme.local."]),
    ("casehosts", "::1", ["preserveme.", "preserveme.local."]),
]


@pytest.mark.parametrize(("fixture", "ip", "names"), STATIC_ADDR)
def test_lookup_static_addr(fixture: str, ip: str, names: list[str]) -> None:
    assert text_names(table_hosts(FIXTURES[fixture]), ip) == names


def test_casehosts_ptr_answer_is_lower_case() -> None:
    assert result(table_hosts(CASEHOSTS), "1.0.0.127.in-addr.arpa.", "PTR") == [
        "1.0.0.127.in-addr.arpa. 3600 IN PTR preserveme.", "1.0.0.127.in-addr.arpa. 3600 IN PTR preserveme.local."]


def test_bogus_lines_of_the_hosts_fixture_are_skipped_with_reasons() -> None:
    table = parse_hosts(HOSTS, (".",))
    assert [line for line, _ in table.skipped] == [10, 11]
    assert "'123.123.123' is not an IP address" in table.skipped[0][1]
    assert "'321.321.321.321' alone" in table.skipped[1][1]


# --- plugin/hosts/wildcard_test.go TestLookupWildcardHost (and TestReplaceWithAsteriskLabel's cases)

WILDCARD = [
    ("foo.example.org.", ["127.0.0.54"]),
    ("bar.example.org.", ["127.0.0.53"]),
    ("bar.intern.example.org.", ["127.0.1.52"]),
    ("a.example.com.", ["192.168.33.11"]),
    ("b.example.com.", ["192.168.33.12"]),
    ("c.example.com.", ["192.168.33.10"]),
    ("example.com.", []),  # its pattern is *.com.
    ("deep.foo.example.org.", []),
    ("*.example.com.", ["192.168.33.10"]),  # a literal wildcard question matches itself (derived)
    (".", []),  # the root has no pattern
]


@pytest.mark.parametrize(("name", "v4"), WILDCARD)
def test_lookup_wildcard_host(name: str, v4: list[str]) -> None:
    hosts = table_hosts(WILDCARDS)
    for form in (name, name.upper()):
        assert text_addresses(hosts, form, A) == v4
        assert text_addresses(hosts, form, AAAA) == []


def test_wildcards_never_get_a_ptr() -> None:
    hosts = table_hosts(WILDCARDS)
    assert text_names(hosts, "127.0.0.53") == [] and text_names(hosts, "127.0.0.54") == ["foo.example.org."]
    assert result(hosts, "53.0.0.127.in-addr.arpa.", "PTR") == "next"


def test_an_exact_name_hides_the_wildcard_only_in_its_family_and_source() -> None:
    """hostsfile.go lookupStaticHostLocked checks one family's exact map of one source (spec 1.3)."""
    file = "fd00::c c.example.org\n10.0.0.1 b.example.org\n10.9.9.9 *.example.org\n"
    hosts = Hosts(ROOT, parse_hosts(file, (".",)), parse_hosts("10.8.8.8 *.example.org", (".",)))
    assert text_addresses(hosts, "c.example.org.", A) == ["10.9.9.9", "10.8.8.8"]  # AAAA-only name: A wildcard applies
    assert text_addresses(hosts, "b.example.org.", A) == ["10.0.0.1", "10.8.8.8"]  # the inline wildcard still applies
    assert text_addresses(hosts, "c.example.org.", AAAA) == ["fd00::c"]


def test_a_star_alone_is_a_wildcard_that_matches_nothing() -> None:
    """`*` normalises to `*.`, a wildcard name (isWildcardName) no pattern ever equals."""
    hosts = table_hosts("10.0.0.1 *")
    assert hosts.file.wild4 == {("*",): (ipaddress.IPv4Address("10.0.0.1"),)} and entries(hosts) == 1
    assert text_addresses(hosts, "com.", A) == [] and text_addresses(hosts, "*.", A) == []


# --- plugin/hosts/setup_test.go TestHostsInlineParse (the data rows) and test/hosts_file_test.go

INLINE_PARSE = [
    ("inline line before fallthrough", ["10.0.0.1 example.org"], ("example.org",), {"10.0.0.1": ["example.org."]}),
    ("inline line, no fallthrough", ["10.0.0.1 example.org"], ("example.org",), {"10.0.0.1": ["example.org."]}),
    ("zones apply to inline lines too (initInline)", ["10.0.0.1 example.org", "10.0.0.2 other.net"], ("example.org",),
     {"10.0.0.1": ["example.org."], "10.0.0.2": []}),
]


@pytest.mark.parametrize(("case", "lines", "origins", "addr"), INLINE_PARSE)
def test_hosts_inline_parse(case: str, lines: list[str], origins: tuple[str, ...], addr: dict[str, list[str]]) -> None:
    hosts = Hosts(zone_labels(origins), inline=parse_hosts("\n".join(lines), origins))
    for ip, names in addr.items():
        assert text_names(hosts, ip) == names


def test_hosts_inline_lookup_with_a_missing_file(tmp_path: Path) -> None:
    """test/hosts_file_test.go TestHostsInlineLookup: `hosts highly_unlikely_to_exist_hosts_file
    example.org { 10.0.0.1 example.org; fallthrough }` answers example.org. A from the inline line."""
    origins = ("example.org",)
    hosts = Hosts(zone_labels(origins), inline=parse_hosts("10.0.0.1 example.org", origins), fallthrough=ROOT)
    loaded, fingerprint, changed = reload(hosts, str(tmp_path / "highly_unlikely_to_exist_hosts_file"), None)
    assert (loaded, fingerprint, changed) == (hosts, None, False)
    assert result(loaded, "example.org.", "A") == ["example.org. 3600 IN A 10.0.0.1"]


def test_file_results_come_before_inline_ones_and_nothing_is_overridden() -> None:
    """hostsfile.go lookupStaticHostFamily and LookupStaticAddr concatenate (spec 1.3, quirk 1)."""
    hosts = Hosts(ROOT, parse_hosts("10.0.0.1 a.example.org", (".",)), parse_hosts("10.0.0.2 a.example.org\n10.0.0.1 a.example.org", (".",)))
    assert text_addresses(hosts, "a.example.org.", A) == ["10.0.0.1", "10.0.0.2", "10.0.0.1"]
    assert text_names(hosts, "10.0.0.1") == ["a.example.org.", "a.example.org."]
    outcome = answer(hosts, labels("a.example.org."), A)
    assert outcome.answer is not None and [rr.rdata for rr in outcome.answer.answer] == [b"\n\0\0\1", b"\n\0\0\2", b"\n\0\0\1"]
    assert entries(hosts) == 2 + 4


# --- Parsing details (hostsfile.go Hostsfile.parse, spec 1.2)


def test_ipv4_mapped_addresses_are_ipv4() -> None:
    table = parse_hosts("::FFFF:10.0.0.2 example.com", (".",))
    assert table.v4 == {("example", "com"): (ipaddress.IPv4Address("10.0.0.2"),)} and table.v6 == {}
    assert table.reverse == {ipaddress.IPv4Address("10.0.0.2").packed: (("example", "com"),)}


def test_ipv4_mapped_ptr_under_ip6_arpa_finds_the_ipv4_entry() -> None:
    """dnsutil.ExtractAddressFromReverse prints ::ffff:a00:2 as 10.0.0.2 (spec 1.3)."""
    name = ipaddress.ip_address("::ffff:10.0.0.2").reverse_pointer + "."
    assert result(table_hosts(H1), name, "PTR") == [f"{name} 3600 IN PTR example.com."]


def test_skipped_lines_name_their_line_and_reason() -> None:
    text = "# comment\n\n127.0.0.1\nreload 5s\n123.123.123 loki\n10.0.0.1 ok.example.org other.net\n10.0.0.2 a..example.org\n10.0.0.3 ok.example.org\n"
    table = parse_hosts(text, ("example.org",))
    assert [(line, reason.split(":")[0]) for line, reason in table.skipped] == [
        (3, "'127.0.0.1' alone"),
        (4, "'reload' is not an IP address"),
        (5, "'123.123.123' is not an IP address"),
        (6, "'other.net' is outside the zones of hosts"),
        (7, "'a..example.org' is not a DNS name"),
    ]
    assert table.v4 == {("ok", "example", "org"): (ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.3"))}


def test_names_outside_the_origins_are_dropped_forward_and_reverse() -> None:
    hosts = table_hosts("10.0.0.1 in.example.org out.example.net", ("example.org",))
    assert text_names(hosts, "10.0.0.1") == ["in.example.org."]
    assert hosts.file.v4.keys() == {("in", "example", "org")}


def test_duplicates_are_kept_and_counted() -> None:
    hosts = table_hosts("10.0.0.1 d.org\n10.0.0.1 d.org D.ORG.\n")
    assert result(hosts, "d.org.", "A") == ["d.org. 3600 IN A 10.0.0.1"]  # dnspython merges equal rdata ...
    outcome = answer(hosts, labels("d.org."), A)
    assert outcome.answer is not None and len(outcome.answer.answer) == 3  # ... but three went on the wire
    assert text_names(hosts, "10.0.0.1") == ["d.org."] * 3 and entries(hosts) == 6


def test_no_reverse_keeps_forward_entries_only() -> None:
    table = parse_hosts(H1, (".",), auto_reverse=False)
    assert table.reverse == {} and table.v4[("example", "org")] == (ipaddress.IPv4Address("10.0.0.1"),)
    assert table.entries == 9  # H1's 17 less its 8 reverse entries


def test_entries_counts_as_map_len() -> None:
    """coredns_hosts_entries = inline.Len() + hmap.Len(): v4, v6, wild4, wild6 and reverse."""
    hosts = table_hosts(H1)
    assert entries(hosts) == 17  # 6 A + 2 AAAA + 1 wildcard + 8 reverse
    assert entries(dataclasses.replace(hosts, inline=parse_hosts("10.0.0.1 x.org", (".",)))) == 19
    assert entries(Hosts(ROOT)) == 0


def test_fields_split_as_go_bytes_fields() -> None:
    """Go's unicode.IsSpace: NBSP separates fields, \\x1c does not (Python's str.split would)."""
    table = parse_hosts("10.0.0.1\u00a0nbsp.org\n10.0.0.2\x1cfs.org other.org\n10.0.0.3 crlf.org\r\n10.0.0.4 tab.org\tspace.org\n", (".",))
    assert set(table.v4) == {("nbsp", "org"), ("crlf", "org"), ("tab", "org"), ("space", "org")}
    assert [line for line, _ in table.skipped] == [2]


def test_comment_starts_at_the_first_hash_anywhere() -> None:
    table = parse_hosts("10.0.0.1 a.org#b.org c.org\n#10.0.0.2 d.org\n10.0.0.3 # e.org\n", (".",))
    assert set(table.v4) == {("a", "org")} and [line for line, _ in table.skipped] == [3]


def test_a_line_of_64_kib_stops_the_parse() -> None:
    """bufio.Scanner's ErrTooLong: CoreDNS keeps the lines before and reads no further."""
    fits = "10.0.0.1 fits.org".ljust(65535)
    table = parse_hosts(f"{fits}\n10.0.0.2 before.org\n{'#'.ljust(65536)}\n10.0.0.3 after.org\n", (".",))
    assert set(table.v4) == {("fits", "org"), ("before", "org")}
    assert table.skipped[0][0] == 3 and "64 KiB" in table.skipped[0][1]


def test_names_that_cannot_be_dns_names_are_dropped() -> None:
    """A deviation: CoreDNS keeps them, yet no question can name them and a PTR to them cannot be packed."""
    long_label = "a" * 64
    table = parse_hosts(f"10.0.0.1 {long_label}.org ok.org .lead.org\n", (".",))
    assert set(table.v4) == {("ok", "org")}
    assert [reason.split(":")[1].strip() for _, reason in table.skipped] == ["label aaaaaaaaaaaaaaaa... has 64 octets (at most 63)", "an empty label"]


def test_the_root_name_is_a_name() -> None:
    hosts = table_hosts("10.0.0.1 .")
    assert result(hosts, ".", "A") == [". 3600 IN A 10.0.0.1"]
    assert result(hosts, "1.0.0.10.in-addr.arpa.", "PTR") == ["1.0.0.10.in-addr.arpa. 3600 IN PTR ."]


def test_tables_are_immutable() -> None:
    hosts = table_hosts(H1)
    with pytest.raises(TypeError):
        hosts.file.v4[("new",)] = ()  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hosts.ttl = 5  # type: ignore[misc]
    assert EMPTY == HostsTable({}, {}, {}, {}, {})


# --- dnsutil.ExtractAddressFromReverse (plugin/pkg/dnsutil/reverse.go)

REVERSE = [
    ("54.119.58.176.in-addr.arpa.", "176.58.119.54"),
    ("1.0.0.10.IN-ADDR.ARPA.", "10.0.0.1"),
    ("0.0.10.in-addr.arpa.", None),  # a reverse zone, not an address
    ("1.1.0.0.10.in-addr.arpa.", None),
    ("01.0.0.10.in-addr.arpa.", None),  # Go's ParseIP refuses leading zeros
    ("256.0.0.10.in-addr.arpa.", None),
    ("in-addr.arpa.", None),
    ("example.org.", None),
    (ipaddress.ip_address("2001:db8::567:89ab").reverse_pointer, "2001:db8::567:89ab"),
    (ipaddress.ip_address("::1").reverse_pointer.upper(), "::1"),
    (ipaddress.ip_address("::ffff:10.0.0.2").reverse_pointer, "10.0.0.2"),  # Go prints it as IPv4
    (ipaddress.ip_address("::1").reverse_pointer.split(".", 1)[1], None),  # 31 nibbles
    ("g." + ipaddress.ip_address("::1").reverse_pointer.split(".", 1)[1], None),
    ("x." + ipaddress.ip_address("::1").reverse_pointer, "::1"),  # 33 labels: Go's reverse6 drops the extra one
    ("10." + ipaddress.ip_address("::").reverse_pointer.split(".", 2)[2], None),  # 31 labels, one of two digits
]


@pytest.mark.parametrize(("name", "ip"), REVERSE)
def test_reverse_address(name: str, ip: str | None) -> None:
    found = reverse_address(labels(name))
    assert (found.compressed if found is not None else None) == ip


# --- Reloading (hostsfile.go readHosts, spec 1.5): real files, mtimes set with os.utime


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))


def test_reload_reads_a_changed_file_only(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write(path, "10.0.0.1 a.example.org\n", 1_000_000_000_000_000_000)
    start = Hosts(zone_labels(["example.org"]))
    loaded, fingerprint, changed = reload(start, str(path), None)
    assert changed and fingerprint == (1_000_000_000_000_000_000, 23)
    assert result(loaded, "a.example.org.", "A") == ["a.example.org. 3600 IN A 10.0.0.1"]
    again = reload(loaded, str(path), fingerprint)
    assert again == (loaded, fingerprint, False) and again[0] is loaded

    write(path, "10.0.0.2 b.example.org\n10.0.0.3 c.other.net\n", 1_000_000_001_000_000_000)  # 1 s later
    newer, fingerprint, changed = reload(loaded, str(path), fingerprint)
    assert changed and fingerprint == (1_000_000_001_000_000_000, 44)
    assert result(newer, "a.example.org.", "A") == "servfail"
    assert result(newer, "b.example.org.", "A") == ["b.example.org. 3600 IN A 10.0.0.2"]
    assert [line for line, _ in newer.file.skipped] == [2]  # c.other.net is outside the zones


def test_a_change_keeping_mtime_and_size_is_not_seen(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write(path, "10.0.0.1 a.example.org\n", 5_000_000_000)
    loaded, fingerprint, _ = reload(Hosts(ROOT), str(path), None)
    write(path, "10.0.0.9 a.example.org\n", 5_000_000_000)
    assert reload(loaded, str(path), fingerprint) == (loaded, fingerprint, False)
    write(path, "10.0.0.9 a.example.org\n", 6_000_000_000)  # touched: now it is
    touched, _, changed = reload(loaded, str(path), fingerprint)
    assert changed and text_addresses(touched, "a.example.org.", A) == ["10.0.0.9"]


def test_a_deleted_file_keeps_the_old_table_until_it_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write(path, "10.0.0.1 a.example.org\n", 7_000_000_000)
    loaded, fingerprint, _ = reload(Hosts(ROOT), str(path), None)
    path.unlink()
    kept, kept_fingerprint, changed = reload(loaded, str(path), fingerprint)
    assert (kept, kept_fingerprint, changed) == (loaded, fingerprint, False)
    assert result(kept, "a.example.org.", "A") == ["a.example.org. 3600 IN A 10.0.0.1"]
    write(path, "10.0.0.2 a.example.org\n", 8_000_000_000)
    back, fingerprint, changed = reload(kept, str(path), kept_fingerprint)
    assert changed and fingerprint == (8_000_000_000, 23) and text_addresses(back, "a.example.org.", A) == ["10.0.0.2"]


def test_reload_keeps_inline_and_options_and_applies_them_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    write(path, "10.0.0.1 a.example.org b.other.net\n", 9_000_000_000)
    start = Hosts(zone_labels(["example.org"]), inline=parse_hosts("10.0.0.5 a.example.org", ("example.org",), False), ttl=30,
                  fallthrough=ROOT, auto_reverse=False)
    loaded, _, changed = reload(start, str(path), None)
    assert changed and dataclasses.replace(loaded, file=EMPTY) == start
    assert result(loaded, "a.example.org.", "A") == ["a.example.org. 30 IN A 10.0.0.1", "a.example.org. 30 IN A 10.0.0.5"]
    assert result(loaded, "1.0.0.10.in-addr.arpa.", "PTR") == "next"  # no_reverse applies to the file
    assert text_addresses(loaded, "b.other.net.", A) == []


def test_a_directory_reads_as_an_empty_file(tmp_path: Path) -> None:
    """Go's os.Open opens a directory, Stat succeeds, and the scan reads nothing: the table empties."""
    path = tmp_path / "hosts"
    write(path, "10.0.0.1 a.example.org\n", 10_000_000_000)
    loaded, fingerprint, _ = reload(Hosts(ROOT), str(path), None)
    path.unlink()
    path.mkdir()
    emptied, new_fingerprint, changed = reload(loaded, str(path), fingerprint)
    assert changed and new_fingerprint != fingerprint and emptied.file.v4 == {} and entries(emptied) == 0


def test_outcome_is_frozen() -> None:
    outcome = answer(table_hosts(H1), labels("example.org."), A)
    assert isinstance(outcome, Outcome)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.action = Action.NEXT  # type: ignore[misc]
