"""A pretty-printed JSON List (`kubectl get -o json`, jq) split into its items' texts, so a
re-read parses only the items that changed (a dump of 1,600 objects is one 11 MB document).

JSON strings hold no raw line break (RFC 8259 section 7: control characters are escaped),
so every line break in such a file is layout. In a List as kubectl or jq indent it, each
item opens with a line `<indent>{` and closes with the first line `<indent>}` or
`<indent>},` after it, and every line between is indented deeper. A file laid out
otherwise (minified, hand-written) is not split: it is read whole, as before.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator, Sequence

from clusterdns.manifests.documents import ReadResult, expand, first_content_line, is_list, json_documents, list_item

_TOP = re.compile(r'\{\n([ \t]+)"')  # the object's opening brace alone on the first line, then its first key


def split_items(text: str) -> tuple[str, list[str]] | None:
    """(the List's text without its items, each item's text), or None when it is not laid out as above.

    The List's own `items` is the line at the indentation of its first key (a nested
    "items" is deeper), and its last item is followed by that indentation's `]`."""
    top = _TOP.match(text)
    if top is None:
        return None
    found = re.search("^" + re.escape(top.group(1)) + r'"items": \[\n', text, re.MULTILINE)
    if found is None:
        return None
    start = pos = found.end()
    body = text[start : start + 200]
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    if len(indent) <= len(top.group(1)) or not body.startswith(indent + "{\n"):
        return None
    close = re.compile("\n" + re.escape(indent) + r"\}(,?)\n")
    shallow = re.compile("\n(?!" + re.escape(indent) + r"[ \t])")  # a line not indented deeper than the items
    items = []
    while True:
        end = close.search(text, pos)
        if end is None or not text.startswith(indent + "{\n", pos):
            return None
        if shallow.search(text, pos, end.start()):  # in place: no copy of the item
            return None
        items.append(text[pos : end.start() + len(indent) + 2])  # through its "}"
        pos = end.end()
        if not end.group(1):  # no comma: the last item
            return (text[:start] + text[pos:], items) if text.startswith(top.group(1) + "]", pos) else None


def item_keys(head: str, items: Sequence[str]) -> array[int]:
    """The List's key (its text without the items) and each item's (its index and text)."""
    return array("q", [hash(head), *(hash((i, item)) for i, item in enumerate(items))])


def json_file(rel: str, text: str, previous: Sequence[int]) -> tuple[list[ReadResult], array[int], frozenset[int]]:
    """A JSON file's documents, its keys and the items left unread because their keys are
    those of `previous` (then the List around them is the same too)."""
    split = split_items(text)
    if split is None:
        return list(json_documents(rel, text)), array("q"), frozenset()
    head, items = split
    keys = item_keys(head, items)
    same = frozenset([i for i, (key, old) in enumerate(zip(keys[1:], previous[1:])) if key == old]) if previous[:1] == keys[:1] else frozenset()
    if same:
        changed = _parsed_items(items, same)
        if changed is not None:
            return list(_documents(rel, head, changed)), keys, same
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return list(json_documents(rel, text)), array("q"), frozenset()  # its error, as a fresh read gives it
    entries = list(expand(rel, "0", first_content_line(text, 1), data))
    laid_out = isinstance(data, dict) and is_list(data) and isinstance(data.get("items"), list) and len(data["items"]) == len(items)
    return entries, (keys if laid_out else array("q")), frozenset()


def _parsed_items(items: list[str], skip: frozenset[int]) -> dict[int, object] | None:
    """The items not skipped, parsed; None when one does not parse (the whole file is then
    read again, for the error a fresh read gives)."""
    try:
        return {i: json.loads(text) for i, text in enumerate(items) if i not in skip}
    except json.JSONDecodeError:
        return None


def _documents(rel: str, head: str, items: dict[int, object]) -> Iterator[ReadResult]:
    data = json.loads(head)  # the List less its items: the same as the previous read's, which parsed
    line = first_content_line(head, 1)
    for i, item in items.items():
        yield from list_item(rel, "0", line, data, i, item)
