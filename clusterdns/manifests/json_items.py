"""A JSON manifest file's documents: a List's items split without parsing them (so a re-read
parses only the items that changed) and each Pod item decoded only in the fields DNS reads.

msgspec rather than the json module: its decoder skips, in C, the parts of a document its
target type does not name. A Pod as `kubectl get pods -o json` writes it is 7 KB, of which
DNS reads its name, labels, owners, hostname, ports, IPs and readiness; the rest (volumes,
tolerations, container statuses) is skipped without building a Python object, so such a
Pod's Document holds only those fields. One 11 MB dump of 1,500 Pods and 100 Services:
31 ms here, 45 ms for json.loads alone (which left the items still to split).

A file msgspec does not read as json.loads would (NaN or Infinity, which json.loads takes, a
lone surrogate escape, a number out of range, a parse error) is read by json.loads, as a
file that is not a List is: every file reads to the same objects and problems either way
(tests/manifests/test_json_items.py). One exception, a limit rather than a reading: both
count their nesting against the interpreter's recursion limit, from stack depths a few
frames apart, so a document nested within a few levels of about 1,000 can be read by one
and be "nested too deeply" for the other.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any, TypedDict

import msgspec

from clusterdns.manifests.documents import ReadResult, first_content_line, is_list, json_documents, list_item


class _List(TypedDict, total=False):
    kind: Any
    apiVersion: Any
    items: list[msgspec.Raw]  # each item's text, checked but not parsed


# A Pod item as objects/pods.py pod() and objects/convert.py read it: every key they look at,
# and nothing else (checked by tests/manifests/test_json_items.py, which records the keys they
# read). A key of another type than these (a `spec` that is a list) fails the decoding, and the
# item is decoded in full, for the converter's own error.
class _PodMetadata(TypedDict, total=False):
    name: Any
    namespace: Any
    labels: Any
    deletionTimestamp: Any
    ownerReferences: Any


class _Container(TypedDict, total=False):
    ports: Any


class _PodSpec(TypedDict, total=False):
    hostname: Any
    subdomain: Any
    nodeName: Any
    containers: list[_Container]


class _PodCondition(TypedDict, total=False):
    type: Any
    status: Any


class _PodStatus(TypedDict, total=False):
    phase: Any
    podIP: Any
    podIPs: Any
    conditions: list[_PodCondition]


class _Pod(TypedDict, total=False):
    apiVersion: Any
    kind: Any
    metadata: _PodMetadata
    spec: _PodSpec
    status: _PodStatus


_LIST = msgspec.json.Decoder(_List)
_POD = msgspec.json.Decoder(_Pod)
_ANY = msgspec.json.Decoder()
_KEY = msgspec.json.Encoder()


class _ReadWhole(Exception):
    """Not a List (one document, or a mapping whose kind is no List): json.loads reads it whole."""


def json_file(rel: str, data: bytes, previous: Sequence[int]) -> tuple[list[ReadResult], array[int], frozenset[int]]:
    """A JSON file's documents (`data`: its UTF-8 bytes less a BOM), its keys, and the List items
    left unread because their keys are those of `previous` (then the List around them is the same too).

    The keys: the List's (its kind, apiVersion and first line: what its items are read with)
    and each item's (its index and text). A file that is not a List has none."""
    try:
        return _list_file(rel, data, previous)
    except (_ReadWhole, msgspec.MsgspecError, RecursionError):
        return list(json_documents(rel, data.decode())), array("q"), frozenset()


def _list_file(rel: str, data: bytes, previous: Sequence[int]) -> tuple[list[ReadResult], array[int], frozenset[int]]:
    head = _LIST.decode(data)
    items = head.get("items")
    if items is None or not is_list(head):
        raise _ReadWhole  # one document (or a mapping with "kind" not a List): read whole
    line = _first_line(data)
    kind, api_version = head["kind"], head.get("apiVersion")
    keys = array("q", [hash(_KEY.encode([kind, api_version, line])), *(hash((i, bytes(item))) for i, item in enumerate(items))])
    same = frozenset([i for i, (key, old) in enumerate(zip(keys[1:], previous[1:])) if key == old]) if previous[:1] == keys[:1] else frozenset()
    around = {"kind": kind, "apiVersion": api_version}
    entries = list(_documents(rel, line, around, items, same))
    return entries, keys, same


def _documents(rel: str, line: int, around: dict[str, Any], items: list[msgspec.Raw], skip: frozenset[int]) -> Iterator[ReadResult]:
    item_kind = around["kind"][: -len("List")]
    for i, raw in enumerate(items):
        if i not in skip:
            yield from list_item(rel, "0", line, around, i, _item(raw, item_kind))


def _item(raw: msgspec.Raw, item_kind: str) -> Any:
    """One List item: only the fields DNS reads of a Pod, all of anything else."""
    try:
        pod = _POD.decode(raw)
    except msgspec.ValidationError:  # a field of another type than a Pod's: the converter says which
        # (a number out of range raises again here, and the whole file goes to json.loads)
        return _ANY.decode(raw)
    return pod if pod.get("kind", item_kind) == "Pod" else _ANY.decode(raw)


def _first_line(data: bytes) -> int:
    """The line of the document's first character (JSON's whitespace is space, tab, CR and LF)."""
    start = len(data) - len(data.lstrip(b" \t\r\n"))
    return first_content_line(data[:start].decode() + "{", 1)
