"""docs/corefile.md says what the Corefile handlers do: its plugin table lists every plugin in
HANDLERS and every option in OPTIONS, each option loads with a sample argument and sets the flags
its row names (and no others), an option not in the list is an error that names its line, and the
table of refused lines shows what clusterdns prints. README's flags section names every flag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from clusterdns.config.corefile import corefile_values
from clusterdns.config.plugins import HANDLERS, OPTIONS
from clusterdns.config.settings import settings
from clusterdns.errors import ConfigError
from tests.helpers.process import ROOT

DOC = ROOT / "docs" / "corefile.md"
PLUGIN_HEADER = "| Plugin | Option | What clusterdns does |"
REFUSED_HEADER = "| You write | clusterdns stops with |"
FLAG = re.compile(r"--[a-z][a-z-]*[a-z]")
CODE = re.compile(r"(`+)\s?(.+?)\s?\1")  # a code span, `x` or `` x ``
FLAGS = {name: s.flag for name, _, s in settings()}

# The words after each option's name in the samples: a valid argument for each.
OPTION_ARGS = {
    ("kubernetes", "pods"): "insecure", ("kubernetes", "ttl"): "30", ("kubernetes", "namespaces"): "default shop",
    ("kubernetes", "endpoint_pod_names"): "", ("kubernetes", "noendpoints"): "", ("kubernetes", "fallthrough"): "in-addr.arpa",
    ("kubernetes", "ignore"): "empty_service", ("kubernetes", "manifests"): "/srv/manifests",
    ("kubernetes", "endpoint"): "https://10.0.0.1:6443", ("kubernetes", "tls"): "cert.pem key.pem ca.pem",
    ("kubernetes", "kubeconfig"): "kubeconfig.yaml", ("kubernetes", "startup_timeout"): "5s", ("kubernetes", "apiserver_qps"): "50",
    ("kubernetes", "apiserver_burst"): "100", ("kubernetes", "apiserver_max_inflight"): "10",
    ("forward", "policy"): "sequential", ("forward", "max_fails"): "3", ("forward", "max_concurrent"): "100",
    ("forward", "max_idle_conns"): "4", ("forward", "expire"): "20s", ("forward", "read_timeout"): "1s", ("forward", "force_tcp"): "",
    ("forward", "prefer_udp"): "", ("forward", "failfast_all_unhealthy_upstreams"): "", ("forward", "health_check"): "1s",
    ("forward", "except"): "internal.example",
    ("cache", "success"): "5000 60", ("cache", "denial"): "2000 10", ("cache", "disable"): "success example.org",
    ("cache", "prefetch"): "10 2m 20%", ("cache", "serve_stale"): "1h verify 2s 30s 1m", ("cache", "servfail"): "10s", ("cache", "keepttl"): "",
    ("health", "lameduck"): "5s",
    ("errors", "stacktrace"): "", ("errors", "consolidate"): '5m ".* i/o timeout$" warning',
    ("transfer", "to"): "10.0.0.9",
    ("hosts", "ttl"): "60", ("hosts", "no_reverse"): "", ("hosts", "reload"): "10s", ("hosts", "fallthrough"): "example.org",
    ("hosts", "fallthrough_unsupported"): "",
    ("k8s_external", "apex"): "ns", ("k8s_external", "ttl"): "60", ("k8s_external", "headless"): "", ("k8s_external", "fallthrough"): "example.org",
}
NEEDS = {("hosts", "fallthrough_unsupported"): "fallthrough"}  # a line the option needs before it
BASE_ARGS = {"forward": ". 10.0.0.2", "hosts": "/etc/hosts", "k8s_external": "example.org"}  # a plugin's line around its options
# Each plugin's own line, with arguments, for its row.
PLUGIN_LINES = {
    "kubernetes": "kubernetes cluster.local example.org", "forward": "forward . 10.0.0.2", "cache": "cache 30 example.org",
    "health": "health 127.0.0.1:8080", "ready": "ready 127.0.0.1:8181", "prometheus": "prometheus 127.0.0.1:9153", "log": "log",
    "errors": "errors", "reload": "reload 10s 2s", "transfer": "transfer {\n        to *\n    }", "bind": "bind 127.0.0.2", "loop": "loop",
    "loadbalance": "loadbalance round_robin", "rewrite": "rewrite name a.example b.example", "k8s_external": "k8s_external example.org",
    "hosts": "hosts /etc/hosts example.org {\n        10.0.0.1 a.example.org\n    }",
}
IGNORED_WITH_A_WARNING = {"log"}  # takes any words and block, and says it ignores them


@dataclass(frozen=True)
class Row:
    plugin: str
    options: tuple[str, ...]  # empty: the row of the plugin's own line
    flags: frozenset[str]
    text: str
    line: int  # in docs/corefile.md


def table(header: str) -> list[tuple[int, list[str]]]:
    """The rows of the markdown table under `header`: (line number, cells with `\\|` unescaped)."""
    lines = DOC.read_text().splitlines()
    assert header in lines, f"docs/corefile.md has no table {header!r}"
    start = lines.index(header) + 2  # past the header and its |---| line
    out = []
    for n, line in enumerate(lines[start:], start + 1):
        if not line.startswith("|"):
            break
        out.append((n, [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]))
    return out


def spans(cell: str) -> list[str]:
    return [m.group(2) for m in CODE.finditer(cell)]


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    out: list[Row] = []
    plugin = ""
    for n, cells in table(PLUGIN_HEADER):
        assert len(cells) == 3, f"docs/corefile.md:{n}: {len(cells)} cells (an unescaped | ?)"
        if cells[0]:
            plugin = spans(cells[0])[0].split()[0]
        assert plugin, f"docs/corefile.md:{n}: an option row before any plugin"
        out.append(Row(plugin, tuple(s.split()[0] for s in spans(cells[1])), frozenset(FLAG.findall(cells[2])), cells[2], n))
    return out


def corefile(*lines: str, kubernetes: str = "kubernetes") -> str:
    """One server block for cluster.local: the kubernetes line (line 2), then `lines` (line 3 on)."""
    return "cluster.local {\n" + "".join(f"    {line}\n" for line in (kubernetes, *lines)) + "}\n"


def with_options(plugin: str, options: list[str]) -> str:
    """The plugin on line 3 (kubernetes: line 2) with `options` in its block, the first on the next line."""
    block = "{\n" + "".join(f"        {o}\n" for o in options) + "    }"
    if plugin == "kubernetes":
        return corefile(kubernetes=f"kubernetes {block}")
    return corefile(f"{plugin} {BASE_ARGS.get(plugin, '')}".rstrip() + f" {block}")


def values(text: str) -> dict[str, Any]:
    return corefile_values(text, "Corefile", {})[0]


def loads(text: str) -> dict[str, Any]:
    try:
        return values(text)
    except ConfigError as e:
        pytest.fail(f"does not load: {e}\n{text}")


def changed_flags(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {FLAGS[name] for name in before.keys() | after.keys() if before.get(name, KeyError) != after.get(name, KeyError)}


def test_the_table_lists_every_plugin(rows: list[Row]) -> None:
    assert {r.plugin for r in rows} == set(HANDLERS)
    assert set(OPTIONS) == set(HANDLERS) == set(PLUGIN_LINES)


@pytest.mark.parametrize("plugin", sorted(HANDLERS))
def test_the_table_lists_each_plugins_options(rows: list[Row], plugin: str) -> None:
    assert [r for r in rows if r.plugin == plugin and not r.options], f"no row for {plugin}'s own line"
    documented = [o for r in rows if r.plugin == plugin for o in r.options]
    assert sorted(documented) == sorted(OPTIONS[plugin])


PAIRS = [(plugin, option) for plugin in sorted(OPTIONS) for option in OPTIONS[plugin]]


def test_every_option_has_a_sample() -> None:
    assert set(OPTION_ARGS) == set(PAIRS)


@pytest.mark.parametrize(("plugin", "option"), PAIRS)
def test_each_option_loads_and_sets_the_flags_its_row_names(rows: list[Row], plugin: str, option: str) -> None:
    (row,) = [r for r in rows if r.plugin == plugin and option in r.options]
    needs = [NEEDS[plugin, option]] if (plugin, option) in NEEDS else []
    after = loads(with_options(plugin, [*needs, f"{option} {OPTION_ARGS[plugin, option]}".strip()]))
    try:  # the same plugin without the option; the plugin left out if it cannot go without it
        before = values(with_options(plugin, needs) if needs or plugin == "kubernetes" else corefile(f"{plugin} {BASE_ARGS.get(plugin, '')}".strip()))
    except ConfigError:
        before = values(corefile())
    changed = changed_flags(before, after)
    where = f"docs/corefile.md:{row.line}: {plugin} {option}"
    assert changed <= row.flags, f"{where} also sets {sorted(changed - row.flags)}"
    assert bool(changed) == bool(row.flags), f"{where} names {sorted(row.flags)} but sets {sorted(changed)}"


@pytest.mark.parametrize("plugin", sorted(HANDLERS))
def test_each_plugin_line_loads_and_sets_the_flags_its_rows_name(rows: list[Row], plugin: str) -> None:
    flags = frozenset().union(*(r.flags for r in rows if r.plugin == plugin))
    line = PLUGIN_LINES[plugin]
    after = loads(corefile(kubernetes=line) if plugin == "kubernetes" else corefile(line))
    changed = changed_flags(values(corefile()), after)
    assert changed <= flags, f"{line!r} also sets {sorted(changed - flags)}"
    assert bool(changed) == bool(flags), f"{plugin}'s rows name {sorted(flags)} but {line!r} sets {sorted(changed)}"


@pytest.mark.parametrize("plugin", sorted(HANDLERS))
def test_an_option_not_in_the_list_is_an_error_naming_its_line(rows: list[Row], plugin: str) -> None:
    text = with_options(plugin, ["bogus_option 1"])
    lines = ("Corefile:2:", "Corefile:3:") if plugin == "kubernetes" else ("Corefile:3:", "Corefile:4:")  # the plugin's or the option's
    if plugin in IGNORED_WITH_A_WARNING:
        _, warnings = corefile_values(text, "Corefile", {})
        assert [w for w in warnings if w.startswith(lines) and plugin in w], warnings
        assert all("ignored, with a warning" in r.text for r in rows if r.plugin == plugin and not r.options)
        return
    with pytest.raises(ConfigError) as e:
        values(text)
    message = str(e.value)
    assert message.startswith(lines) and ("bogus_option" in message or plugin in message), message


def test_the_refused_lines_print_what_the_table_says() -> None:
    tried = 0
    for n, (written, said) in table(REFUSED_HEADER):
        (message,) = spans(said)
        for line in spans(written):
            text = corefile(kubernetes=line) if line.startswith("kubernetes") else corefile(line)
            with pytest.raises(ConfigError) as e:
                values(text)
            at = 2 if line.startswith("kubernetes") else 3
            assert str(e.value) == f"Corefile:{at}: {message.replace('NAME', line.split()[0])}", f"docs/corefile.md:{n}: {line}"
            tried += 1
    assert tried >= 10


def test_the_docs_have_no_stale_statements() -> None:
    text = DOC.read_text()
    for stale in ("accepted, not implemented", "does not support snippets", "applies to every outside name", "does not re-read the Corefile"):
        assert stale not in text


def test_the_readme_flags_section_names_every_serve_flag() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Flags (`clusterdns serve`)\n", 1)[1].split("\n## ", 1)[0]
    named = set(FLAG.findall(section))
    every = {s.flag for _, _, s in settings()} | {"--config", "--corefile", "--help"}
    assert every - {"--help"} <= named, f"README's flags section leaves out {sorted(every - named - {'--help'})}"
    assert named <= every, f"README's flags section names flags serve does not have: {sorted(named - every)}"


def test_review_corners() -> None:
    """A rule on its line with a block, and negative forward limits, are errors as in CoreDNS
    (plugin/rewrite/setup.go, plugin/forward/setup.go)."""
    from clusterdns.config.corefile import corefile_values
    from clusterdns.config.settings import Config
    from clusterdns.errors import ConfigError

    with pytest.raises(ConfigError, match="Corefile:3: rewrite: a rule written on its line takes no"):
        corefile_values(".:53 {\n    kubernetes cluster.local\n    rewrite name a.example. b.example. {\n        answer auto\n    }\n}\n", "Corefile", {})
    for option in ("max_fails -1", "max_concurrent -5"):
        values, _ = corefile_values(f".:53 {{\n    kubernetes cluster.local\n    forward . 192.0.2.1 {{\n        {option}\n    }}\n}}\n", "Corefile", {})
        with pytest.raises(ConfigError, match="cannot be negative"):
            Config(**values)
