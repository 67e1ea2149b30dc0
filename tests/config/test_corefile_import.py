"""Corefile `import` and `(snippet) { }` through parse_corefile: coredns/caddy's caddyfile/parse_test.go,
CoreDNS's plugin/import/README.md, and k3s's stock Corefile (manifests/coredns.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clusterdns.config.corefile_import import Importer, go_glob
from clusterdns.config.corefile_syntax import Directive, ServerBlock, Token, parse_corefile, tokenize
from clusterdns.errors import ConfigError

Shape = tuple[str, list[str], Any]  # (name, args, block shapes or None)


def write(base: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def fill(text: str, tmp_path: Path, main: Path) -> str:
    """`{tmp}` is the test's directory, `{main}` the Corefile's path (replace, as `{$X}` is Corefile syntax)."""
    return text.replace("{main}", str(main)).replace("{tmp}", str(tmp_path))


def parse(tmp_path: Path, text: str, files: dict[str, str] | None = None, environ: dict[str, str] | None = None,
          corefile: str = "Corefile") -> tuple[list[ServerBlock], list[str]]:
    write(tmp_path, {k: fill(v, tmp_path, tmp_path / corefile) for k, v in (files or {}).items()})
    main = tmp_path / corefile
    return parse_corefile(fill(text, tmp_path, main), str(main), environ or {})


def error_of(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        parse(tmp_path, text, files)
    return str(e.value)


def shape(d: Directive) -> Shape:
    return (d.name, d.args, None if d.block is None else [shape(e) for e in d.block])


def shapes(blocks: list[ServerBlock]) -> list[tuple[list[str], list[Shape]]]:
    return [(b.keys, [shape(e) for e in b.entries]) for b in blocks]


def d(name: str, *args: str, block: list[Shape] | None = None) -> Shape:
    return (name, list(args), block)


GLOBS = {  # caddyfile/testdata/import_glob{0,1,2}.txt
    "testdata/import_glob0.txt": "glob0.host0 {\n\tdir2 arg1\n}\n\nglob0.host1 {\n}\n",
    "testdata/import_glob1.txt": "glob1.host0 {\n\tdir1\n\tdir2 arg1\n}\n",
    "testdata/import_glob2.txt": "glob2.host0 {\n\tdir2 arg1\n}\n",
}

PARSED = [
    # (source, Corefile, files, server blocks)
    ("parse_test.go TestParseOneAndImport (import in place of a directive)",
     "localhost\n  dir1 arg1\n  import testdata/import_test1.txt", {"testdata/import_test1.txt": "dir2 arg1 arg2\ndir3"},
     [(["localhost"], [d("dir1", "arg1"), d("dir2", "arg1", "arg2"), d("dir3")])]),
    ("parse_test.go TestParseOneAndImport (import where a server block starts)",
     "import testdata/import_test2.txt", {"testdata/import_test2.txt": "host1 {\n\tdir1\n\tdir2 arg1\n}"},
     [(["host1"], [d("dir1"), d("dir2", "arg1")])]),
    ("parse_test.go TestParseAll (a glob: every match, in file-name order)",
     "import testdata/import_glob*.txt", GLOBS,
     [(["glob0.host0"], [d("dir2", "arg1")]), (["glob0.host1"], []), (["glob1.host0"], [d("dir1"), d("dir2", "arg1")]),
      (["glob2.host0"], [d("dir2", "arg1")])]),
    ("parse_test.go TestSnippets",
     "(common) {\n  gzip foo\n  errors stderr\n}\nhttp://example.com {\n  import common\n}", {},
     [(["http://example.com"], [d("gzip", "foo"), d("errors", "stderr")])]),
    ("parse_test.go TestImportedFilesIgnoreNonDirectiveImportTokens",
     "import other.conf", {"other.conf": "http://example.com {\n  # just an argument\n  basicauth / import password\n}"},
     [(["http://example.com"], [d("basicauth", "/", "import", "password")])]),
    ("parse_test.go TestSnippetAcrossMultipleFiles",
     "(common) {\n  gzip foo\n}\nimport other.conf", {"other.conf": "http://example.com {\n  import common\n}"},
     [(["http://example.com"], [d("gzip", "foo")])]),
    ("parse_test.go TestDirectiveImport (import at the start of a line in a directive's block)",
     "localhost\ndir1\nproxy {\n  import testdata/directive_import_test\n  transparent\n}",
     {"testdata/directive_import_test": "prop1 1\n\tprop2 2"},
     [(["localhost"], [d("dir1"), d("proxy", block=[d("prop1", "1"), d("prop2", "2"), d("transparent")])])]),
    ("parse_test.go TestRecursiveImport (relative + relative: from the importing file's directory)",
     "import testdata/recursive_import_test1",
     {"testdata/recursive_import_test1": "localhost\ndir1\nimport recursive_import_test2", "testdata/recursive_import_test2": "dir2 1"},
     [(["localhost"], [d("dir1"), d("dir2", "1")])]),
    ("parse_test.go TestRecursiveImport (absolute + relative)",
     "import {tmp}/testdata/recursive_import_test1",
     {"testdata/recursive_import_test1": "localhost\ndir1\nimport recursive_import_test2", "testdata/recursive_import_test2": "dir2 1"},
     [(["localhost"], [d("dir1"), d("dir2", "1")])]),
    ("parse_test.go TestRecursiveImport (relative + absolute)",
     "import testdata/recursive_import_test1",
     {"testdata/recursive_import_test1": "localhost\ndir1\nimport {tmp}/testdata/recursive_import_test2", "testdata/recursive_import_test2": "dir2 1"},
     [(["localhost"], [d("dir1"), d("dir2", "1")])]),
    ("plugin/import/README.md (a shared configuration)",
     ". {\n   import config/common.conf\n}", {"config/common.conf": "prometheus\nerrors\nlog\n"},
     [(["."], [d("prometheus"), d("errors"), d("log")])]),
    ("parse.go doImport (filepath.Glob: `*` matches dot names; sorted)",
     ". {\n  import d/*.conf\n}", {"d/b.conf": "b", "d/.a.conf": "dot", "d/a.conf": "a"},
     [(["."], [d("dot"), d("a"), d("b")])]),
    ("dispenser.go isNewLine (a file boundary is a line boundary, whatever the line numbers)",
     ". {\n  import *.conf\n}", {"a.conf": "log", "b.conf": "errors"},
     [(["."], [d("log"), d("errors")])]),
    ("parse.go begin (a snippet defined in an imported file is known afterwards)",
     "import defs.conf\n. {\n  import s\n}", {"defs.conf": "(s) {\n  log\n}"},
     [(["."], [d("log")])]),
    ("parse.go addresses (a snippet imported where a server block starts holds server blocks)",
     "(two) {\n  a.com {\n    log\n  }\n  b.com {\n    errors\n  }\n}\nimport two", {},
     [(["a.com"], [d("log")]), (["b.com"], [d("errors")])]),
    ("parse.go doImport (a defined snippet wins over a file of that name)",
     "(common) {\n  from_snippet\n}\n. {\n  import common\n}", {"common": "from_file"},
     [(["."], [d("from_snippet")])]),
    ("parse.go doImport (a snippet defined later is not known yet: the name is a file)",
     ". {\n  import common\n}\n(common) {\n  from_snippet\n}", {"common": "from_file"},
     [(["."], [d("from_file")])]),
    ("parse.go snippetTokens (an empty snippet is defined)",
     "(e) {\n}\n. {\n  import e\n  log\n}", {},
     [(["."], [d("log")])]),
    ("parse.go directive (a snippet spliced into a directive's block)",
     "(opts) {\n  pods insecure\n}\n. {\n  kubernetes cluster.local {\n    ttl 30\n    import opts\n  }\n}", {},
     [(["."], [d("kubernetes", "cluster.local", block=[d("ttl", "30"), d("pods", "insecure")])])]),
    ("parse.go directive (import after `{` on its line is an ordinary word)",
     ". {\n  proxy { import x\n  }\n}", {},
     [(["."], [d("proxy", block=[d("import", "x")])])]),
    ("parse.go addresses (import not starting a line is a key)",
     "a.com import {\n  log\n}", {},
     [(["a.com", "import"], [d("log")])]),
    ("parse.go addresses (after a trailing comma an imported file goes on with the keys)",
     "a.com,\nimport more.keys", {"more.keys": "b.com {\n  log\n}"},
     [(["a.com", "b.com"], [d("log")])]),
    ("parse.go directives (`(x) { }` inside a server block is a directive, not a snippet)",
     ". {\n  (x) {\n  }\n}", {},
     [(["."], [d("(x)", block=[])])]),
    ("parse.go begin (a lone `(name)` at the end of the input is a server block)",
     "(name)", {},
     [(["(name)"], [])]),
]


@pytest.mark.parametrize("source, text, files, expected", PARSED, ids=[row[0] for row in PARSED])
def test_imports_and_snippets_parse(tmp_path: Path, source: str, text: str, files: dict[str, str], expected: list[Any]) -> None:
    blocks, warnings = parse(tmp_path, text, files)
    assert shapes(blocks) == expected
    assert warnings == []


WILDCARDS = "Glob pattern may only contain one wildcard (*), but has others"
ERRORS = [
    # (source, Corefile, files, message; {main} is the Corefile's path, {tmp} its directory)
    ("parse_test.go TestParseOneAndImport (two arguments)", "import a.txt b.txt", {},
     "{main}:1: Import takes only one argument (glob pattern or file)"),
    ("parse_test.go TestParseOneAndImport (no such file)", "import testdata/not_found.txt", {},
     "{main}:1: File to import not found: testdata/not_found.txt"),
    ("parse_test.go TestParseOneAndImport (fuzz)", 'import }{$"', {}, '{main}:1: File to import not found: }{$"'),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import /*/*.txt", {}, "{main}:1: " + WILDCARDS + ": /*/*.txt"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import /???/?*?o", {}, "{main}:1: " + WILDCARDS + ": /???/?*?o"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import /??", {}, "{main}:1: " + WILDCARDS + ": /??"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import /[a-z]", {}, "{main}:1: " + WILDCARDS + ": /[a-z]"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import {$}", {}, "{main}:1: File to import not found: {$}"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import {%}", {}, "{main}:1: File to import not found: {%}"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import {$$}", {}, "{main}:1: Import requires a non-empty filepath"),
    ("parse_test.go TestParseOneAndImport (fuzz)", "import {%%}", {}, "{main}:1: File to import not found: {%%}"),
    ("parse_test.go TestParseAll (a file, not a glob, must exist)", "import notfound/file.conf", {},
     "{main}:1: File to import not found: notfound/file.conf"),
    ("parse_test.go TestDirectiveImport (no such file)", "localhost\ndir1\nproxy {\n  import testdata/nonexistent_file\n  transparent\n}", {},
     "{main}:4: File to import not found: testdata/nonexistent_file"),
    ("parse_test.go TestSnippetImportCycle (direct self-import)", "(loop) {\nimport loop\n}\nimport loop", {},
     "{main}:3: maximum snippet import depth (10000) exceeded"),
    ("parse_test.go TestSnippetImportCycle (self-import via recursion)", "(loop) {\n{ }\nimport loop\n}\nimport loop", {},
     "{main}:4: maximum snippet import depth (10000) exceeded"),
    ("parse.go doImport (maxSnippetExpansions ends an indirect cycle)", "(a) {\n  import b\n}\n(b) {\n  import a\n}\n. {\n  import a\n}", {},
     "{main}:5: maximum snippet import depth (10000) exceeded"),
    ("parse.go doImport (ArgErr)", ". {\n  import\n}", {}, "{main}:2: Wrong argument count or unexpected line ending after 'import'"),
    ("parse.go doImport (an empty pattern)", '. {\n  import ""\n}', {}, "{main}:2: Import requires a non-empty filepath"),
    ("parse.go doImport (filepath.Glob's ErrBadPattern)", ". {\n  import x[\n}", {},
     "{main}:2: Failed to use import pattern x[: syntax error in pattern"),
    ("parse.go doSingleImport (a directory)", ". {\n  import d/*\n}", {"d/sub/x.conf": "log"}, "{main}:2: Could not import {tmp}/d/sub: is a directory"),
    ("parse.go begin (redeclaration)", "(s) {\n}\n(s) {\n}", {}, "{main}:3: redeclaration of previously declared snippet s"),
    ("parse.go snippetTokens (a snippet must have braces)", "(s)\nlog", {}, "{main}:2: Syntax error: Unexpected token 'log', expecting '{'"),
    ("parse.go snippetTokens (unbalanced)", "(s) {\n  log {\n}", {}, "{main}:3: Syntax error: Unexpected token '}', expecting '}'"),
    ("parse.go doSingleImport (errors name the imported file and its line)", ". {\n  import bad.conf\n}", {"bad.conf": "log\n{\n}"},
     "{tmp}/bad.conf:2: unexpected '{': a block opens on the line of its directive"),
    ("parse.go doSingleImport (the lexer's errors too)", ". {\n  import bad.conf\n}", {"bad.conf": 'log "open'},
     "{tmp}/bad.conf:1: unterminated quoted string"),
    ("parse.go doImport (a nested import's errors name the file that holds it)", "import a.conf", {"a.conf": "\n\nimport b.conf"},
     "{tmp}/a.conf:3: File to import not found: b.conf"),
]


@pytest.mark.parametrize("source, text, files, message", ERRORS, ids=[f"{row[0]}: {row[1]}" for row in ERRORS])
def test_import_errors(tmp_path: Path, source: str, text: str, files: dict[str, str], message: str) -> None:
    assert error_of(tmp_path, text, files) == fill(message, tmp_path, tmp_path / "Corefile")


def test_glob_without_matches_is_a_warning(tmp_path: Path) -> None:
    """parse_test.go TestParseAll (`import notfound/*`); the warning is CoreDNS's, with the import's file and line."""
    blocks, warnings = parse(tmp_path, "import notfound/*", {"a.conf": "\n\n\nimport none/*.conf"})
    assert blocks == []
    assert warnings == [f"{tmp_path}/Corefile:1: No files matching import glob pattern: notfound/*"]
    blocks, warnings = parse(tmp_path, "import a.conf")
    assert blocks == []
    assert warnings == [f"{tmp_path}/a.conf:4: No files matching import glob pattern: none/*.conf"]


def test_imported_words_carry_their_file(tmp_path: Path) -> None:
    """parse.go doSingleImport: imported tokens get their file's absolute path; Directive and
    ServerBlock take the path of their first word, the Corefile's own words keep its path as given."""
    files = {"custom/a.override": "\nlog {$UNSET}", "custom/b.server": "b.com {\n  forward . {$UNSET}\n}"}
    blocks, warnings = parse(tmp_path, ". {\n  errors\n  import custom/*.override\n}\nimport custom/*.server", files)
    main, override, server = str(tmp_path / "Corefile"), str(tmp_path / "custom/a.override"), str(tmp_path / "custom/b.server")
    assert [(b.keys, b.path, b.line) for b in blocks] == [(["."], main, 1), (["b.com"], server, 1)]
    assert [(e.name, e.path, e.line) for e in blocks[0].entries] == [("errors", main, 2), ("log", override, 2)]
    assert [(e.name, e.path, e.line) for e in blocks[1].entries] == [("forward", server, 2)]
    assert warnings == [f"{override}:2: environment variable UNSET is not set; {{$UNSET}} is empty",
                        f"{server}:2: environment variable UNSET is not set; {{$UNSET}} is empty"]


