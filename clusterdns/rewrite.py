"""CoreDNS's `rewrite name` rules: parse them, rewrite a question name, and say how to map the reply back."""

# Sources: CoreDNS plugin/rewrite/rewrite.go (newRule, ServeDNS), name.go (the name rules and
# their answer rules), reverter.go (what the reply gets). clusterdns/serve/rewriting.py applies
# the response rules to a reply; this module is pure string work on names in text form.

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from clusterdns.errors import ConfigError
from clusterdns.rewrite_re2 import MAX_LEN, RE2Error, compile_re2

STOP, CONTINUE = "stop", "continue"
RULE_TYPES = ("name", "class", "type", "edns0", "ttl", "cname", "rcode")  # the switch in rewrite.go newRule
OWNER, VALUE = "owner", "value"  # what a response rule rewrites: the RR's owner, or the name in its rdata
MAX_LABEL, MAX_NAME = 63, 255  # octets (RFC 1035 2.3.4)
_DDD = re.compile(r"[0-9]{3}")


class _Invalid(Exception):
    """A rule CoreDNS's setup would refuse; the message is CoreDNS's, without the plugin prefix."""


@dataclass(frozen=True)
class RegexMap:
    """`answer name|value FROM TO`: if FROM matches anywhere, the whole name becomes TO, {i} filled (name.go regexStringRewriter)."""

    pattern: re.Pattern[str]
    template: str

    def __call__(self, src: str) -> str:
        found = self.pattern.search(src)
        return src if found is None else fill(self.template, found)


@dataclass(frozen=True)
class Remap:
    """`answer auto`: the rewritten name, or a name under it, goes back to the name before the rewrite (name.go remapStringRewriter)."""

    orig: str
    replacement: str

    def __call__(self, src: str) -> str:
        if src == self.orig:
            return self.replacement
        cut = len(src) - len(self.orig)  # a subdomain: orig ends src, right after a dot
        if cut > 0 and src[cut - 1] == "." and src[cut:] == self.orig:
            return src[:cut] + self.replacement
        return src


@dataclass(frozen=True)
class SuffixMap:
    """`suffix ... answer auto`: a plain string suffix swapped back, with no label boundary check (name.go suffixStringRewriter)."""

    suffix: str
    replacement: str

    def __call__(self, src: str) -> str:
        return src[: len(src) - len(self.suffix)] + self.replacement if src.endswith(self.suffix) else src


@dataclass(frozen=True)
class ResponseRule:
    """One reply mapping: `field` is OWNER (the RR's name) or VALUE (SRV/MX/CNAME/NS/DNAME/NAPTR/SOA/PTR name, reverter.go)."""

    field: str
    mapper: RegexMap | Remap | SuffixMap


@dataclass(frozen=True)
class Rule:
    """One `rewrite [stop|continue] name ...` directive.

    `source`/`target` are FROM/TO as CoreDNS keeps them: lower case with a trailing dot, except a
    regex FROM, which stays as written (`pattern` is its compiled form) and whose TO is the `{i}`
    template. `auto` means "build a Remap per query": always for exact, with `answer auto` for
    prefix, substring and regex. suffix + `answer auto` puts two fixed SuffixMaps at the head of
    `answers` instead (name.go newSuffixNameRule). `answers` keeps the written order.
    """

    text: str
    mode: str
    match: str
    source: str
    target: str
    auto: bool = False
    answers: tuple[ResponseRule, ...] = ()
    pattern: re.Pattern[str] | None = None

    def __str__(self) -> str:
        return f"rewrite {self.text}"

    def apply(self, name: str) -> str | None:
        """The new name if this rule matches `name` (lower case, with its dot), else None (name.go, each Rewrite method)."""
        if self.match == "exact":
            return self.target if name == self.source else None
        if self.match == "prefix":
            return self.target + name[len(self.source) :] if name.startswith(self.source) else None
        if self.match == "suffix":
            return name[: len(name) - len(self.source)] + self.target if name.endswith(self.source) else None
        if self.match == "substring":
            return name.replace(self.source, self.target) if self.source in name else None
        found = self.pattern.search(name) if self.pattern else None  # unanchored; text outside the match is dropped
        return None if found is None else fill(self.target, found)

    def response_rules(self, before: str, after: str) -> tuple[ResponseRule, ...]:
        """name.go responseRuleFor: with auto, owner and value maps from `after` back to `before` (the name this rule saw), then `answers`."""
        if not self.auto:
            return self.answers
        remap = Remap(after, before)
        return (ResponseRule(OWNER, remap), ResponseRule(VALUE, remap), *self.answers)


