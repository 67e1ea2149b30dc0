"""YAML documents built straight from libyaml's events: PyYAML's safe loading, twice as fast
for the plain data of manifests (see `_document`)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from clusterdns.yaml_scalars import LENIENT_SCALARS, lenient

try:  # libyaml is ~10x faster than the pure-Python loader
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"


# PyYAML's own constructors for the YAML 1.1 scalars (`yes` is a bool, `0o17` an int, ...).
_SCALARS = {
    f"tag:yaml.org,2002:{name}": SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in ("null", "bool", "int", "float", "binary", "timestamp")
}
_SCALARS.update(LENIENT_SCALARS)  # an impossible date or an overlong integer: its text (yaml_scalars.py)
# First characters for which a plain scalar may be something other than a string.
_RESOLVED_FIRST = frozenset(k for k in _BaseLoader.yaml_implicit_resolvers if k is not None)
_SIMPLE_RESOLVERS = None not in _BaseLoader.yaml_implicit_resolvers and not _BaseLoader.yaml_path_resolvers
_resolved: dict[str, str] = {}  # plain scalar -> tag, for those that start with such a character
_RESOLVED_MAX = 20_000


@lenient  # yaml.load(..., Loader=_Loader) constructs as _document does
class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader; a plain scalar's tag is resolved once per distinct value.

    libyaml calls back into Python to resolve each plain scalar. One whose first character
    starts none of the YAML 1.1 implicit patterns (bool, int, float, null, timestamp,
    merge...) is a string, as PyYAML finds after trying no pattern; the others are cached.
    """

    if _SIMPLE_RESOLVERS:

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is ScalarNode and implicit[0]:
                if value[:1] not in _RESOLVED_FIRST:
                    return _STR
                tag = _resolved.get(value)
                if tag is None:
                    if len(_resolved) >= _RESOLVED_MAX:
                        _resolved.clear()
                    tag = _resolved[value] = super().resolve(kind, value, implicit)
                return tag
            return super().resolve(kind, value, implicit)


try:  # the plain path in C, built when libyaml's headers were there (pyproject.toml)
    from clusterdns.manifests import _yamlstream
except ImportError:  # pragma: no cover - then every stream is read in Python
    _yamlstream = None


class _NotPlain(Exception):
    """A document `_document` leaves to PyYAML's own construction."""


_NO_KEY = object()


def _document(loader: Any) -> Any:
    """The next document's data, built straight from libyaml's events (after its DocumentStartEvent).

    PyYAML's `load` first composes the whole document into nodes (two Marks each), then
    walks them with generic, generator-based constructors. Building from the events is
    what that gives, for the plain data of manifests: mappings, sequences, anchors and the
    YAML 1.1 scalars (with PyYAML's own scalar constructors). Anything else (merge keys
    `<<`, `!!set`, unknown tags, an unhashable key, an undefined or repeated anchor) raises
    _NotPlain, and the caller lets PyYAML read the document: its result or its error.

    20,000 documents (10,000 Services + Deployments): stock CSafeLoader 79 µs per document,
    this 40 (median of 7). A 10 MB `kubectl get -o yaml` List of 30,000 items, one document:
    9.0 s and 670 MB peak before, 1.6 s and 145 MB (the nodes were never all alive at once).
    """
    anchors: dict[str, Any] = {}
    stack: list[list[Any]] = []  # [container, its pending key] for each open mapping/sequence
    root = None
    get_event, resolve = loader.get_event, loader.resolve
    while True:
        event = get_event()
        cls = event.__class__
        if cls is ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(ScalarNode, event.value, event.implicit)
            value = _constructed(loader, tag, event.value)
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.tag not in (None, "!", _MAP if cls is MappingStartEvent else _SEQ):
                raise _NotPlain(event.tag)
            value = {} if cls is MappingStartEvent else []
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            root = stack.pop()[0]
            continue
        elif cls is AliasEvent:
            if event.anchor not in anchors:
                raise _NotPlain("undefined alias")
            value = anchors[event.anchor]
        elif cls is DocumentEndEvent:
            return root
        else:
            raise _NotPlain(cls.__name__)
        if cls is not AliasEvent and event.anchor is not None:
            if event.anchor in anchors:
                raise _NotPlain("repeated anchor")
            anchors[event.anchor] = value
        if not stack:
            root = value
        elif stack[-1][0].__class__ is list:
            stack[-1][0].append(value)
        elif stack[-1][1] is _NO_KEY:
            if value.__class__ is dict or value.__class__ is list:
                raise _NotPlain("unhashable key")
            stack[-1][1] = value
        else:
            stack[-1][0][stack[-1][1]] = value
            stack[-1][1] = _NO_KEY
        if cls is MappingStartEvent or cls is SequenceStartEvent:
            stack.append([value, _NO_KEY])