def test_relative_corefile_path_imports_from_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """parse.go doImport: the base is filepath.Abs of the Corefile's name (CoreDNS's `-conf`), against the working directory."""
    write(tmp_path, {"sub/x.conf": "a.com {\n  log\n}"})
    monkeypatch.chdir(tmp_path)
    blocks, _ = parse_corefile("import sub/x.conf\n", "Corefile", {})
    assert [(b.keys, b.path) for b in blocks] == [(["a.com"], str(tmp_path / "sub/x.conf"))]
    blocks, _ = parse_corefile("a.com {\n  log\n}\n", "Corefile", {})
    assert (blocks[0].path, blocks[0].entries[0].path) == ("Corefile", "Corefile")


def test_environment_variable_in_the_pattern(tmp_path: Path) -> None:
    """parse.go doImport: replaceEnvVars on the pattern (and on the snippet name it may be)."""
    files = {"custom/a.override": "log"}
    blocks, warnings = parse(tmp_path, "(s) {\n  errors\n}\n. {\n  import {$DIR}/*.override\n  import {$SNIP}\n}", files,
                             environ={"DIR": "custom", "SNIP": "s"})
    assert shapes(blocks) == [(["."], [d("log"), d("errors")])]
    assert warnings == []


def test_a_relative_import_in_a_snippet_is_relative_to_the_snippet_file(tmp_path: Path) -> None:
    """parse.go doImport: the base is the directory of the file holding the `import` word (Dispenser.File)."""
    files = {"sub/defs.conf": "(s) {\n  import local.conf\n}", "sub/local.conf": "from_sub", "local.conf": "from_top"}
    blocks, _ = parse(tmp_path, "import sub/defs.conf\n. {\n  import s\n}", files)
    assert shapes(blocks) == [(["."], [d("from_sub")])]


