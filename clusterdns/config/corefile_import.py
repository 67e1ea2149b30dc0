"""The Corefile's `import` and `(snippet) { }`, spliced in at token level as coredns/caddy does."""

# Everything here follows coredns/caddy's caddyfile/parse.go (the parser CoreDNS pins in go.mod):
# `doImport`, `doSingleImport`, `snippetTokens` and the self-import guard in `begin`, and
# CoreDNS's plugin/import/README.md. The parser (corefile_syntax.py) decides *where* an `import`
# counts; this module decides what it turns into.

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from clusterdns.errors import ConfigError

# parse.go: hard caps against recursive imports; each `import` of a snippet or of a file or glob
# counts once (a glob matching many files is still one).
MAX_SNIPPET_EXPANSIONS = 10000
MAX_FILE_EXPANSIONS = 100000


class Word(Protocol):
    """What this module needs of a token: corefile_syntax.Token."""

    @property
    def text(self) -> str: ...

    @property
    def line(self) -> int: ...

    @property
    def end_line(self) -> int: ...

    @property
    def path(self) -> str: ...

    def brace(self, which: str) -> bool: ...


W = TypeVar("W", bound=Word)


def same_line(prev: Word, cur: Word) -> bool:
    """`cur` continues `prev`'s line: same file, and `cur` starts on the line `prev` ends on
    (caddyfile/dispenser.go `NextArg`; a spliced file never continues the line before it)."""
    return prev.path == cur.path and prev.end_line == cur.line


def error(at: Word, message: str) -> ConfigError:
    return ConfigError(f"{at.path}:{at.line}: {message}")


class Importer(Generic[W]):
    """One parse's snippets and import counters (caddy's `definedSnippets`, `snippetExpansions`,
    `fileExpansions`); `splice` replaces `import PATTERN` in a token list with what it names."""

    def __init__(self, lex: Callable[[str, str], list[W]], subst: Callable[[W, bool], str], warnings: list[str],
                 max_snippets: int = MAX_SNIPPET_EXPANSIONS, max_files: int = MAX_FILE_EXPANSIONS) -> None:
        self.lex = lex  # (text, path) -> tokens carrying that path
        self.subst = subst  # (token, quiet) -> the word with {$VAR} filled in
        self.warnings = warnings
        self.max_snippets = max_snippets
        self.max_files = max_files
        self.snippets: dict[str, list[W]] = {}
        self.snippet_expansions = 0
        self.file_expansions = 0

    def define(self, name: str, tokens: list[W], pos: int) -> int:
        """Stores the snippet `(name)` whose `{` is at `tokens[pos]`; returns the position after its
        `}`. The body is kept raw: its imports are expanded where it is imported (parse.go `begin`)."""
        if name in self.snippets:
            raise error(tokens[pos], f"redeclaration of previously declared snippet {name}")
        if not tokens[pos].brace("{"):  # parse.go `snippetTokens`: a snippet must have braces
            raise error(tokens[pos], f"Syntax error: Unexpected token '{tokens[pos].text}', expecting '{{'")
        end = _matching_brace(tokens, pos)
        body = tokens[pos + 1 : end]
        self._no_self_import(name, body, tokens[end])
        self.snippets[name] = body
        return end + 1

    def _no_self_import(self, name: str, body: list[W], closing: W) -> None:
        """parse.go's guard: a line in the body that starts `import NAME` (its own name) fails at
        once, with the depth message; indirect cycles are left to the counter."""
        for i in range(len(body) - 1):
            word = body[i]
            starts = i == 0 or body[i - 1].path != word.path or body[i - 1].line != word.line
            if word.text == "import" and starts and self.subst(body[i + 1], True) == name:
                raise error(closing, f"maximum snippet import depth ({self.max_snippets}) exceeded")

    def splice(self, tokens: list[W], pos: int) -> None:
        """Replaces `import PATTERN` at `tokens[pos]` by the snippet or the files PATTERN names; the
        caller goes on parsing at `pos`, so imported tokens read as if written there (`doImport`)."""
        word = tokens[pos]
        if pos + 1 == len(tokens) or not same_line(word, tokens[pos + 1]):
            raise error(word, "Wrong argument count or unexpected line ending after 'import'")
        arg = tokens[pos + 1]
        pattern = self.subst(arg, False)
        if not pattern:
            raise error(arg, "Import requires a non-empty filepath")
        if pos + 2 < len(tokens) and same_line(arg, tokens[pos + 2]):
            raise error(tokens[pos + 2], "Import takes only one argument (glob pattern or file)")
        # A defined snippet wins over a file of the same name.
        tokens[pos : pos + 2] = self._snippet(pattern, arg) if pattern in self.snippets else self._files(pattern, arg)

    def _snippet(self, name: str, at: W) -> list[W]:
        if self.snippet_expansions >= self.max_snippets:
            raise error(at, f"maximum snippet import depth ({self.max_snippets}) exceeded")
        self.snippet_expansions += 1
        return list(self.snippets[name])

    def _files(self, pattern: str, at: W) -> list[W]:
        """The tokens of every file the glob matches, in Go's lexical order (`doImport`)."""
        if self.file_expansions >= self.max_files:
            # parse.go prints the snippet cap here, not the file cap; CoreDNS users see this text.
            raise error(at, f"maximum file import depth ({self.max_snippets}) exceeded")
        self.file_expansions += 1
        full = _relative_to(pattern, at.path)
        if full.count("*") > 1 or full.count("?") > 1 or ("[" in full and "]" in full):  # caddy issue #2096
            raise error(at, f"Glob pattern may only contain one wildcard (*), but has others: {full}")
        try:
            matches = go_glob(full)
        except ValueError as e:
            raise error(at, f"Failed to use import pattern {pattern}: {e}") from None
        if not matches:
            if any(c in full for c in "*?[]"):  # an empty glob is no error (plugin/import/README.md)
                self.warnings.append(f"{at.path}:{at.line}: No files matching import glob pattern: {pattern}")
            else:
                raise error(at, f"File to import not found: {pattern}")
        out: list[W] = []
        for match in matches:
            out.extend(self.lex(_read(match, at), os.path.abspath(match)))
        return out