@dataclass(frozen=True)
class Rewritten:
    """What the rules did to one question.

    `name`: the question name to resolve instead. `rules`: the response rules in the order CoreDNS
    collects them (reverse() applies them last to first). `restore`: the reply must get the client's
    question back; False only when every matching rule was `continue` and none produced response
    rules (rewrite.go ServeDNS: then the reply goes out with the rewritten question). `servfail`:
    `name` is not a valid domain name; answer SERVFAIL with the original question and log `error`.
    """

    name: str
    rules: tuple[ResponseRule, ...] = ()
    restore: bool = True
    servfail: bool = False

    @property
    def error(self) -> str:
        return f"invalid name after rewrite: {self.name}" if self.servfail else ""


class Rewriter:
    """A server block's `rewrite` rules, in config order (all its `rewrite` lines make one plugin instance)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    def rewrite(self, qname: str) -> Rewritten | None:
        """Run the rules over `qname` (lower case, trailing dot); None when none matched (rewrite.go ServeDNS)."""
        name, collected, matched = qname.lower(), [], False
        for rule in self.rules:
            new = rule.apply(name)
            if new is None:  # a stop rule stops only when it matches
                continue
            if not valid_name(new):
                return Rewritten(new, servfail=True)
            collected.extend(rule.response_rules(name, new))
            name, matched = new, True
            if rule.mode == STOP:
                return Rewritten(name, tuple(collected))
        if not matched:
            return None
        return Rewritten(name, tuple(collected), restore=bool(collected))


def parse_rule(args: Sequence[str]) -> Rule:
    """The words after `rewrite` on one directive (a block's words appended flat); raises ConfigError."""
    try:
        return _parse(list(args))
    except _Invalid as err:
        raise ConfigError(f"rewrite: {err}") from None


def _parse(words: list[str]) -> Rule:
    if not words:
        raise _Invalid("no rule type specified for rewrite")
    mode, rest = STOP, words  # no stop/continue word: the mode is stop (rewrite.go newRule)
    if words[0].lower() in (STOP, CONTINUE):
        mode = words[0].lower()
        if len(words) < 2:
            raise _Invalid(f"{mode} rule must begin with a rule type")
        rest = words[1:]
    kind = rest[0].lower()
    if kind == "answer":
        raise _Invalid("response rewrites must begin with a name rule")
    if kind not in RULE_TYPES:
        raise _Invalid(f'invalid rule type "{words[0]}"')  # CoreDNS names args[0], even when that is the mode
    if kind != "name":
        raise _Invalid(f"{kind} rules are not supported: clusterdns supports only name rules")
    return _name_rule(" ".join(words), mode, rest[1:])


def _name_rule(text: str, mode: str, args: list[str]) -> Rule:
    """name.go newNameRule: `FROM TO` is exact; with 3+ words the first is the match type and words 4+ are answer options."""
    if len(args) < 2:
        raise _Invalid("too few arguments for a name rule")
    match, source, target = ("exact", args[0], args[1]) if len(args) == 2 else (args[0].lower(), args[1], args[2])
    if match != "regex":
        source, target = normalize(source), normalize(target)
    auto, answers = _answer_rules(match, args[3:]) if len(args) > 3 else (False, ())
    if match == "exact":
        _checked_regex(target, source)  # name.go's quirk: TO is compiled as the pattern, FROM counted as its template
        return Rule(text, mode, match, source, target, True, answers)
    if match == "suffix" and auto:
        back = SuffixMap(target, source)
        return Rule(text, mode, match, source, target, False, (ResponseRule(OWNER, back), ResponseRule(VALUE, back), *answers))
    if match in ("prefix", "suffix", "substring"):
        return Rule(text, mode, match, source, target, auto, answers)
    if match == "regex":
        return Rule(text, mode, match, source, normalize(target), auto, answers, _checked_regex(source, target))
    raise _Invalid(f"name rule supports only exact, prefix, suffix, substring, and regex name matching, received: {match}")


def _answer_rules(kind: str, args: list[str]) -> tuple[bool, tuple[ResponseRule, ...]]:
    """name.go parseAnswerRules: `answer auto`, `answer name FROM TO`, `answer value FROM TO`; `answer` is optional after the first."""
    if len(args) < 2:
        raise _Invalid(f"invalid arguments for {kind} rule")
    auto, rules, names, i, last = False, [], 0, 0, ""
    while i < len(args):
        if not last and args[i] != "answer":
            raise _Invalid(f"exceeded the number of arguments for a non-answer rule argument for {kind} rule")
        i += args[i] == "answer"
        if i == len(args):
            raise _Invalid(f"type missing for answer rule for {kind} rule")
        last, i = args[i], i + 1
        if last == "auto":
            auto = True
            continue
        if last not in ("name", "value"):
            raise _Invalid(f'invalid type "{last}" for answer rule for {kind} rule')
        if len(args) - i < 2:
            raise _Invalid(f"{last} answer rule for {kind} rule: 2 arguments required")
        try:
            pattern = _checked_regex(args[i], args[i + 1])
        except _Invalid as err:
            raise _Invalid(f"{last} answer rule for {kind} rule: {err}") from None
        rules.append(ResponseRule(OWNER if last == "name" else VALUE, RegexMap(pattern, normalize(args[i + 1]))))
        names, i = names + (last == "name"), i + 2
    if auto and names:
        raise _Invalid("auto name answer rule cannot be combined with explicit name anwer rules")  # sic, name.go
    return auto, tuple(rules)


def _checked_regex(pattern: str, template: str) -> re.Pattern[str]:
    """name.go isValidRegexPattern: a length cap, a pattern that compiles, and no more {i} placeholders than groups."""
    size = len(pattern.encode("utf-8", "surrogatepass"))
    if size > MAX_LEN:
        raise _Invalid(f"regex pattern too long: {size} > {MAX_LEN}")
    try:
        compiled = compile_re2(pattern)
    except RE2Error as err:
        raise _Invalid(f"invalid regex matching pattern: {pattern} ({err})") from None
    if sum(f"{{{i}}}" in template for i in range(101)) > compiled.groups:  # distinct {0}..{100}; {0} counts too
        raise _Invalid(f"the rewrite regex pattern ({template}) uses more subexpressions than its corresponding matching regex pattern ({pattern})")
    return compiled


def fill(template: str, found: re.Match[str]) -> str:
    """Replace {0}, {1}, ... in turn (a group that did not take part is ""); as in name.go, group text is itself open to later replacements."""
    for index in range(found.re.groups + 1):
        template = template.replace(f"{{{index}}}", found.group(index) or "")
    return template


def normalize(name: str) -> str:
    """plugin.Name(x).Normalize(): lower case, and a trailing dot unless one is there unescaped (plugin/normalize.go, dns.Fqdn)."""
    body = name[:-1]
    fqdn = name.endswith(".") and (len(body) - len(body.rstrip("\\"))) % 2 == 0
    return (name if fqdn else name + ".").lower()


def valid_name(name: str) -> bool:
    """dns.IsDomainName as rewrite.go uses it: no empty label but the root, labels <= 63 octets, <= 255 octets on the wire."""
    if name == ".":
        return True
    total, label = 1, 0  # total starts with the root's zero octet
    for octets in _octets(normalize(name)):
        if octets:
            label += octets
        elif label == 0 or label > MAX_LABEL:
            return False
        else:
            total, label = total + 1 + label, 0
    return label == 0 and total <= MAX_NAME


def _octets(name: str) -> Iterator[int]:
    """The wire octets of each character of a name in text form (an escape, \\DDD or \\X, is one); 0 for a label-ending dot."""
    i = 0
    while i < len(name):
        if name[i] == "\\":
            yield 1
            i += 4 if _DDD.fullmatch(name, i + 1, i + 4) else 2
        else:
            yield 0 if name[i] == "." else len(name[i].encode("utf-8", "replace"))
            i += 1
