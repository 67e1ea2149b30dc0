"""A manifest file's text as documents: `---` splitting, `kind: List` items, first lines and
parse errors that name the file, document and line."""

from __future__ import annotations

import json
import re
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from clusterdns.errors import Problem
from clusterdns.manifests.yaml_fast import load_document, load_stream


@dataclass(frozen=True)
class Document:
    """One YAML/JSON document: a mapping, where it was found, and its first line."""

    file: str  # path relative to the manifests root, posix separators
    doc: str  # "0", "1", ... or "0/3" for item 3 of a `kind: List` in document 0
    line: int  # 1-based line where the document's content starts (a List item: the List's)
    data: dict[str, Any]


ReadResult = Document | Problem  # what reading a file gives, item by item

# kubectl splits a stream at lines that start with "---" (k8s.io/apimachinery
# pkg/util/yaml YAMLReader); the YAML spec forbids such a line inside content, so
# splitting the text ourselves is safe and gives each document its own line number
# and its own parse error.
_SEPARATOR = re.compile(r"^---(?=[ \t\r]|$)", re.MULTILINE)


def json_documents(rel: str, text: str) -> Iterator[ReadResult]:
    try:
        data = _json_loads(text)
    except json.JSONDecodeError as e:
        yield Problem("error", f"invalid JSON: {e.msg} (column {e.colno})", file=rel, doc="0", line=e.lineno)
        return
    except RecursionError:  # json's C scanner counts its depth against the recursion limit
        yield Problem("error", "invalid JSON: nested too deeply (the limit is a little under 1,000 levels)", file=rel, doc="0", line=first_content_line(text, 1))
        return
    line = first_content_line(text, 1)
    yield from expand(rel, "0", line, data)


def _json_loads(text: str) -> Any:
    """json.loads, with an integer of more than 4,300 digits (Python's limit for reading one,
    sys.get_int_max_str_digits) read as its text, as the YAML reader has it (yaml_scalars._or_text):
    one such number in a field DNS does not read no longer stops the file's read."""
    try:
        return json.loads(text)  # 10x faster than reading the same text as YAML
    except json.JSONDecodeError:
        raise
    except ValueError:  # the digit limit: the only other error the json module raises
        return json.loads(text, parse_int=_int_or_text)


def _int_or_text(digits: str) -> int | str:
    limit = sys.get_int_max_str_digits()
    return int(digits) if not limit or len(digits.lstrip("-")) <= limit else digits


# What a re-read compares to find the documents of a file that did not change: a hash of a
# document's text (Python's str hash is SipHash under a key drawn per process, which the
# forked readers share; an edited document with the same hash is a 2^-64 chance). The same
# text gives the same objects and problems, moved by as many lines as the text moved. Kept
# as 8-byte array items: 150,000 documents in 1.2 MB (as tuples of ints: 25 MB).
def document_keys(chunks: list[tuple[str, int]]) -> array[int]:
    """Each document's key, in order."""
    return array("q", [hash(chunk) for chunk, _ in chunks])


def yaml_documents(rel: str, text: str, chunks: list[tuple[str, int]] | None = None, skip: frozenset[int] = frozenset()) -> Iterator[ReadResult]:
    """The documents of a YAML stream (`chunks`: its split_documents(), when already made), but
    for the indexes in `skip`, whose documents are known from a previous read."""
    chunks = split_documents(text) if chunks is None else chunks
    documents = load_stream(text, chunks) if not skip else None  # a few documents: read alone
    for index, (chunk, start_line) in enumerate(chunks):
        if index in skip:
            continue
        doc = _doc_name(index)
        if documents is not None:
            data = documents[index]
        else:
            try:
                data = load_document(chunk)
            except yaml.YAMLError as e:
                yield _yaml_problem(rel, doc, chunk, start_line, e)
                continue
        if data is None:  # an empty document ("---" twice, or only comments)
            continue
        yield from expand(rel, doc, first_content_line(chunk, start_line), data)


# "0", "1", ... and "0/0", "0/1", ... (a JSON List's items): one string per index for every
# file read here (150,000 Pods' Sources: 8 MB less).
_DOC_NAMES: dict[str, list[str]] = {"": [], "0/": []}