@pytest.mark.parametrize("files, pattern, expected", [
    # Go's path/filepath Glob, which parse.go doImport calls: each directory's names sorted on their own.
    ({"a/x.conf": "", "a-b/x.conf": ""}, "*/x.conf", ["a/x.conf", "a-b/x.conf"]),
    ({"d/a.conf": "", "d/ab.conf": ""}, "d/?.conf", ["d/a.conf"]),
    ({"d/*.conf": "", "d/a.conf": ""}, "d/\\*.conf", ["d/*.conf"]),
    ({"d/a.conf": ""}, "d/a.conf", ["d/a.conf"]),
    ({"d/a.conf": ""}, "d/b.conf", []),
])
def test_go_glob(tmp_path: Path, files: dict[str, str], pattern: str, expected: list[str]) -> None:
    write(tmp_path, files)
    assert go_glob(f"{tmp_path}/{pattern}") == [f"{tmp_path}/{e}" for e in expected]


def importer(warnings: list[str], max_files: int) -> Importer[Token]:
    return Importer(tokenize, lambda t, quiet: t.text, warnings, max_files=max_files)


def test_file_import_cycle_ends_at_the_cap(tmp_path: Path) -> None:
    """parse_test.go TestFileImportCycleError (with the test's cap of 10; the message prints the snippet cap, as parse.go does)."""
    write(tmp_path, {"a.conf": f"import {tmp_path}/b.conf", "b.conf": f"import {tmp_path}/a.conf"})
    imports, tokens = importer([], 10), tokenize(f"import {tmp_path}/a.conf", str(tmp_path / "Corefile"))
    with pytest.raises(ConfigError, match=r"b\.conf:1: maximum file import depth \(10000\) exceeded"):
        while tokens:
            imports.splice(tokens, 0)
    assert imports.file_expansions == 10


