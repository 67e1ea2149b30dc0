"""dig output against the lines a document shows for it (README tours, docs/compose.md)."""

from __future__ import annotations

import re


def shell_steps(text: str, fence: str = "") -> list[tuple[str, list[str], int]]:
    """(command, the lines shown after it, line number) for each `$ command` inside fenced
    blocks of `text` (only blocks opened with ```<fence> when `fence` is given)."""
    steps: list[tuple[str, list[str], int]] = []
    inside = False
    shown: list[str] | None = None  # the output lines of the block's current command
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("```"):
            inside = not inside and (not fence or line == "```" + fence)
            shown = None
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            shown = []
            steps.append((line[2:].strip(), shown, number))
        elif line and shown is not None:
            shown.append(line)
    return steps


def normalise(line: str) -> str:
    return " ".join(line.split())


def line_matches(expected: str, actual: str) -> bool:
    """Whitespace-insensitive; `...` in an expected line stands for any text (ids, timings, serials)."""
    pattern = re.escape(normalise(expected)).replace(re.escape("..."), ".*")
    return re.fullmatch(pattern, normalise(actual)) is not None


def mismatch(expected: list[str], output: str) -> str | None:
    """Why `output` is not what the doc shows (`expected`), or None if it is.

    Lines starting with `;` (dig's comments) may be left out of the doc, but those shown must be
    printed. Every other line must match one for one, in any order (answers come in any order).
    """
    actual = [line for line in output.splitlines() if line.strip()]
    for e in (e for e in expected if e.startswith(";")):
        if not any(line_matches(e, a) for a in actual):
            return f"no line like {e!r}"
    unmatched = [a for a in actual if not a.startswith(";")]
    for e in (e for e in expected if not e.startswith(";")):
        hit = next((a for a in unmatched if line_matches(e, a)), None)
        if hit is None:
            return f"expected {e!r}"
        unmatched.remove(hit)
    if unmatched:
        return f"lines the doc does not show: {unmatched}"
    return None