def _matching_brace(tokens: list[W], pos: int) -> int:
    """The index of the `}` that closes the `{` at `pos` (`snippetTokens` counts nested braces)."""
    depth = 0
    for i in range(pos, len(tokens)):
        if tokens[i].brace("{"):
            depth += 1
        elif tokens[i].brace("}"):
            depth -= 1
            if depth == 0:
                return i
    raise error(tokens[-1], f"Syntax error: Unexpected token '{tokens[-1].text}', expecting '}}'")


def _relative_to(pattern: str, path: str) -> str:
    """A relative pattern is joined to the directory of the file holding the `import` (caddy
    issue #867): the Corefile's own directory, or an imported file's; an absolute one stays."""
    if os.path.isabs(pattern):
        return pattern
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), pattern))


def _read(match: str, at: Word) -> str:
    """A matched file's text (`doSingleImport`); a directory or an unreadable file is an error.
    `newline=""` keeps a lone CR a blank, as caddy's lexer has it, not a line break."""
    try:
        with open(match, encoding="utf-8", errors="replace", newline="") as f:
            text = f.read()
    except IsADirectoryError:
        raise error(at, f"Could not import {match}: is a directory") from None
    except OSError as e:
        reason = e.strerror or str(e)
        raise error(at, f"Could not import {match}: open {match}: {reason[:1].lower()}{reason[1:]}") from None
    return text[1:] if text.startswith("\ufeff") else text  # caddy's lexer drops a byte order mark


def go_glob(pattern: str) -> list[str]:
    """Go's `filepath.Glob` on Unix: `*` (dot names too) and `?` within one name, `\\` escapes,
    names sorted per directory; ValueError for a malformed pattern. Character classes never get
    here: the wildcard rule above rejects a pattern holding both `[` and `]`."""
    _component(pattern)  # Go checks the whole pattern first
    if not _has_meta(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    head, name = os.path.split(pattern)
    head = "." if not head else head
    if not _has_meta(head):
        return _in_directory(head, name)
    if head == pattern:
        raise ValueError("syntax error in pattern")
    out: list[str] = []
    for directory in go_glob(head):
        out.extend(_in_directory(directory, name))
    return out


def _has_meta(path: str) -> bool:
    return any(c in path for c in "*?[\\")


def _in_directory(directory: str, name: str) -> list[str]:
    """The sorted entries of one directory matching `name`; an unreadable directory has none."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    match = _component(name)
    return [os.path.join(directory, n) for n in names if match.fullmatch(n)]


def _component(pattern: str) -> re.Pattern[str]:
    """Go's `filepath.Match` pattern as a regex (without classes); ValueError if malformed."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                raise ValueError("syntax error in pattern")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "[":  # a class with no `]` can never close
            raise ValueError("syntax error in pattern")
        out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)
