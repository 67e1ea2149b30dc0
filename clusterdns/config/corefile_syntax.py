"""The Corefile's syntax as CoreDNS reads it (coredns/caddy's lexer and parser), and Go durations.

Words, `"quoted"` words, `#` comments, `{ }` blocks and `{$VAR}` per word; `import` and
`(snippet) { }` are spliced in while parsing, by corefile_import.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clusterdns.config.addresses import normalize_zone
from clusterdns.config.corefile_import import Importer, same_line
from clusterdns.errors import ConfigError, shown


@dataclass(frozen=True)
class Token:
    """One word and where it came from: the main Corefile's path as given, or an imported file's
    absolute path (caddy's Token.File), so every message names the file that holds the word."""

    text: str
    line: int
    end_line: int  # a quoted word may span lines
    quoted: bool = False
    path: str = "Corefile"

    def brace(self, which: str) -> bool:
        return not self.quoted and self.text == which


@dataclass
class Directive:
    """One directive (or option inside a block): `name args... [{ entries }]`; `path` is the file
    of its name (an imported file, or the Corefile)."""

    name: str
    args: list[str]
    line: int
    block: list[Directive] | None = None
    path: str = "Corefile"


@dataclass
class ServerBlock:
    """A server block's keys and directives; `path` and `line` are where its first key is."""

    keys: list[str]
    line: int
    entries: list[Directive]
    path: str = "Corefile"


def tokenize(text: str, path: str) -> list[Token]:
    """coredns/caddy's lexer: `#` starts a comment at the start of a word, `"` quotes (only `\\"`
    is an escape inside), everything else is split on whitespace; `{` and `}` are braces only
    as words of their own. A leading byte order mark is dropped (caddyfile/lexer.go `load`)."""
    tokens: list[Token] = []
    i, n, line = (1 if text.startswith("\ufeff") else 0), len(text), 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == '"':
            start, buf = line, []
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(f"{path}:{start}: unterminated quoted string")
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                i += 1
                if c == '"':
                    break
                if c == "\n":
                    line += 1
                buf.append(c)
            tokens.append(Token("".join(buf), start, line, quoted=True, path=path))
        else:
            start_i = i
            while i < n and not text[i].isspace():
                i += 1
            tokens.append(Token(text[start_i:i], line, line, path=path))
    return tokens


_ENV = re.compile(r"\{\$([^{}:]+)(?::([^{}]*))?\}")


class _Parser:
    """caddyfile/parse.go's parser over one token list that `import` splices into as it goes."""

    def __init__(self, text: str, path: str, environ: Mapping[str, str], warnings: list[str]) -> None:
        self.environ = environ
        self.warnings = warnings
        self.tokens = tokenize(text, path)
        self.pos = 0
        self.imports = Importer(tokenize, self.subst, warnings)

    def error(self, at: Token, message: str) -> ConfigError:
        return ConfigError(f"{at.path}:{at.line}: {message}")

    def subst(self, token: Token, quiet: bool = False) -> str:
        """`{$VAR}` and `{$VAR:default}` (the default when VAR is unset or empty), in one word;
        `quiet` only peeks (no warning for an unset VAR)."""

        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = self.environ.get(name)
            if not value and default is not None:
                return default
            if value is None:
                if not quiet:
                    self.warnings.append(f"{token.path}:{token.line}: environment variable {name} is not set; {{${name}}} is empty")
                return ""
            return value

        return _ENV.sub(one, token.text)

    def words(self, tokens: list[Token]) -> list[str]:
        """Substituted words; an unquoted word that became empty is dropped (an unset `{$EXTRA}`)."""
        out = []
        for t in tokens:
            text = self.subst(t)
            if text or t.quoted:
                out.append(text)
        return out

    def starts_line(self) -> bool:
        """The current token is the first of its line (or of its file)."""
        return self.pos == 0 or not same_line(self.tokens[self.pos - 1], self.tokens[self.pos])

    def parse(self) -> list[ServerBlock]:
        blocks = []
        while self.pos < len(self.tokens):
            keys = self.keys()
            if not keys:
                continue  # a top-level import that brought nothing
            names = [k.rstrip(",") for k in self.words(keys)]
            names = [k for k in names if k]
            if not names:
                raise self.error(keys[0], "a server block needs a zone, like `cluster.local:53`")
            # parse.go `isSnippet`: exactly one key, `(name)`; at the very end of the input it is
            # a (keys-only) server block instead, as caddy's parser stops before the check.
            if len(names) == 1 and names[0].startswith("(") and names[0].endswith(")") and self.pos < len(self.tokens):
                self.pos = self.imports.define(names[0][1:-1], self.tokens, self.pos)
                continue
            if self.pos < len(self.tokens) and self.tokens[self.pos].brace("{"):
                opening = self.tokens[self.pos]
                self.pos += 1
                entries = self.entries(opening, inside=False)
            else:  # a single server block may go without braces (coredns/caddy)
                entries = self.entries(None, inside=False)
            blocks.append(ServerBlock(names, keys[0].line, entries, keys[0].path))
        return blocks

    def keys(self) -> list[Token]:
        """A server block's keys: up to its `{`, or the end of their line unless the last ends in
        `,` (parse.go `addresses`). `import` starting a line here splices in server blocks."""
        keys: list[Token] = []
        while self.pos < len(self.tokens):
            t = self.tokens[self.pos]
            if keys and not same_line(keys[-1], t) and not keys[-1].text.endswith(","):
                break
            if self.subst(t, quiet=True) == "import" and self.starts_line():
                self.imports.splice(self.tokens, self.pos)
                continue
            if t.brace("{") and keys:
                break
            if t.brace("{") or t.brace("}"):
                hint = "" if keys else ": expected a server block like `cluster.local:53 {`"
                raise self.error(t, f"unexpected '{t.text}'{hint}")
            keys.append(t)
            self.pos += 1
        return keys

    def entries(self, opened: Token | None, inside: bool) -> list[Directive]:
        """Lines until the `}` that closes `opened` (or the end of the input without one). In a
        server block `import` in place of a directive splices (parse.go `directives`); inside a
        directive's block only at the start of a line (parse.go `directive`)."""
        out: list[Directive] = []
        while self.pos < len(self.tokens):
            t = self.tokens[self.pos]
            if t.brace("}"):
                if opened is None:
                    raise self.error(t, "unexpected '}' without a matching '{'")
                self.pos += 1
                return out
            if t.brace("{"):
                raise self.error(t, "unexpected '{': a block opens on the line of its directive")
            if t.text == "import" and (not inside or self.starts_line()):
                self.imports.splice(self.tokens, self.pos)
                continue
            out.append(self.directive(t))
        if opened is not None:
            raise self.error(opened, "this '{' is never closed (missing '}')")
        return out

    def directive(self, t: Token) -> Directive:
        """`name args...` to the end of the line, and the `{ }` block that line opens."""
        self.pos += 1
        args: list[Token] = []
        block = None
        prev = t
        while self.pos < len(self.tokens):
            u = self.tokens[self.pos]
            if not same_line(prev, u) or u.brace("}"):
                break
            if u.brace("{"):
                self.pos += 1
                block = self.entries(u, inside=True)
                if self.pos < len(self.tokens):
                    after = self.tokens[self.pos]
                    if same_line(self.tokens[self.pos - 1], after) and not after.brace("}"):
                        raise self.error(after, f"unexpected {shown(after.text)} after '}}': start a new line")
                break
            args.append(u)
            prev = u
            self.pos += 1
        return Directive(self.subst(t), self.words(args), t.line, block, t.path)


def parse_corefile(text: str, path: str = "Corefile", environ: Mapping[str, str] | None = None) -> tuple[list[ServerBlock], list[str]]:
    """The server blocks of a Corefile, imports expanded, and the warnings found on the way (unset
    variables, import globs that match no file)."""
    warnings: list[str] = []
    blocks = _Parser(text, path, {} if environ is None else environ, warnings).parse()
    return blocks, warnings


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def decimal(text: str) -> bool:
    """Whether a Corefile argument is a plain decimal number that fits Go's int, as strconv.Atoi
    reads one (str.isdigit() alone takes "²", which int() refuses, and 5,000 digits, which
    int() refuses past Python's limit); the callers check the range they need."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def parse_duration(text: str) -> float:
    """A Go duration (`5s`, `500ms`, `1m30s`, `0`) in seconds; ValueError otherwise."""
    if text in ("0", "+0"):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _GO_DURATION.match(text, pos)
        if not m:
            raise ValueError(f"bad duration {shown(text)}: expected a Go duration like 5s, 500ms or 1m30s")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration")
    if total > _MAX_DURATION:  # Go's time.Duration is int64 nanoseconds: ParseDuration refuses more
        raise ValueError(f"bad duration {shown(text)}: out of range (at most about 292 years)")
    return total


_MAX_DURATION = (2**63 - 1) / 1e9  # seconds


def zone(text: str) -> str:
    """A zone as CoreDNS takes it: a name (`cluster.local.`), `.`, or a CIDR meaning its reverse zone."""
    text = text.strip()
    if text in ("", "."):
        return "."
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigError(f"bad zone {shown(text)}") from None
        bits = 8 if net.version == 4 else 4
        if net.prefixlen % bits:
            raise ConfigError(f"zone {shown(text)}: the prefix must be a multiple of {bits} to name a reverse zone")
        labels = net.network_address.reverse_pointer.split(".")
        return ".".join(labels[(net.max_prefixlen - net.prefixlen) // bits :])
    return normalize_zone(text)