def test_one_glob_counts_once(tmp_path: Path) -> None:
    """parse_test.go TestFileImportDir: a glob matching ten times the cap is one import."""
    write(tmp_path, {f"d/f{i}": "" for i in range(100)})
    imports, tokens = importer([], 10), tokenize("import d/*", str(tmp_path / "Corefile"))
    imports.splice(tokens, 0)
    assert (tokens, imports.file_expansions) == ([], 1)


K3S_COREFILE = """\
.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts {tmp}/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import {tmp}/custom/*.override
}
import {tmp}/custom/*.server
"""

K3S_ROOT = [
    d("errors"), d("health"), d("ready"),
    d("kubernetes", "cluster.local", "in-addr.arpa", "ip6.arpa", block=[d("pods", "insecure"), d("fallthrough", "in-addr.arpa", "ip6.arpa")]),
    d("hosts", "{tmp}/NodeHosts", block=[d("ttl", "60"), d("reload", "15s"), d("fallthrough")]),
    d("prometheus", ":9153"), d("forward", ".", "/etc/resolv.conf"), d("cache", "30"), d("loop"), d("reload"), d("loadbalance"),
]


def k3s_root(tmp_path: Path) -> list[Shape]:
    return [(n, [a.replace("{tmp}", str(tmp_path)) for a in args], block) for n, args, block in K3S_ROOT]