def _constructed(loader: Any, tag: str, value: str) -> Any:
    """A scalar's value by its tag, with PyYAML's scalar constructors; _NotPlain for a tag left to PyYAML."""
    if tag == _STR:
        return value
    if tag == _INT and value.isdigit() and value[0] != "0" and len(value) < 20:  # ports: a plain decimal
        return int(value)
    scalar = _SCALARS.get(tag)
    if scalar is None:
        raise _NotPlain(tag)
    return scalar(loader, ScalarNode(tag, value))


_PLAIN_LOADER = _Loader("")  # resolves and constructs the plain scalars the C reader asks about


def _plain(value: str) -> Any:
    """An untagged plain scalar's value, as _document makes it (the C reader's callback)."""
    return _constructed(_PLAIN_LOADER, _PLAIN_LOADER.resolve(ScalarNode, value, (True, False)), value)


# The C reader resolves by first byte, and always resolves an empty plain scalar: so only
# while the resolvers start with single ASCII characters and the empty one (null) is there.
if _yamlstream is not None and _SIMPLE_RESOLVERS and "" in _RESOLVED_FIRST and all(len(k) == 1 and k.isascii() for k in _RESOLVED_FIRST - {""}):
    _yamlstream.configure(_plain, "".join(sorted(_RESOLVED_FIRST)).encode())
else:  # pragma: no cover
    _yamlstream = None

# An explicit key `?` in a flow collection: libyaml 0.2.5 (linked by the C reader) and the
# libyaml PyYAML bundles read `[ ? ]` differently (libyaml 588eabf, 840b65c), so the
# Python reading decides.
_FLOW_EXPLICIT_KEY = re.compile(r"\?(?=[\s\],]|$)")


def _c_stream(text: str, chunks: list[tuple[str, int]]) -> list[Any] | None | bool:
    """load_stream's documents read in C; None when they do not fit the chunks (as load_stream
    finds), False when the C reader leaves the text to Python (see _yamlstream.c)."""
    if _yamlstream is None or ("[" in text and _FLOW_EXPLICIT_KEY.search(text)):
        return False
    read = _yamlstream.load(text)
    return False if read is None else _in_chunks(read, chunks)


def _in_chunks(read: list[tuple[int, Any]], chunks: list[tuple[str, int]]) -> list[Any] | None:
    """The documents of `read` ((line of its content, data) each), when there is one per chunk
    and each starts inside its own; None otherwise (then every chunk is read alone)."""
    if len(read) != len(chunks):
        return None
    for index, (line, data) in enumerate(read):
        if data is not None and (line < chunks[index][1] or (index + 1 < len(chunks) and line >= chunks[index + 1][1])):
            return None
    return [data for _, data in read]


def load_document(chunk: str) -> Any:
    """The one document of a chunk (None when empty), as `yaml.load` with a safe loader gives it."""
    loader = _Loader(chunk)
    try:
        loader.get_event()  # StreamStartEvent
        data = None
        if not loader.check_event(StreamEndEvent):
            loader.get_event()  # DocumentStartEvent
            data = _document(loader)
        if loader.check_event(StreamEndEvent):
            return data
    except Exception:  # noqa: BLE001 - PyYAML's own reading says what is wrong, if anything
        pass
    finally:
        loader.dispose()
    return yaml.load(chunk, Loader=_Loader)  # a safe loader: plain data only


def load_stream(text: str, chunks: list[tuple[str, int]]) -> list[Any] | None:
    """Each chunk's document, read with one loader for the whole file; None when that may differ.

    A loader per document cost 14 µs of set-up each (20,000 documents: 0.3 s). The whole
    file is read at once when it parses, has no `%` directive (those end a chunk, not
    start the next document), and yields one document per chunk, each starting inside its
    chunk. Otherwise (None) every chunk is read alone, for per-document errors and lines.
    """
    if text.startswith("%") or "\n%" in text:  # a directive line
        return None
    in_c = _c_stream(text, chunks)
    if in_c is not False:
        return in_c  # type: ignore[return-value]
    read: list[tuple[int, Any]] = []
    loader = _Loader(text)
    try:
        loader.get_event()  # StreamStartEvent
        while not loader.check_event(StreamEndEvent):
            if len(read) >= len(chunks):
                return None
            loader.get_event()  # DocumentStartEvent
            line = loader.peek_event().start_mark.line + 1  # where the content starts
            read.append((line, _document(loader)))
    except Exception:  # noqa: BLE001 - read chunk by chunk instead: each document's own result or error
        return None
    finally:
        loader.dispose()
    return _in_chunks(read, chunks)
