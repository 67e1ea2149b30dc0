"""The package's layout draws the pipeline: data flows one way, modules stay small.

files -> manifests -> objects -> derive -> snapshot -> resolve -> serve (and tools beside it).
A module may import its own stage and earlier ones, never a later one, and no import cycle
exists (function-level imports count too). README.md's "Architecture" section lists the
same stages.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clusterdns"

# In pipeline order; a stage may import any stage before it.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("vocabulary", ("clusterdns", "clusterdns.errors", "clusterdns.codes", "clusterdns.names", "clusterdns.rewrite", "clusterdns.rewrite_re2",
                    "clusterdns.frozen", "clusterdns.model", "clusterdns.records", "clusterdns.yaml_scalars")),
    ("config", ("clusterdns.config",)),
    ("manifests", ("clusterdns.manifests",)),
    ("objects", ("clusterdns.objects",)),
    ("derive", ("clusterdns.derive",)),
    ("snapshot", ("clusterdns.snapshot",)),
    ("pipeline", ("clusterdns.pipeline",)),
    ("resolver", ("clusterdns.resolver", "clusterdns.hosts", "clusterdns.external")),
    ("wire", ("clusterdns.wire",)),
    ("upstream", ("clusterdns.upstream",)),
    ("ops", ("clusterdns.ops",)),
    ("serve", ("clusterdns.serve",)),
    ("tools", ("clusterdns.tools",)),
    ("cli", ("clusterdns.cli", "clusterdns.__main__")),
]
MAX_LINES = 300
REASON = re.compile(r"^# Longer than \d+ lines: .+", re.M)  # the one line a longer module needs


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def stage_of(module: str) -> int:
    """The stage of a module: the longest prefix listed wins (clusterdns.config.settings -> config)."""
    best, rank = -1, -1
    for index, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), index
    assert rank >= 0, f"{module} is in no stage of tests/test_layout.py"
    return rank


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The clusterdns modules a module imports, anywhere in it (a package import names the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clusterdns"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("clusterdns"))
    return found


def test_every_module_is_in_a_stage() -> None:
    for name in modules():
        stage_of(name)


def test_no_import_goes_against_the_pipeline() -> None:
    known = modules()
    wrong = []
    for name, path in known.items():
        for target in imports(path, known):
            if stage_of(target) > stage_of(name):
                wrong.append(f"{name} ({STAGES[stage_of(name)][0]}) imports {target} ({STAGES[stage_of(target)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: {t for t in imports(path, known) if t in known and t != name and t != "clusterdns"} for name, path in known.items()}
    cycles = [component for component in strongly_connected(graph) if len(component) > 1]
    assert not cycles, cycles


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def test_the_cycle_finder_finds_cycles() -> None:
    assert sorted(map(sorted, strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}))) == [["a", "b", "c"], ["d"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_are_small_or_say_why(name: str) -> None:
    text = modules()[name].read_text()
    lines = text.count("\n")
    assert lines <= MAX_LINES or REASON.search(text), f"{name}: {lines} lines and no '# Longer than {MAX_LINES} lines: ...' line"


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_says_what_it_is(name: str) -> None:
    tree = ast.parse(modules()[name].read_text())
    doc = ast.get_docstring(tree)
    assert doc and doc.strip(), f"{name} has no docstring"


def test_the_readme_lists_every_package() -> None:
    """README.md's Architecture section names each subpackage and top-level module."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    for path in sorted(PACKAGE.iterdir()):
        if path.name.startswith("_") or path.suffix not in (".py", "") or path.name == "__pycache__":
            continue
        shown = f"{path.stem}/" if path.is_dir() else path.name
        assert shown in section, f"README's Architecture section does not mention {shown}"


def test_the_readme_names_every_module_of_each_package() -> None:
    """Each subpackage's row in README.md's Architecture table names every one of its modules,
    so the table cannot keep a module that is gone or miss one that came."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)/` \| (.+) \|$", section, re.M)}
    for package in sorted(p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        row = rows.get(package.name)
        assert row is not None, f"README's Architecture table has no row for {package.name}/"
        named = set(re.findall(r"`([\w./]+)`", row))
        for module in sorted(package.glob("*.py")):
            if module.name != "__init__.py":
                assert module.name in named, f"README's {package.name}/ row does not name {module.name}"
        stale = {n for n in named if n.endswith(".py") and not (package / n).exists()}
        assert not stale, f"README's {package.name}/ row names modules that do not exist: {sorted(stale)}"