def test_k3s_stock_corefile_with_coredns_custom(tmp_path: Path) -> None:
    """k3s manifests/coredns.yaml (spec §3.1-3.2): `*.override` adds directives to `.:53`, `*.server` adds server blocks."""
    files = {"custom/log.override": "log\n", "custom/why.server": "why.local {\n    forward . 127.0.0.1\n}\n"}
    blocks, warnings = parse(tmp_path, K3S_COREFILE, files)
    assert shapes(blocks) == [([".:53"], [*k3s_root(tmp_path), d("log")]), (["why.local"], [d("forward", ".", "127.0.0.1")])]
    assert [b.path for b in blocks] == [str(tmp_path / "Corefile"), str(tmp_path / "custom/why.server")]
    assert blocks[0].entries[-1].path == str(tmp_path / "custom/log.override")
    assert warnings == []


def test_k3s_stock_corefile_without_coredns_custom(tmp_path: Path) -> None:
    """k3s manifests/coredns.yaml with the optional coredns-custom ConfigMap absent: both globs warn (CoreDNS issue #4729's log)."""
    (tmp_path / "custom").mkdir()
    blocks, warnings = parse(tmp_path, K3S_COREFILE)
    assert shapes(blocks) == [([".:53"], k3s_root(tmp_path))]
    assert warnings == [f"{tmp_path}/Corefile:20: No files matching import glob pattern: {tmp_path}/custom/*.override",
                        f"{tmp_path}/Corefile:22: No files matching import glob pattern: {tmp_path}/custom/*.server"]
