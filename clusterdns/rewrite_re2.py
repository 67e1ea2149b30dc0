"""Go RE2 patterns for `rewrite` rules, checked and translated for Python's `re`."""

# CoreDNS compiles rewrite patterns with Go's regexp (RE2 syntax, plugin/rewrite/name.go
# isValidRegexPattern). Python's `re` takes a superset of most of it, so this module walks a
# pattern once and (1) rejects what RE2 lacks (backreferences, lookaround, atomic groups,
# possessive quantifiers, conditionals) rather than silently matching differently, (2) rewrites
# what RE2 spells differently (`\z`, `\Q...\E`, octal and `\x{...}` escapes, POSIX classes,
# `(?<name>`, flags in mid-pattern, `{,n}` as a literal), and (3) rejects the few RE2 features
# Python has no equivalent for (`\pL` Unicode classes, the `U` flag). The result is compiled
# with re.ASCII, since RE2's `\d`, `\w`, `\s` and `\b` are ASCII-only. One difference is left:
# Python's `$` also matches before a final newline; a DNS name in text form never holds one.

from __future__ import annotations

import re
import warnings

MAX_LEN = 10000  # maxRegexpLen in plugin/rewrite/name.go, in bytes
MAX_REPEAT = 1000  # Go regexp/syntax rejects a {n,m} count above 1000
_POSIX = {  # RE2's [[:name:]] classes (ASCII)
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_LACKS = {  # group openers Python knows and RE2 does not
    "(?=": "lookahead", "(?!": "negative lookahead", "(?<=": "lookbehind", "(?<!": "negative lookbehind",
    "(?>": "an atomic group", "(?#": "a comment", "(?(": "a conditional", "(?P=": "a backreference", "(?P>": "recursion",
}
_NAMED = re.compile(r"\(\?P?<(\w+)>", re.ASCII)
_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]+)?)([:)])")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]*):\]")


class RE2Error(ValueError):
    """A pattern Go's regexp would reject, or one clusterdns cannot match the same way."""


def compile_re2(pattern: str) -> re.Pattern[str]:
    """The Python pattern that matches what Go's regexp.Compile(pattern) matches; raises RE2Error."""
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:
        raise RE2Error("invalid UTF-8") from None  # Go rejects a pattern that is not UTF-8
    text = _Translator(pattern).run()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible set difference": RE2 reads `--` literally too
            return re.compile(text, re.ASCII)
    except re.error as err:
        raise RE2Error(err.msg) from None


