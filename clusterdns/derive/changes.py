"""Where a list of objects changed since the previous run: the places a patch redoes."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from operator import is_not


def changed_at(old: Sequence[object], new: Sequence[object]) -> list[int] | None:
    """Where `new` holds other objects than `old` (the same length), when that is at most one
    in eight of them; else None (then a step computes in full rather than patch)."""
    if len(old) != len(new):
        return None
    changed = list(compress(range(len(new)), map(is_not, old, new)))
    return changed if len(changed) <= len(new) // 8 else None
