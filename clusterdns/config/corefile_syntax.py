"""The Corefile's syntax, read as CoreDNS reads it (coredns/caddy's lexer): whitespace-separated
words, `"quoted"` words, `#` comments, `{ }` blocks, `{$VAR}` per word; and Go durations."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from clusterdns.config.addresses import normalize_zone
from clusterdns.errors import ConfigError


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    end_line: int  # a quoted word may span lines
    quoted: bool = False

    def brace(self, which: str) -> bool:
        return not self.quoted and self.text == which


@dataclass
class Directive:
    """One directive (or option inside a block): `name args... [{ entries }]`."""

    name: str
    args: list[str]
    line: int
    block: list[Directive] | None = None


@dataclass
class ServerBlock:
    keys: list[str]
    line: int
    entries: list[Directive]


def tokenize(text: str, path: str) -> list[Token]:
    """coredns/caddy's lexer: `#` starts a comment at the start of a word, `"` quotes (only `\\"`
    is an escape inside), everything else is split on whitespace; `{` and `}` are braces only
    as words of their own."""
    tokens: list[Token] = []
    i, n, line = 0, len(text), 1
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
            tokens.append(Token("".join(buf), start, line, quoted=True))
        else:
            start_i = i
            while i < n and not text[i].isspace():
                i += 1
            tokens.append(Token(text[start_i:i], line, line))
    return tokens


_ENV = re.compile(r"\{\$([^{}:]+)(?::([^{}]*))?\}")


class _Parser:
    def __init__(self, text: str, path: str, environ: Mapping[str, str], warnings: list[str]) -> None:
        self.path = path
        self.environ = environ
        self.warnings = warnings
        self.tokens = tokenize(text, path)
        self.pos = 0

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def subst(self, token: Token) -> str:
        """`{$VAR}` and `{$VAR:default}` (the default when VAR is unset or empty), in one word."""

        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = self.environ.get(name)
            if not value and default is not None:
                return default
            if value is None:
                self.warnings.append(f"{self.path}:{token.line}: environment variable {name} is not set; {{${name}}} is empty")
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

    def parse(self) -> list[ServerBlock]:
        blocks = []
        while self.pos < len(self.tokens):
            first = self.tokens[self.pos]
            if first.brace("{") or first.brace("}"):
                raise self.error(first.line, f"unexpected '{first.text}': expected a server block like `cluster.local:53 {{`")
            keys: list[Token] = []
            while self.pos < len(self.tokens):
                t = self.tokens[self.pos]
                if t.brace("{"):
                    break
                if t.brace("}"):
                    raise self.error(t.line, "unexpected '}'")
                if keys and t.line != keys[-1].end_line and not keys[-1].text.endswith(","):
                    break
                keys.append(t)
                self.pos += 1
            names = [k.rstrip(",") for k in self.words(keys)]
            names = [k for k in names if k]
            if not names:
                raise self.error(first.line, "a server block needs a zone, like `cluster.local:53`")
            if names[0].startswith("(") and names[0].endswith(")"):
                raise self.error(first.line, "snippets `(name) { }` and `import` are not supported by clusterdns")
            if self.pos < len(self.tokens) and self.tokens[self.pos].brace("{"):
                opening = self.tokens[self.pos]
                self.pos += 1
                entries = self.entries(1, opening.line)
            else:  # a single server block may go without braces (coredns/caddy)
                entries = self.entries(0, first.line)
            blocks.append(ServerBlock(names, first.line, entries))
        return blocks

    def entries(self, depth: int, opened: int) -> list[Directive]:
        """Lines until the `}` that closes this block (depth > 0) or the end of the file."""
        out: list[Directive] = []
        while self.pos < len(self.tokens):
            t = self.tokens[self.pos]
            if t.brace("}"):
                if depth == 0:
                    raise self.error(t.line, "unexpected '}' without a matching '{'")
                self.pos += 1
                return out
            if t.brace("{"):
                raise self.error(t.line, "unexpected '{': a block opens on the line of its directive")
            self.pos += 1
            args: list[Token] = []
            block = None
            last = t.end_line
            while self.pos < len(self.tokens):
                u = self.tokens[self.pos]
                if u.line != last or u.brace("}"):
                    break
                if u.brace("{"):
                    self.pos += 1
                    block = self.entries(depth + 1, u.line)
                    if self.pos < len(self.tokens):
                        after = self.tokens[self.pos]
                        if after.line == self.tokens[self.pos - 1].end_line and not after.brace("}"):
                            raise self.error(after.line, f"unexpected {after.text!r} after '}}': start a new line")
                    break
                args.append(u)
                last = u.end_line
                self.pos += 1
            name = self.subst(t)
            out.append(Directive(name, self.words(args), t.line, block))
        if depth > 0:
            raise self.error(opened, "this '{' is never closed (missing '}')")
        return out


def parse_corefile(text: str, path: str = "Corefile", environ: Mapping[str, str] | None = None) -> tuple[list[ServerBlock], list[str]]:
    """The server blocks of a Corefile, and the warnings found on the way (unset variables)."""
    warnings: list[str] = []
    blocks = _Parser(text, path, {} if environ is None else environ, warnings).parse()
    return blocks, warnings


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration (`5s`, `500ms`, `1m30s`, `0`) in seconds; ValueError otherwise."""
    if text in ("0", "+0"):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _GO_DURATION.match(text, pos)
        if not m:
            raise ValueError(f"bad duration {text!r}: expected a Go duration like 5s, 500ms or 1m30s")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration")
    return total


def zone(text: str) -> str:
    """A zone as CoreDNS takes it: a name (`cluster.local.`), `.`, or a CIDR meaning its reverse zone."""
    text = text.strip()
    if text in ("", "."):
        return "."
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigError(f"bad zone {text!r}") from None
        bits = 8 if net.version == 4 else 4
        if net.prefixlen % bits:
            raise ConfigError(f"zone {text!r}: the prefix must be a multiple of {bits} to name a reverse zone")
        labels = net.network_address.reverse_pointer.split(".")
        return ".".join(labels[(net.max_prefixlen - net.prefixlen) // bits :])
    return normalize_zone(text)
