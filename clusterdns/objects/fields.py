"""Reading one manifest's fields with validation: every failure names the file, document,
line and field (ManifestError), every oddity becomes a warning."""

from __future__ import annotations

import ipaddress
import re
import sys
from contextlib import suppress
from dataclasses import dataclass, field
from socket import AF_INET, inet_ntoa, inet_pton
from typing import Any, TypeVar

from clusterdns.errors import ManifestError, Problem, shown
from clusterdns.manifests.documents import Document
from clusterdns.model import Source
from clusterdns.objects.kinds import PROTOCOLS, Labels

_V = TypeVar("_V")

# Name grammars of k8s.io/apimachinery/pkg/util/validation (spec 2.5).
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class Interner:
    """Equal immutable values kept once: a workload's Pods and the Services that select them have
    equal label sets and port lists (10,000 Services + 50,000 Pod manifests: 63 -> 36 MB of objects)."""

    LIMIT = 50_000  # values kept; all are dropped when it is reached

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}

    def __call__(self, value: _V) -> _V:
        """An equal value seen before (immutable and hashable), or this one."""
        found = self.values.get(value)
        if found is None:
            if len(self.values) >= self.LIMIT:
                self.values.clear()
            self.values[value] = found = value
        return found  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Reading:
    """How documents are read: the feature gates that change validation, and the interner
    (owned by whoever reads many files: objects/store.py's ManifestStore)."""

    relaxed_service_names: bool = False  # Service names may start with a digit (RelaxedServiceNameValidation)
    share: Interner = field(default_factory=Interner)


class Reader:
    """Validation context for one document: raises ManifestError naming file, line and field."""

    def __init__(self, doc: Document, kind: str, problems: list[Problem] | None, reading: Reading) -> None:
        self.doc = doc
        self.kind = kind
        self.name = ""
        self.problems = problems
        self.relaxed_service_names = reading.relaxed_service_names
        self.share = reading.share
        self.source = Source(doc.file, doc.doc, doc.line)

    def problem(self, level: str, field: str, message: str) -> Problem:
        d = self.doc
        return Problem(level, message, file=d.file, doc=d.doc, line=d.line, kind=self.kind, name=self.name, field=field)

    def fail(self, field: str, message: str) -> ManifestError:
        return ManifestError(self.problem("error", field, message))

    def warn(self, field: str, message: str) -> None:
        if self.problems is not None:
            self.problems.append(self.problem("warning", field, message))

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(field, f"must be a mapping, not {_type_name(value)}")
        return value

    def entry(self, value: Any, sequence: str, index: int) -> dict[str, Any]:
        """Entry `index` of the list at field `sequence`, a mapping (or null); its field is named
        only for an error (kubectl's Pod has five conditions: 3.4 -> 1.9 µs)."""
        return value if type(value) is dict else self.mapping(value, f"{sequence}[{index}]")

    def sequence(self, value: Any, field: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(field, f"must be a list, not {_type_name(value)}")
        return value

    def string(self, value: Any, field: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(field, f"must be a string, not {_type_name(value)}")
        return str(value)

    def flag(self, value: Any, field: str) -> bool:
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise self.fail(field, f"must be true or false, not {shown(value)}")

    def integer(self, value: Any, field: str, low: int, high: int) -> int:
        if isinstance(value, str) and len(value) > sys.get_int_max_str_digits() > 0 and value.isascii() and value.lstrip("-").isdigit():
            # A number too long to read, kept as its text (yaml_scalars._or_text, documents._json_loads)
            raise self.fail(field, f"{shown(value)} is out of range {low}-{high}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"must be an integer, not {_type_name(value)} {shown(value)}")
        if not low <= value <= high:
            raise self.fail(field, f"{shown(value)} is out of range {low}-{high}")
        return value

    def port(self, value: Any, field: str) -> int:
        if value is None:
            raise self.fail(field, "required")
        return self.integer(value, field, 1, 65535)

    def protocol(self, value: Any, field: str) -> str:
        if value is None:
            return "TCP"  # API default
        proto = PROTOCOL_OF.get(self.string(value, field).upper())
        if proto is None:
            raise self.fail(field, f"unsupported protocol {shown(value)} (TCP, UDP or SCTP)")
        return proto

    def ip(self, value: Any, field: str) -> str:
        text = self.string(value, field).strip()
        if ":" not in text:
            # An IPv4 address already written as inet_ntoa writes it is what ipaddress's
            # canonical text gives: 0.3 µs rather than 3 (150,000 Pods each give two).
            with suppress(OSError, ValueError):  # not an address, or a NUL or surrogate in it
                if inet_ntoa(inet_pton(AF_INET, text)) == text:
                    return text
        try:
            if "%" in text:  # zone-scoped IPv6 is never a Kubernetes address
                raise ValueError(text)
            return ipaddress.ip_address(text).compressed
        except ValueError:
            raise self.fail(field, f"{shown(value)} is not an IP address") from None

    def dns_name(self, value: Any, field: str, grammar: re.Pattern[str], what: str, required: bool = True) -> str:
        text = self.string(value, field)
        if not text:
            if required:
                raise self.fail(field, "required")
            return ""
        limit = 253 if grammar is DNS1123_SUBDOMAIN else 63
        if len(text) > limit or not grammar.fullmatch(text):
            raise self.fail(field, f"{shown(text)} is not a valid {what}")
        return text

    def hostname(self, value: Any, field: str) -> str:
        """An optional hostname (Pod spec.hostname, an endpoint's hostname): one DNS-1123 label."""
        return self.dns_name(value, field, DNS1123_LABEL, "hostname (DNS-1123 label)", required=False)

    def labels(self, value: Any, field: str) -> Labels:
        return self.share(tuple(sorted((str(k), label_value(v)) for k, v in self.mapping(value, field).items())))


PROTOCOL_OF = {p: p for p in PROTOCOLS}  # one string each, not one per port


def label_value(value: Any) -> str:
    """A label value as the API would hold it (YAML may have read `true` or `1` as non-strings)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def api_group(api_version: Any) -> str | None:
    """The API group of an apiVersion ("" for core v1); None when it is not a string."""
    if not isinstance(api_version, str):
        return None
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def metadata(
    r: Reader, data: dict[str, Any], namespaced: bool, name_grammar: re.Pattern[str], what: str
) -> tuple[str, str, dict[str, Any]]:
    meta = r.mapping(data.get("metadata"), "metadata")
    name = r.string(meta.get("name"), "metadata.name")
    r.name = name
    r.dns_name(name, "metadata.name", name_grammar, what)
    namespace = ""
    if namespaced:
        # No metadata.namespace means the namespace kubectl applies to: `default`.
        namespace = r.dns_name(meta.get("namespace") or "default", "metadata.namespace", DNS1123_LABEL, "namespace name (DNS-1123 label)")
        namespace = sys.intern(namespace)
        r.name = f"{namespace}/{name}"
    return namespace, name, meta


def owners(r: Reader, meta: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    refs = [r.entry(ref, "metadata.ownerReferences", i) for i, ref in enumerate(r.sequence(meta.get("ownerReferences"), "metadata.ownerReferences"))]
    refs.sort(key=lambda ref: not ref.get("controller"))  # the managing controller first
    # Shared: a ReplicaSet's 15 Pods name the same owner (150,000 Pods from kubectl: 30 MB less).
    return r.share(tuple([(str(ref.get("kind", "")), str(ref.get("name", ""))) for ref in refs]))