def _doc_name(index: int, prefix: str = "") -> str:
    names = _DOC_NAMES[prefix]
    while len(names) <= index:
        names.append(f"{prefix}{len(names)}")
    return names[index]


def split_documents(text: str) -> list[tuple[str, int]]:
    """Split a YAML stream at `---` lines: (document text, line of its first character).

    Each chunk keeps its own `---` line, so `--- !tag ...` still parses. A leading chunk
    holding only comments or `%` directives is not a document of its own: it is joined
    to the next one.
    """
    starts = [m.start() for m in _SEPARATOR.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    chunks: list[tuple[str, int]] = []
    line = 1
    pending = ""  # leading comments/directives waiting for their document
    pending_line = 1
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        if i == 0 and start == 0 and not chunk.startswith("---") and _only_preamble(chunk) and len(starts) > 1:
            pending, pending_line = chunk, line
        elif pending:
            chunks.append((pending + chunk, pending_line))
            pending = ""
        else:
            chunks.append((chunk, line))
        line += chunk.count("\n")
    return chunks


def _lines(text: str) -> Iterator[str]:
    """The lines of text as `str.splitlines(keepends=True)` gives them, a block at a time.

    Only the first lines are usually wanted: splitting all of a 60 MB `kubectl get -o json`
    dump (one document) to find its first line took 0.5 s and 150 MB.
    """
    size = 4096
    start = 0
    while start < len(text):
        lines = text[start : start + size].splitlines(keepends=True)
        if start + size < len(text):
            lines.pop()  # it may go on in the next block (or end in a "\r" of "\r\n")
            if not lines:  # a line longer than the block
                size *= 2
                continue
        yield from lines
        start += sum(map(len, lines))


def _only_preamble(chunk: str) -> bool:
    """True when a chunk has nothing but blank lines, comments and `%` directives."""
    for raw in _lines(chunk):
        s = raw.strip()
        if s and not s.startswith("#") and not raw.startswith("%"):
            return False
    return True


def first_content_line(chunk: str, start_line: int) -> int:
    """The line of the first non-blank, non-comment line that is not a bare `---`."""
    line = start_line
    for raw in _lines(chunk):
        s = raw.strip()
        bare_marker = raw.startswith("---") and (len(s) == 3 or s[3:].lstrip().startswith("#"))
        if s and not s.startswith("#") and not raw.startswith("%") and not bare_marker:
            return line
        line += 1
    return start_line


def _yaml_problem(rel: str, doc: str, chunk: str, start_line: int, e: yaml.YAMLError) -> Problem:
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = ": ".join(p for p in (e.context, e.problem) if p)
        last_line = start_line + chunk.rstrip("\r\n").count("\n")  # "end of stream" marks point past it
        line = min(start_line + mark.line, last_line)
        return Problem("error", f"invalid YAML: {what} (column {mark.column + 1})", file=rel, doc=doc, line=line)
    return Problem("error", f"invalid YAML: {e}", file=rel, doc=doc, line=start_line)


def expand(rel: str, doc: str, line: int, data: Any) -> Iterator[ReadResult]:
    """One Document, or one per item of a `kind: List` (also typed lists like `ServiceList`)."""
    if not isinstance(data, dict):
        yield Problem("error", f"document is a {type(data).__name__}, not a mapping; ignored", file=rel, doc=doc, line=line)
        return
    items = data.get("items")
    if is_list(data) and isinstance(items, list):
        for i, item in enumerate(items):
            yield from list_item(rel, doc, line, data, i, item)
        return
    yield Document(rel, doc, line, data)


def is_list(data: dict[str, Any]) -> bool:
    """`kind: List`, or a typed list like `ServiceList`."""
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List")


def list_item(rel: str, doc: str, line: int, data: dict[str, Any], i: int, item: Any) -> Iterator[ReadResult]:
    """Item `i` of the List `data` (document `doc`, at `line`)."""
    # Raw API lists (`PodList`) omit kind/apiVersion on their items; `kubectl get
    # -o yaml` writes `kind: List` with complete items.
    item_kind = data["kind"][: -len("List")]
    if isinstance(item, dict) and item_kind and "kind" not in item:
        item = {**item, "kind": item_kind, "apiVersion": item.get("apiVersion", data.get("apiVersion"))}
    yield from expand(rel, _doc_name(i, "0/") if doc == "0" else f"{doc}/{i}", line, item)
