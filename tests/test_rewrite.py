"""CoreDNS's `rewrite name` rules: parsing, question rewriting and reply mapping, from CoreDNS's own test tables.

Each table names the CoreDNS file and test it comes from (plugin/rewrite/ unless said otherwise).
CoreDNS's tests run the plugin with a `msgPrinter` backend that echoes the (rewritten) request with
one A record owned by the current question name; `backend()` below builds that reply with dnspython.
Where a CoreDNS test uses NoRevertPolicy or NoRestorePolicy, the question it reports is the
rewritten one: here that is `Rewritten.name`, and the reply is checked under the production policy
(question restored), the only one clusterdns has.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from clusterdns.errors import ConfigError
from clusterdns.rewrite import OWNER, VALUE, Remap, Rewriter, Rewritten, SuffixMap, parse_rule, valid_name
from clusterdns.rewrite_re2 import RE2Error, compile_re2
from clusterdns.serve.rewriting import reverse

# ---------------------------------------------------------------------------------------------
# helpers


def rewriter(*rules: Sequence[str]) -> Rewriter:
    return Rewriter([parse_rule(words) for words in rules])


def question(name: str, rdtype: str = "A", rdclass: str = "IN") -> bytes:
    """A question section entry on the wire, as the client sent it."""
    return dns.name.from_text(name).to_wire() + struct.pack("!HH", dns.rdatatype.from_text(rdtype), dns.rdataclass.from_text(rdclass))


def rr(line: str) -> dns.rrset.RRset:
    """A record from a `owner ttl class type rdata` line, as CoreDNS's test.A(...) helpers take it."""
    owner, ttl, rdclass, rdtype, rdata = line.split(maxsplit=4)
    return dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, rdata)


def backend(name: str, rdtype: str = "A", answer: Sequence[str] = (), extra: Sequence[str] = (), ns: Sequence[str] = ()) -> dns.message.Message:
    """msgPrinter: the reply to the rewritten question; one A record owned by that name when no answer is given."""
    reply = dns.message.make_response(dns.message.make_query(name, rdtype))
    reply.answer.extend(rr(line) for line in (answer or [f"{name} 5 IN A 10.0.0.1"]))
    reply.additional.extend(rr(line) for line in extra)
    reply.authority.extend(rr(line) for line in ns)
    return reply


def serve(rw: Rewriter, name: str, rdtype: str = "A", **records: Sequence[str]) -> tuple[Rewritten, dns.message.Message]:
    """One query through the rules, the backend and reverse(): what the client gets."""
    rewritten = rw.rewrite(name.lower())
    assert rewritten is not None and not rewritten.servfail
    wire = reverse(backend(rewritten.name, rdtype, **records).to_wire(), question(name, rdtype), rewritten)
    return rewritten, parse(wire)


def parse(wire: bytes) -> dns.message.Message:
    """A reply as the client reads it, one record per RRset so that order and duplicates show."""
    return dns.message.from_wire(wire, one_rr_per_rrset=True)


def owners(section: list[dns.rrset.RRset]) -> list[str]:
    return [rrset.name.to_text() for rrset in section]


# ---------------------------------------------------------------------------------------------
# parsing: name_test.go TestNewNameRule (run, as CoreDNS does, both with `name` after the mode
# and with the mode left out), TestNewNameRuleLargeRegex; rewrite_test.go TestNewRule

