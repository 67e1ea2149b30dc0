"""The bench commands README.md's Performance section and docs/scaling.md show: each names a script
under bench/ and only flags that script takes (its --help lists them). Running them is what
`make bench` and `make scale-envelope` are for; a test can keep them from going stale, and the make
targets the docs name from going missing."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache

import pytest

from tests.helpers.process import ROOT

COMMAND = re.compile(r"\.venv/bin/python\s+(bench/\w+\.py)((?:\s+(?:--[\w-]+(?:=\S+)?|[\w.,/<>=' -]+?))*?)(?:`|;|\))", re.S)


def documented() -> list[tuple[str, str, str]]:
    found = []
    for doc in ("README.md", "docs/scaling.md"):
        text = (ROOT / doc).read_text()
        for match in COMMAND.finditer(text):
            found.append((doc, match.group(1), " ".join(match.group(2).split())))
    return found


@cache
def usage(script: str) -> str:
    return subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT).stdout


def test_the_docs_show_bench_commands() -> None:
    scripts = {script for _, script, _ in documented()}
    assert {"bench/bench.py", "bench/scale.py"} <= scripts, scripts


@pytest.mark.parametrize("doc, script, args", documented())
def test_a_documented_bench_command_uses_flags_its_script_takes(doc: str, script: str, args: str) -> None:
    assert (ROOT / script).exists(), f"{doc}: {script} does not exist"
    for flag in re.findall(r"(?<!\S)(--[\w-]+)", args):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage(script)), f"{doc}: {script} takes no {flag}"


def test_every_make_target_the_docs_name_is_in_the_makefile() -> None:
    """`make fuzz-yaml`, `make scale-envelope`...: each target README.md and docs/ tell users to run exists."""
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    named = {t for doc in ("README.md", *(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")))
             for t in re.findall(r"`make ([\w-]+)", (ROOT / doc).read_text())}
    assert {"run", "test", "bench", "fuzz-yaml"} <= named and named <= targets, named - targets