class _Translator:
    """One left-to-right pass; `scopes` holds, per open group, the flag groups opened inside it."""

    def __init__(self, src: str) -> None:
        self.src, self.i, self.out = src, 0, []
        self.scopes: list[list[str]] = [[]]
        self.names: set[str] = set()

    def run(self) -> str:
        while self.i < len(self.src):
            self.step(self.src[self.i])
        self.out.append(")" * len(self.scopes[0]))
        return "".join(self.out)

    def step(self, c: str) -> None:
        if c == "\\":
            self.escape(in_class=False)
        elif c == "[":
            self.char_class()
        elif c == "(":
            self.group()
        elif c == ")":
            opened = self.scopes.pop() if len(self.scopes) > 1 else []  # an unbalanced `)` is left to re
            self.emit(")" * len(opened) + ")", 1)
        elif c == "|":  # RE2 keeps a mid-group flag across `|`, so close and reopen its scope
            opened = self.scopes[-1]
            self.emit(")" * len(opened) + "|" + "".join(opened), 1)
        elif c in "*+?":
            self.emit(c, 1)
            self.after_quantifier()
        elif c == "{":
            self.brace()
        else:
            self.emit(c, 1)

    def emit(self, text: str, consumed: int) -> None:
        self.out.append(text)
        self.i += consumed

    def after_quantifier(self) -> None:
        if self.src.startswith("?", self.i):  # lazy, in both
            self.emit("?", 1)
        if self.i < len(self.src) and self.src[self.i] in "*+?":
            raise RE2Error(f"invalid nested repetition operator at offset {self.i} (RE2 has no possessive quantifiers)")

    def brace(self) -> None:
        found = _REPEAT.match(self.src, self.i)
        if not found:  # RE2 reads a `{` that starts no repeat, `{,n}` included, as a literal
            self.emit("\\{", 1)
            return
        low, high = int(found[1]), int(found[3]) if found[3] else int(found[1])
        if low > MAX_REPEAT or high > MAX_REPEAT:
            raise RE2Error(f"invalid repeat count {found[0]} (RE2 allows at most {MAX_REPEAT})")
        self.emit(found[0], len(found[0]))
        self.after_quantifier()

    def group(self) -> None:
        rest = self.src[self.i : self.i + 5]
        if not rest.startswith("(?"):
            self.scopes.append([])
            self.emit("(", 1)
            return
        for opener, what in _LACKS.items():
            if rest.startswith(opener):
                raise RE2Error(f"{opener}...) ({what}) is not RE2 syntax")
        if named := _NAMED.match(self.src, self.i):  # names never matter to a rule: keep the group, drop the name
            if named[1] in self.names:
                raise RE2Error(f"duplicate capture group name {named[1]}")
            self.names.add(named[1])
            self.scopes.append([])
            self.emit("(", len(named[0]))
        elif (flags := _FLAGS.match(self.src, self.i)) and (flags[1] or flags[2] == ":"):
            self.flag_group(flags[1], flags[2], len(flags[0]))  # `(?:` too: a group with no flags
        elif rest.startswith(("(?P<", "(?<")):
            raise RE2Error("invalid named capture")
        else:
            raise RE2Error(f"invalid or unsupported Perl syntax at offset {self.i}")

    def flag_group(self, flags: str, end: str, consumed: int) -> None:
        if "U" in flags:
            raise RE2Error("the U (ungreedy) flag is not supported by clusterdns")
        opener = f"(?{flags}:"
        if end == ":":
            self.scopes.append([])
        else:  # `(?i)`: from here to the end of the enclosing group, as a scoped group Python accepts anywhere
            self.scopes[-1].append(opener)
        self.emit(opener, consumed)

    def char_class(self) -> None:
        self.emit("[", 1)
        if self.src.startswith("^", self.i):
            self.emit("^", 1)
        first = True
        while True:
            if self.i >= len(self.src):
                raise RE2Error("missing closing ]")
            c = self.src[self.i]
            if c == "]" and not first:
                self.emit("]", 1)
                return
            first = False
            if c == "\\":
                self.escape(in_class=True)
            elif posix := _POSIX_CLASS.match(self.src, self.i):
                self.posix(posix)
            else:  # `[`, `&`, `~`, `|` and a leading `]` are literals in RE2; Python may read them as set syntax
                self.emit("\\" + c if c in "[&~|]" else c, 1)

    def posix(self, found: re.Match[str]) -> None:
        if found[2] not in _POSIX:
            raise RE2Error(f"invalid character class range {found[0]}")
        if found[1]:
            raise RE2Error(f"negated POSIX classes ({found[0]}) are not supported by clusterdns")
        self.emit(_POSIX[found[2]], len(found[0]))

    def escape(self, in_class: bool) -> None:
        if self.i + 1 >= len(self.src):
            raise RE2Error("trailing backslash at end of expression")
        c = self.src[self.i + 1]
        if c in "01234567" and (c == "0" or self.src[self.i + 2 : self.i + 3] in tuple("01234567")):
            digits = re.match(r"[0-7]{1,3}", self.src[self.i + 1 :])[0]  # RE2 octal; Python would read \12 as a group
            self.emit(f"\\u{int(digits, 8):04x}", 1 + len(digits))
        elif c in "123456789":
            raise RE2Error(f"\\{c} (a backreference) is not RE2 syntax")
        elif c == "x":
            self.hex_escape()
        elif c == "Q" and not in_class:
            end = self.src.find("\\E", self.i + 2)  # quoted to \E, or to the end
            stop = len(self.src) if end < 0 else end + 2
            self.emit(re.escape(self.src[self.i + 2 : end if end >= 0 else stop]), stop - self.i)
        elif c == "z" and not in_class:
            self.emit("\\Z", 2)  # end of text: Go's \z is Python's \Z
        elif c in "pP":
            raise RE2Error(f"Unicode classes (\\{c}) are not supported by clusterdns")
        elif c in "afnrtvdDsSwW" or (c in "bBA" and not in_class) or (c < "\x80" and not c.isalnum()):
            self.emit("\\" + c, 2)
        else:
            raise RE2Error(f"invalid escape sequence \\{c}")

    def hex_escape(self) -> None:
        found = re.compile(r"\\x(?:\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2}))").match(self.src, self.i)
        if not found or int(found[1] or found[2], 16) > 0x10FFFF:
            raise RE2Error("invalid escape sequence \\x")
        self.emit(f"\\U{int(found[1] or found[2], 16):08x}", len(found[0]))