NEW_NAME_RULE = [  # (next, args, expected to fail)
    ("stop", ["exact", "srv3.coredns.rocks", "srv4.coredns.rocks"], False),
    ("stop", ["srv1.coredns.rocks", "srv2.coredns.rocks"], False),
    ("stop", ["suffix", "coredns.rocks", "coredns.rocks."], False),
    ("stop", ["suffix", "coredns.rocks.", "coredns.rocks"], False),
    ("stop", ["suffix", "coredns.rocks.", "coredns.rocks."], False),
    ("stop", ["regex", "srv1.coredns.rocks", "10"], False),
    ("stop", ["regex", "(.*).coredns.rocks", "10"], False),
    ("stop", ["regex", "(.*).coredns.rocks", "{1}.coredns.rocks"], False),
    ("stop", ["regex", "(.*).coredns.rocks", "{1}.{2}.coredns.rocks"], True),
    ("stop", ["regex", "staging.mydomain.com", "aws-loadbalancer-id.us-east-1.elb.amazonaws.com"], False),
    ("stop", ["suffix", "staging.mydomain.com", "coredns.rock", "answer"], True),
    ("stop", ["suffix", "staging.mydomain.com", "coredns.rock", "answer", "name"], True),
    ("stop", ["suffix", "staging.mydomain.com", "coredns.rock", "answer", "other"], True),
    ("stop", ["suffix", "staging.mydomain.com", "coredns.rock", "answer", "auto"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "auto"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name"], True),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "coredns.rock", "staging.mydomain.com"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.{2}.staging.mydomain.com"], True),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "name", "(.*).coredns.rock"], True),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["regex", "staging.mydomain.com", "coredns.rock", "answer", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com", "value", "(.*).coredns.rock"], True),
    ("stop", ["suffix", "staging.mydomain.com.", "coredns.rock.", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["suffix", "staging.mydomain.com.", "coredns.rock.", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["suffix", "staging.mydomain.com.", "coredns.rock.", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com", "name", "(.*).coredns.rock", "{1}.staging.mydomain.com"], False),
    ("stop", ["suffix", "staging.mydomain.com.", "coredns.rock.", "answer", "value", "(.*).coredns.rock", "{1}.staging.mydomain.com", "value", "(.*).coredns.rock"], True),
]


@pytest.mark.parametrize("spelled", ["with mode", "mode left out"])
@pytest.mark.parametrize(("next_action", "args", "fails"), NEW_NAME_RULE)
def test_new_name_rule(spelled: str, next_action: str, args: list[str], fails: bool) -> None:
    words = [next_action, "name", *args] if spelled == "with mode" else ["name", *args]
    if fails:
        with pytest.raises(ConfigError, match=r"^rewrite: "):
            parse_rule(words)
    else:
        assert parse_rule(words).mode == next_action


def test_new_name_rule_large_regex() -> None:
    with pytest.raises(ConfigError, match=r"^rewrite: regex pattern too long: 10001 > 10000$"):
        parse_rule(["name", "regex", "a" * 10001, "replacement"])


NOT_UTF8 = "\udcec"  # the byte 0xec that TestNewRule puts in a pattern, as Python's surrogateescape decodes it
NEW_RULE = [  # (args, the match type CoreDNS builds, or None where it fails); CoreDNS's rows for the other rule types are below
    ([], None),
    (["foo"], None),
    (["name"], None),
    (["name", "a.com"], None),
    (["name", "a.com", "b.com", "c.com"], None),
    (["name", "a.com", "b.com"], "exact"),
    (["name", "exact", "a.com", "b.com"], "exact"),
    (["name", "prefix", "a.com", "b.com"], "prefix"),
    (["name", "suffix", "a.com", "b.com"], "suffix"),
    (["name", "substring", "a.com", "b.com"], "substring"),
    (["name", "regex", "([a])\\.com", "new-{1}.com"], "regex"),
    (["name", "regex", "([a]\\.com", "new-{1}.com"], None),
    (["name", "regex", "(dns)\\.(core)\\.(rocks)", "{2}.{1}.{3}", "answer", "name", "(core)\\.(dns)\\.(rocks)", "{2}.{1}.{3}"], "regex"),
    (["name", "regex", "(adns)\\.(core)\\.(rocks)", "{2}.{1}.{3}", "answer", "name", "(core)\\.(adns)\\.(rocks)", "{2}.{1}.{3}", "too.long", "way.too.long"], None),
    (["name", "regex", "(bdns)\\.(core)\\.(rocks)", "{2}.{1}.{3}", "NoAnswer", "name", "(core)\\.(bdns)\\.(rocks)", "{2}.{1}.{3}"], None),
    (["name", "regex", "(cdns)\\.(core)\\.(rocks)", "{2}.{1}.{3}", "answer", "ttl", "(core)\\.(cdns)\\.(rocks)", "{2}.{1}.{3}"], None),
    (["name", "regex", "(ddns)\\.(core)\\.(rocks)", "{2}.{1}.{3}", "answer", "name", NOT_UTF8 + "ore\\.(ddns)\\.(rocks)", "{2}.{1}.{3}"], None),
    (["name", "regex", NOT_UTF8 + "dns\\.(core)\\.(rocks)", "{2}.{1}.{3}", "answer", "name", "(core)\\.(edns)\\.(rocks)", "{2}.{1}.{3}"], None),
    (["name", "substring", "fcore.dns.rocks", "dns.fcore.rocks", "answer", "name", "(fcore)\\.(dns)\\.(rocks)", "{2}.{1}.{3}"], "substring"),
    (["name", "substring", "a.com", "b.com", "c.com"], None),
    (["unknown-action", "name", "a.com", "b.com"], None),
    (["stop", "name", "a.com", "b.com"], "exact"),
    (["continue", "name", "a.com", "b.com"], "exact"),
    (["unknown-action", "type", "any", "a"], None),
    (["unknown-action", "class", "ch", "in"], None),
    (["unknown-action", "edns0", "local", "set", "0xffee", "abcedef"], None),
    (["unknown-action", "edns0", "nsid", "set"], None),
    (["unknown-action", "edns0", "subnet", "set", "24", "64"], None),
]


@pytest.mark.parametrize(("args", "match"), NEW_RULE)
def test_new_rule(args: list[str], match: str | None) -> None:
    if match is None:
        with pytest.raises(ConfigError, match=r"^rewrite: "):
            parse_rule(args)
    else:
        assert parse_rule(args).match == match


OTHER_RULE_TYPES = [  # rewrite_test.go TestNewRule rows CoreDNS accepts (a sample of its edns0 rows): clusterdns has only name rules
    (["type", "any", "a"], "type"),
    (["stop", "type", "any", "a"], "type"),
    (["continue", "type", "any", "a"], "type"),
    (["class", "ch", "in"], "class"),
    (["stop", "class", "ch", "in"], "class"),
    (["continue", "class", "ch", "in"], "class"),
    (["edns0", "local", "set", "0xffee", "abcdefg"], "edns0"),
    (["stop", "edns0", "nsid", "set"], "edns0"),
    (["continue", "edns0", "local", "set", "0xffee", "{qname}"], "edns0"),
    (["edns0", "subnet", "set", "24", "56", "revert"], "edns0"),
    (["ttl", "exact", "a.com", "30"], "ttl"),
    (["cname", "exact", "a.com.", "b.com."], "cname"),
    (["rcode", "exact", "a.com.", "SERVFAIL", "NXDOMAIN"], "rcode"),
    (["TYPE", "any", "a"], "type"),
    (["type"], "type"),
]


@pytest.mark.parametrize(("args", "kind"), OTHER_RULE_TYPES)
def test_other_rule_types_are_refused_by_name(args: list[str], kind: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule(args)
    assert str(caught.value) == f"rewrite: {kind} rules are not supported: clusterdns supports only name rules"


MESSAGES = [  # the message for each refusal (rewrite.go newRule, name.go newNameRule and parseAnswerRules)
    ([], "no rule type specified for rewrite"),
    (["stop"], "stop rule must begin with a rule type"),
    (["CONTINUE"], "continue rule must begin with a rule type"),
    (["answer", "name", "a", "b"], "response rewrites must begin with a name rule"),
    (["stop", "answer", "name", "a", "b"], "response rewrites must begin with a name rule"),
    (["foo"], 'invalid rule type "foo"'),
    (["unknown-action", "name", "a.com", "b.com"], 'invalid rule type "unknown-action"'),
    (["name"], "too few arguments for a name rule"),
    (["stop", "name", "a.com"], "too few arguments for a name rule"),
    (["name", "a.com", "b.com", "c.com"], "name rule supports only exact, prefix, suffix, substring, and regex name matching, received: a.com"),
    (["name", "a.com", "b.com", "answer", "auto"], "invalid arguments for a.com rule"),
    (["name", "suffix", "x", "y", "answer"], "invalid arguments for suffix rule"),
    (["name", "suffix", "x", "y", "answer", "name"], "name answer rule for suffix rule: 2 arguments required"),
    (["name", "suffix", "x", "y", "answer", "other"], 'invalid type "other" for answer rule for suffix rule'),
    (["name", "suffix", "x", "y", "extra", "words"], "exceeded the number of arguments for a non-answer rule argument for suffix rule"),
    (["name", "suffix", "x", "y", "answer", "auto", "answer"], "type missing for answer rule for suffix rule"),
    (["name", "suffix", "x", "y", "answer", "auto", "answer", "value", "a"], "value answer rule for suffix rule: 2 arguments required"),
    (["name", "regex", "x", "y", "answer", "auto", "name", "a", "b"], "auto name answer rule cannot be combined with explicit name anwer rules"),
    (["name", "regex", "x", "y", "answer", "name", "a", "b", "auto"], "auto name answer rule cannot be combined with explicit name anwer rules"),
    (["name", "regex", "(.*).coredns.rocks", "{1}.{2}.coredns.rocks"],
     "the rewrite regex pattern ({1}.{2}.coredns.rocks) uses more subexpressions than its corresponding matching regex pattern ((.*).coredns.rocks)"),
    (["name", "regex", "x", "{0}.y"], "the rewrite regex pattern ({0}.y) uses more subexpressions than its corresponding matching regex pattern (x)"),
    (["name", "regex", "x", "y", "answer", "value", "(a)", "{1}.{2}"],
     "value answer rule for regex rule: the rewrite regex pattern ({1}.{2}) uses more subexpressions than its corresponding matching regex pattern ((a))"),
    # exact checks TO as a pattern and FROM as its template (name.go passes them swapped)
    (["name", "a{1}.com", "b.com"], "the rewrite regex pattern (a{1}.com.) uses more subexpressions than its corresponding matching regex pattern (b.com.)"),
]


@pytest.mark.parametrize(("args", "message"), MESSAGES)
def test_refusals_say_what_coredns_says(args: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule(args)
    assert str(caught.value) == f"rewrite: {message}"


BAD_PATTERNS = [  # (args, the start of the message; the reason follows in parentheses)
    (["name", "regex", "([a]\\.com", "new-{1}.com"], "invalid regex matching pattern: ([a]\\.com ("),
    (["name", "exact", "a.com", "b(.com"], "invalid regex matching pattern: b(.com. ("),
    (["name", "regex", "x", "y", "answer", "name", "(", "z"], "name answer rule for regex rule: invalid regex matching pattern: ( ("),
    (["name", "regex", "(a)\\1", "b"], "invalid regex matching pattern: (a)\\1 (\\1 (a backreference) is not RE2 syntax)"),
    (["name", "regex", "a(?=b)", "c"], "invalid regex matching pattern: a(?=b) ((?=...) (lookahead) is not RE2 syntax)"),
]


@pytest.mark.parametrize(("args", "start"), BAD_PATTERNS)
def test_bad_patterns_are_named(args: list[str], start: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule(args)
    assert str(caught.value).startswith(f"rewrite: {start}")


def test_what_a_rule_keeps() -> None:
    """FROM and TO normalised (lower case, trailing dot), a regex FROM kept as written (name.go newNameRule)."""
    exact = parse_rule(["STOP", "NAME", "A.Com", "B.com."])
    assert (exact.mode, exact.match, exact.source, exact.target, exact.auto) == ("stop", "exact", "a.com.", "b.com.", True)
    regex = parse_rule(["continue", "name", "REGEX", "(.*)\\.Example\\.org", "{1}.Consul", "answer", "auto"])
    assert (regex.mode, regex.source, regex.target, regex.auto, regex.pattern.pattern) == ("continue", "(.*)\\.Example\\.org", "{1}.consul.", True, "(.*)\\.Example\\.org")
    suffix = parse_rule(["name", "suffix", ".example.", ".default.svc.cluster.local.", "answer", "auto"])
    back = SuffixMap(".default.svc.cluster.local.", ".example.")
    assert suffix.auto is False and [(r.field, r.mapper) for r in suffix.answers] == [(OWNER, back), (VALUE, back)]
    escaped = parse_rule(["name", "prefix", "a\\.", "b\\\\."])
    assert (escaped.source, escaped.target) == ("a\\..", "b\\\\.")
    assert str(regex) == "rewrite continue name REGEX (.*)\\.Example\\.org {1}.Consul answer auto"


# ---------------------------------------------------------------------------------------------
# RE2 (Go regexp) patterns in Python's re


RE2_REFUSED = [
    ("(a)\\1", "backreference"),
    ("(a)\\9", "backreference"),
    ("(?P<n>a)(?P=n)", "backreference"),
    ("a(?=b)", "lookahead"),
    ("a(?!b)", "negative lookahead"),
    ("(?<=a)b", "lookbehind"),
    ("(?<!a)b", "negative lookbehind"),
    ("(?>a)", "atomic group"),
    ("a*+", "possessive"),
    ("a++", "possessive"),
    ("a?+", "possessive"),
    ("a{2}+", "possessive"),
    ("(?(1)a|b)", "conditional"),
    ("(?#note)a", "comment"),
    ("a{1001}", "at most 1000"),
    ("\\pL", "Unicode classes"),
    ("[\\p{Greek}]", "Unicode classes"),
    ("(?U)a*", "ungreedy"),
    ("(?x)a", "Perl syntax"),
    ("(?)a", "Perl syntax"),
    ("(?i-)a", "Perl syntax"),
    ("[[:^alpha:]]", "negated POSIX"),
    ("[[:nope:]]", "invalid character class"),
    ("\\Z", "invalid escape"),
    ("\\u0041", "invalid escape"),
    ("a\\", "trailing backslash"),
    ("(?P<a>x)(?P<a>y)", "duplicate"),
    ("[a", "missing closing ]"),
    ("(a", "missing )"),
    ("a" + NOT_UTF8, "UTF-8"),
]


@pytest.mark.parametrize(("pattern", "reason"), RE2_REFUSED)
def test_re2_refuses_what_go_regexp_lacks(pattern: str, reason: str) -> None:
    with pytest.raises(RE2Error) as caught:
        compile_re2(pattern)
    assert reason in str(caught.value)


RE2_MATCHING = [  # (pattern, text, what Go's FindString gives, or None for no match)
    ("[[:digit:]]+", "ab12c", "12"),
    ("[[:alpha:][:digit:]]+", "-ab12-", "ab12"),
    ("\\d+", "\u0663\u0664", None),  # RE2's \d is ASCII only
    ("\\w+", "é", None),
    ("a(?i)b|c", "C", "C"),  # a flag set mid-group holds to the group's end, across `|`
    ("a(?i)b|c", "aB", "aB"),
    ("a(?i)b|c", "AB", None),
    ("(?i)ab", "AB", "AB"),
    ("(x(?i)a)b", "xAB", None),  # ... and no further
    ("(?i:a)b", "Ab", "Ab"),
    ("(?:ab)+", "xabab", "abab"),
    ("(?i:a)(?:b)", "AB", None),
    ("(?s).", "\n", "\n"),
    ("x\\.\\z", "a.x.", "x."),
    ("\\Q.*\\E+", ".**", ".**"),
    ("\\Qa.b", "a.b", "a.b"),
    ("\\056", ".", "."),
    ("\\12", "\n", "\n"),  # octal, not group 12
    ("\\x{2e}", ".", "."),
    ("\\x2e", ".", "."),
    ("a{,2}", "a{,2}", "a{,2}"),  # not a repeat in RE2
    ("a{2}", "aaa", "aa"),
    ("[]a]+", "]a", "]a"),
    ("[a-c[]+", "b[", "b["),
    ("(?<n>x)(?P<m>y)", "xy", "xy"),
    ("a+?", "aaa", "a"),
    ("\\bdns\\b", "core.dns.rocks", "dns"),
    ("(f.*m)\\.regex\\.(nl)", "from.regex.nl.", "from.regex.nl"),
]


@pytest.mark.parametrize(("pattern", "text", "found"), RE2_MATCHING)
def test_re2_patterns_match_as_in_go(pattern: str, text: str, found: str | None) -> None:
    match = compile_re2(pattern).search(text)
    assert (match[0] if match else None) == found


def test_named_groups_count_as_groups() -> None:
    rule = parse_rule(["name", "regex", "(?P<a>x)\\.(?<b>y)", "{2}.{1}"])
    assert rule.pattern is not None and rule.pattern.groups == 2
    assert rule.apply("x.y.") == "y.x."


# ---------------------------------------------------------------------------------------------
# question rewriting

TEST_REWRITE_RULES = [  # rewrite_test.go TestRewrite, its name rules (the class and type rules are not clusterdns's)
    ["stop", "name", "from.nl.", "to.nl."],
    ["stop", "name", "regex", "(core)\\.(dns)\\.(rocks)\\.(nl)", "{2}.{1}.{3}.{4}", "answer", "name", "(dns)\\.(core)\\.(rocks)\\.(nl)", "{2}.{1}.{3}.{4}"],
    ["stop", "name", "exact", "from.exact.nl.", "to.nl."],
    ["stop", "name", "prefix", "prefix", "to"],
    ["stop", "name", "suffix", ".suffix.", ".nl."],
    ["stop", "name", "substring", "from.substring", "to"],
    ["stop", "name", "regex", "(f.*m)\\.regex\\.(nl)", "to.{2}"],
    ["continue", "name", "regex", "consul\\.(rocks)", "core.dns.{1}"],
    ["stop", "name", "core.dns.rocks", "to.nl."],
]
TEST_REWRITE = [  # (query, rewritten question or None when no rule matches)
    ("from.nl.", "to.nl."),
    ("a.nl.", None),
    ("from.exact.nl.", "to.nl."),
    ("prefix.nl.", "to.nl."),
    ("to.suffix.", "to.nl."),
    ("from.substring.nl.", "to.nl."),
    ("from.regex.nl.", "to.nl."),
    ("consul.rocks.", "to.nl."),  # continue, then stop
    ("core.dns.rocks.nl.", "dns.core.rocks.nl."),
]


@pytest.mark.parametrize(("query", "expected"), TEST_REWRITE)
def test_rewrite(query: str, expected: str | None) -> None:
    rewritten = rewriter(*TEST_REWRITE_RULES).rewrite(query)
    assert (rewritten.name if rewritten else None) == expected


PREFIX_SUFFIX = [  # name_test.go TestRewriteNamePrefixSuffix (NoRevertPolicy: the question as rewritten)
    (["prefix", "foo", "bar"], "foo.example.com.", "bar.example.com."),
    (["prefix", "foo.", "bar."], "foo.example.com.", "bar.example.com."),
    (["suffix", "com", "org"], "foo.example.com.", "foo.example.org."),
    (["suffix", ".com", ".org"], "foo.example.com.", "foo.example.org."),
]


@pytest.mark.parametrize(("args", "query", "expected"), PREFIX_SUFFIX)
def test_rewrite_name_prefix_suffix(args: list[str], query: str, expected: str) -> None:
    rewritten = rewriter(["stop", "name", *args]).rewrite(query)
    assert rewritten is not None and rewritten.name == expected


NO_REWRITE = [  # name_test.go TestRewriteNameNoRewrite: FROM gets a dot, so these never match
    (["prefix", "foo", "bar"], "coredns.foo."),
    (["prefix", "foo", "bar."], "coredns.foo."),
    (["suffix", "com", "org"], "com.coredns."),
    (["suffix", "com", "org."], "com.coredns."),
    (["substring", "service", "svc"], "com.coredns."),
]


@pytest.mark.parametrize(("args", "query"), NO_REWRITE)
def test_rewrite_name_no_rewrite(args: list[str], query: str) -> None:
    assert rewriter(["stop", "name", *args]).rewrite(query) is None


def test_rewrite_illegal_name() -> None:
    """name_test.go TestRewriteIllegalName: an invalid result is SERVFAIL, with CoreDNS's message for the log."""
    rewritten = rewriter(["stop", "name", "example.org.", "example..org."]).rewrite("example.org.")
    assert rewritten == Rewritten("example..org.", servfail=True)
    assert rewritten.error == "invalid name after rewrite: example..org."


@pytest.mark.parametrize(("rule", "query"), [
    (["name", "regex", "(.*)\\.example\\.org", "{1}." + "a" * 64], "x.example.org."),  # a label of 64 octets
    (["name", "regex", "(.*)example\\.org", "{1}.x"], "example.org."),  # empty first label: ".x."
    (["name", "prefix", "a", ("b" * 63 + ".") * 4], "a.org."),  # 4 * 64 + 4 + 1 octets
])
def test_names_that_do_not_fit_are_servfail(rule: list[str], query: str) -> None:
    rewritten = rewriter(rule).rewrite(query)
    assert rewritten is not None and rewritten.servfail and rewritten.rules == ()


@pytest.mark.parametrize(("name", "valid"), [
    (".", True), ("a.", True), ("a", True), ("", False), (".a.", False), ("a..b.", False), ("a" * 63 + ".", True), ("a" * 64 + ".", False),
    ("\\046" * 63 + ".", True), ("\\." * 64 + ".", False), (("b" * 63 + ".") * 3 + "c" * 61 + ".", True), (("b" * 63 + ".") * 3 + "c" * 62 + ".", False),
])
def test_valid_name(name: str, valid: bool) -> None:
    assert valid_name(name) is valid


def test_stop_and_continue() -> None:
    """rewrite.go ServeDNS: a stop rule stops only when it matches; continue lets later rules see the new name."""
    rw = rewriter(["stop", "name", "nomatch.", "x."], ["continue", "name", "prefix", "a", "b", "answer", "auto"], ["name", "suffix", "org", "net"], ["name", "b.com", "c.com"])
    rewritten = rw.rewrite("a.example.org.")
    assert rewritten is not None and rewritten.name == "b.example.net." and rewritten.restore
    assert [r.mapper for r in rewritten.rules] == [Remap("b.example.org.", "a.example.org."), Remap("b.example.org.", "a.example.org.")]


def test_continue_only_without_response_rules_keeps_the_rewritten_question() -> None:
    """§1.4's quirk (rewrite.go ServeDNS): matching continue rules alone, with no response rules, skip the reverter."""
    rw = rewriter(["continue", "name", "prefix", "a", "b"])
    rewritten = rw.rewrite("a.example.org.")
    assert rewritten == Rewritten("b.example.org.", (), restore=False)
    reply = backend("b.example.org.").to_wire()
    assert reverse(reply, question("a.example.org."), rewritten) == reply
    stopped = rewriter(["stop", "name", "prefix", "a", "b"]).rewrite("a.example.org.")
    assert stopped == Rewritten("b.example.org.", (), restore=True)
    assert dns.message.from_wire(reverse(reply, question("a.example.org."), stopped)).question[0].name.to_text() == "a.example.org."


def test_remap_string_rewriter() -> None:
    """name_test.go TestRemapStringRewriter."""
    remap = Remap("example.com.", "example.org.")
    rows = [("example.com.", "example.org."), ("sub.example.com.", "sub.example.org."), ("a.b.example.com.", "a.b.example.org."),
            ("notexample.com.", "notexample.com."), (".example.com.", ".example.org."), ("example.net.", "example.net."), ("com.", "com."), ("", "")]
    assert [(src, remap(src)) for src, _ in rows] == rows


# ---------------------------------------------------------------------------------------------
# replies


def test_rewrite_default_revert_policy() -> None:
    """rewrite_test.go TestRewriteDefaultRevertPolicy: the client's question comes back; without auto the owner stays rewritten."""
    rw = rewriter(["name", "prefix", "prefix", "to"], ["name", "suffix", ".suffix.", ".nl."], ["name", "substring", "from.substring", "to"], ["name", "regex", "(f.*m)\\.regex\\.(nl)", "to.{2}"])
    for query in ("prefix.nl.", "to.suffix.", "from.substring.nl.", "from.regex.nl."):
        _, reply = serve(rw, query)
        assert reply.question[0].name.to_text() == query
        assert owners(reply.answer) == ["to.nl."]


NO_AUTO_ANSWER = [  # name_test.go TestRewriteNamePrefixSuffixNoAutoAnswer: (args, query, answer owner the client sees)
    (["prefix", "foo", "bar"], "foo.example.com.", "bar.example.com."),
    (["prefix", "foo.", "bar."], "foo.example.com.", "bar.example.com."),
    (["suffix", "com", "org"], "foo.example.com.", "foo.example.org."),
    (["suffix", ".com", ".org"], "foo.example.com.", "foo.example.org."),
    (["suffix", ".ingress.coredns.rocks", "nginx.coredns.rocks"], "coredns.ingress.coredns.rocks.", "corednsnginx.coredns.rocks."),
]


@pytest.mark.parametrize(("args", "query", "owner"), NO_AUTO_ANSWER)
def test_rewrite_name_prefix_suffix_no_auto_answer(args: list[str], query: str, owner: str) -> None:
    _, reply = serve(rewriter(["stop", "name", *args]), query)
    assert reply.question[0].name.to_text() == query
    assert owners(reply.answer) == [owner]


ANSWER_TABLES = [  # (CoreDNS test, args, query, rewritten question, answer owner the client sees)
    ("TestRewriteNamePrefixSuffixAutoAnswer", ["prefix", "foo", "bar", "answer", "auto"], "foo.example.com.", "bar.example.com.", "foo.example.com."),
    ("TestRewriteNamePrefixSuffixAutoAnswer", ["prefix", "foo.", "bar.", "answer", "auto"], "foo.example.com.", "bar.example.com.", "foo.example.com."),
    ("TestRewriteNamePrefixSuffixAutoAnswer", ["suffix", "com", "org", "answer", "auto"], "foo.example.com.", "foo.example.org.", "foo.example.com."),
    ("TestRewriteNamePrefixSuffixAutoAnswer", ["suffix", ".com", ".org", "answer", "auto"], "foo.example.com.", "foo.example.org.", "foo.example.com."),
    ("TestRewriteNamePrefixSuffixAutoAnswer", ["suffix", ".ingress.coredns.rocks", "nginx.coredns.rocks", "answer", "auto"],
     "coredns.ingress.coredns.rocks.", "corednsnginx.coredns.rocks.", "coredns.ingress.coredns.rocks."),
    ("TestRewriteNameExactAnswer", ["exact", "coredns.rocks", "service.consul", "answer", "auto"], "coredns.rocks.", "service.consul.", "coredns.rocks."),
    ("TestRewriteNameExactAnswer", ["exact", "coredns.rocks.", "service.consul.", "answer", "auto"], "coredns.rocks.", "service.consul.", "coredns.rocks."),
    ("TestRewriteNameExactAnswer", ["exact", "coredns.rocks", "service.consul"], "coredns.rocks.", "service.consul.", "coredns.rocks."),  # exact is always auto
    ("TestRewriteNameExactAnswer", ["exact", "coredns.rocks.", "service.consul."], "coredns.rocks.", "service.consul.", "coredns.rocks."),
    ("TestRewriteNameRegexAnswer", ["regex", "(.*).coredns.rocks", "{1}.coredns.maps", "answer", "auto"], "foo.coredns.rocks.", "foo.coredns.maps.", "foo.coredns.rocks."),
    ("TestRewriteNameRegexAnswer", ["regex", "(.*).coredns.rocks", "{1}.coredns.maps", "answer", "name", "(.*).coredns.maps", "{1}.coredns.works"],
     "foo.coredns.rocks.", "foo.coredns.maps.", "foo.coredns.works."),
    ("TestRewriteNameRegexAnswer", ["regex", "(.*).coredns.rocks", "{1}.coredns.maps"], "foo.coredns.rocks.", "foo.coredns.maps.", "foo.coredns.maps."),
]


@pytest.mark.parametrize(("test", "args", "query", "rewritten_name", "owner"), ANSWER_TABLES)
def test_name_answer_tables(test: str, args: list[str], query: str, rewritten_name: str, owner: str) -> None:
    """name_test.go, the named test (NoRestorePolicy there: its question column is Rewritten.name here)."""
    rewritten, reply = serve(rewriter(["stop", "name", *args]), query)
    assert rewritten.name == rewritten_name
    assert owners(reply.answer) == [owner]
    assert reply.question[0].name.to_text() == query


def test_exact_answer_no_match() -> None:
    """name_test.go TestRewriteNameExactAnswer, last row: no match, nothing to map."""
    assert rewriter(["stop", "name", "exact", "coredns.org.", "service.consul."]).rewrite("coredns.rocks.") is None


RESPONSE_REVERTER = [  # reverter_test.go TestResponseReverter: (qtype, backend answer, answer the client sees)
    ("A", ["dns.core.rocks. 5 IN A 10.0.0.1"], ["core.dns.rocks. 5 IN A 10.0.0.1"]),
    ("SRV", ["dns.core.rocks. 5 IN SRV 0 100 100 srv1.dns.core.rocks."], ["core.dns.rocks. 5 IN SRV 0 100 100 srv1.dns.core.rocks."]),
    ("HINFO", ['core.dns.rocks. 5 IN HINFO INTEL-64 "RHEL 7.4"'], ['core.dns.rocks. 5 IN HINFO "INTEL-64" "RHEL 7.4"']),
    ("A", ["dns.core.rocks. 5 IN A 10.0.0.1", "dns.core.rocks. 5 IN A 10.0.0.2"], ["core.dns.rocks. 5 IN A 10.0.0.1", "core.dns.rocks. 5 IN A 10.0.0.2"]),
]


@pytest.mark.parametrize("mode", ["stop", "continue"])
@pytest.mark.parametrize(("qtype", "answer", "seen"), RESPONSE_REVERTER)
def test_response_reverter(mode: str, qtype: str, answer: list[str], seen: list[str]) -> None:
    rw = rewriter([mode, "name", "regex", "(core)\\.(dns)\\.(rocks)", "{2}.{1}.{3}", "answer", "name", "(dns)\\.(core)\\.(rocks)", "{2}.{1}.{3}"])
    rewritten, reply = serve(rw, "core.dns.rocks.", qtype, answer=answer)
    assert rewritten.name == "dns.core.rocks." and rewritten.restore  # the noRevert rows' question
    assert (reply.question[0].name.to_text(), dns.rdatatype.to_text(reply.question[0].rdtype)) == ("core.dns.rocks.", qtype)
    assert [rrset.to_text() for rrset in reply.answer] == seen


VALUE_RULES = {  # reverter_test.go TestValueResponseReverter, its four rule sets
    "stop": [["stop", "name", "regex", "(.*)\\.domain\\.uk", "{1}.cluster.local", "answer", "name", "(.*)\\.cluster\\.local", "{1}.domain.uk",
              "answer", "value", "(.*)\\.cluster\\.local", "{1}.domain.uk"]],
    "continue": [["continue", "name", "regex", "(.*)\\.domain\\.uk", "{1}.cluster.local", "answer", "name", "(.*)\\.cluster\\.local", "{1}.domain.uk",
                  "answer", "value", "(.*)\\.cluster\\.local", "{1}.domain.uk"]],
    "suffix": [["stop", "name", "suffix", ".domain.uk", ".cluster.local", "answer", "auto", "answer", "value", "(.*)\\.cluster\\.local", "{1}.domain.uk"]],
    "suffix_multiple": [["continue", "name", "suffix", ".domain.uk", ".domain.us", "answer", "auto"], ["stop", "name", "suffix", ".domain.us", ".cluster.local", "answer", "auto"]],
}
VALUE_TESTS = [  # (qtype, backend answer, backend extra, value the client sees, extra owner the client sees)
    ("SRV", "my.cluster.local. 5 IN SRV 0 100 100 srv1.my.cluster.local.", "srv1.my.cluster.local. 5 IN A 10.0.0.1", "srv1.my.domain.uk.", "srv1.my.domain.uk."),
    ("ANY", "my.cluster.local. 3600 IN CNAME cname.cluster.local.", "cname.cluster.local. 5 IN A 10.0.0.1", "cname.domain.uk.", "cname.domain.uk."),
    ("ANY", "my.cluster.local. 3600 IN DNAME dname.cluster.local.", "dname.cluster.local. 5 IN A 10.0.0.1", "dname.domain.uk.", "dname.domain.uk."),
    ("MX", "my.cluster.local. 3600 IN MX 1 mx1.cluster.local.", "mx1.cluster.local. 5 IN A 10.0.0.1", "mx1.domain.uk.", "mx1.domain.uk."),
    ("ANY", "my.cluster.local. 3600 IN NS ns1.cluster.local.", "ns1.cluster.local. 5 IN A 10.0.0.1", "ns1.domain.uk.", "ns1.domain.uk."),
    ("SOA", "my.cluster.local. 1800 IN SOA ns1.cluster.local. admin.cluster.local. 1502165581 14400 3600 604800 14400",
     "ns1.cluster.local. 5 IN A 10.0.0.1", "ns1.domain.uk.", "ns1.domain.uk."),
    ("NAPTR", 'my.cluster.local. 100 IN NAPTR 100 10 "S" "SIP+D2U" "!^.*$!sip:customer-service@example.com!" _sip._udp.cluster.local.',
     "ns1.cluster.local. 5 IN A 10.0.0.1", "_sip._udp.domain.uk.", "ns1.domain.uk."),
]
VALUE_FIELD = {"SRV": "target", "CNAME": "target", "DNAME": "target", "MX": "exchange", "NS": "target", "SOA": "mname", "NAPTR": "replacement"}


@pytest.mark.parametrize("rules", sorted(VALUE_RULES))
@pytest.mark.parametrize(("qtype", "answer", "extra", "value", "extra_owner"), VALUE_TESTS)
def test_value_response_reverter(rules: str, qtype: str, answer: str, extra: str, value: str, extra_owner: str) -> None:
    rewritten, reply = serve(rewriter(*VALUE_RULES[rules]), "my.domain.uk.", qtype, answer=[answer], extra=[extra])
    assert rewritten.name == "my.cluster.local."  # the noRevert rows' question
    assert (reply.question[0].name.to_text(), dns.rdatatype.to_text(reply.question[0].rdtype)) == ("my.domain.uk.", qtype)
    got = reply.answer[0]
    assert getattr(got[0], VALUE_FIELD[dns.rdatatype.to_text(got.rdtype)]).to_text() == value
    assert owners(reply.answer) == ["my.domain.uk."]
    assert owners(reply.additional) == [extra_owner]
    if got.rdtype == dns.rdatatype.SOA:
        assert got[0].rname.to_text() == "admin.cluster.local."  # only the MNAME is a value (reverter.go)


def test_response_reverter_restores_missing_question() -> None:
    """reverter_test.go TestResponseReverterRestoresMissingQuestion."""
    rw = rewriter(["stop", "name", "suffix", ".example.org", ".example.net", "answer", "auto"])
    rewritten = rw.rewrite("service.example.org.")
    assert rewritten is not None
    bare = dns.message.Message(id=7)
    bare.flags = dns.flags.QR
    bare.answer.append(rr("service.example.net. 60 IN A 127.0.0.1"))
    reply = dns.message.from_wire(reverse(bare.to_wire(), question("service.example.org."), rewritten))
    assert [(q.name.to_text(), q.rdtype) for q in reply.question] == [("service.example.org.", dns.rdatatype.A)]
    assert owners(reply.answer) == ["service.example.org."]


def test_rewrite_failure() -> None:
    """test/rewrite_test.go TestRewriteFailure: a backend SERVFAIL goes out with the client's question."""
    rw = rewriter(["name", "regex", "(.*)\\.test\\.$", "{1}.", "answer", "auto"])
    rewritten = rw.rewrite("example.test.")
    assert rewritten is not None and rewritten.name == "example."
    failed = dns.message.make_response(dns.message.make_query("example.", "MX"))
    failed.set_rcode(dns.rcode.SERVFAIL)
    reply = dns.message.from_wire(reverse(failed.to_wire(), question("example.test.", "MX"), rewritten))
    assert (reply.question[0].name.to_text(), reply.question[0].rdtype, reply.rcode()) == ("example.test.", dns.rdatatype.MX, dns.rcode.SERVFAIL)


def test_header_edns_order_and_case_are_kept() -> None:
    """The reply's ID, flags, rcode (extended too), OPT and record order survive; the question is the client's, case and class included."""
    rw = rewriter(["name", "exact", "svc.example.", "svc.default.svc.cluster.local."])
    rewritten = rw.rewrite("svc.example.")
    assert rewritten is not None
    reply = backend("svc.default.svc.cluster.local.", "A", answer=[
        "svc.default.svc.cluster.local. 5 IN CNAME other.default.svc.cluster.local.",
        "other.default.svc.cluster.local. 5 IN A 10.0.0.1",
        "other.default.svc.cluster.local. 5 IN A 10.0.0.1",
        "other.default.svc.cluster.local. 5 IN A 10.0.0.2",
    ])
    reply.id = 4242
    reply.flags |= dns.flags.AA | dns.flags.TC | dns.flags.RD | dns.flags.RA | dns.flags.CD
    reply.use_edns(0, dns.flags.DO, 1232, options=[dns.edns.GenericOption(65001, b"kept")])
    reply.set_rcode(dns.rcode.BADVERS)
    out = parse(reverse(reply.to_wire(), question("Svc.EXAMPLE.", "A", "CH"), rewritten))
    assert out.id == 4242
    assert out.flags == reply.flags and out.rcode() == dns.rcode.BADVERS
    assert (out.edns, out.payload, out.ednsflags & dns.flags.DO, out.options) == (0, 1232, dns.flags.DO, reply.options)
    assert (out.question[0].name.to_text(), out.question[0].rdclass) == ("Svc.EXAMPLE.", dns.rdataclass.CH)
    assert [rrset.to_text().lower() for rrset in out.answer] == [
        "svc.example. 5 in cname other.default.svc.cluster.local.",  # exact is auto: only the rewritten name maps back
        "other.default.svc.cluster.local. 5 in a 10.0.0.1",
        "other.default.svc.cluster.local. 5 in a 10.0.0.1",
        "other.default.svc.cluster.local. 5 in a 10.0.0.2",
    ]


def test_authority_and_value_names_map_back() -> None:
    """Auto maps owners and values in every section (reverter.go: Ns, Answer, Extra); suffix's plain string match misses the apex."""
    rw = rewriter(["name", "suffix", ".example.", ".default.svc.cluster.local.", "answer", "auto"])
    _, reply = serve(rw, "10.1.example.", "PTR", answer=["10.1.default.svc.cluster.local. 5 IN PTR pod.default.svc.cluster.local."],
                     ns=["default.svc.cluster.local. 5 IN SOA ns.dns.default.svc.cluster.local. hostmaster.default.svc.cluster.local. 1 2 3 4 5"])
    assert [rrset.to_text() for rrset in reply.answer] == ["10.1.example. 5 IN PTR pod.example."]
    assert [rrset.to_text() for rrset in reply.authority] == ["default.svc.cluster.local. 5 IN SOA ns.dns.example. hostmaster.default.svc.cluster.local. 1 2 3 4 5"]


def test_a_mapped_name_that_is_not_a_name_raises() -> None:
    rw = rewriter(["name", "regex", "(.*)\\.example\\.", "{1}.internal", "answer", "name", "(.*)\\.internal", "{1}..bad"])
    rewritten = rw.rewrite("a.example.")
    assert rewritten is not None
    with pytest.raises(dns.exception.DNSException):
        reverse(backend("a.internal.").to_wire(), question("a.example."), rewritten)


def test_a_reply_that_does_not_parse_raises() -> None:
    rewritten = rewriter(["name", "a.example.", "b.example."]).rewrite("a.example.")
    assert rewritten is not None
    with pytest.raises(dns.exception.DNSException):
        reverse(backend("b.example.").to_wire()[:20], question("a.example."), rewritten)
