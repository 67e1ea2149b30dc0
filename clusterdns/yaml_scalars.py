"""YAML scalars as clusterdns reads them, manifests and --config files alike: PyYAML's safe
constructors, but a plain scalar they cannot make is its text, as Kubernetes' reader has it."""

from __future__ import annotations

from typing import Any, TypeVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode

from clusterdns.errors import printable, shown

_RESOLVER = yaml.resolver.Resolver()  # the implicit tags of YAML 1.1, as the safe loaders resolve them


def _or_text(construct: Any) -> Any:
    """PyYAML's constructor of a scalar type, giving a plain scalar it cannot make its text.

    An impossible date (`2024-02-30`, which PyYAML's timestamp pattern matches) or an integer
    too long to print (past Python's 4,300 decimal digits, sys.get_int_max_str_digits; hex,
    octal and base 60 are read without that limit) is the string it is written as: what
    go-yaml v2, which Kubernetes reads YAML with (sigs.k8s.io/yaml), makes of a plain scalar
    that is no valid timestamp and no number it can hold (resolve.go). Without this, one
    such value stopped the whole read. A value tagged explicitly (`!!int abc`, `!!bool maybe`,
    `!!timestamp abc`) that is none is a problem of its document, as in go-yaml."""

    def construct_or_text(loader: Any, node: ScalarNode) -> Any:
        try:
            value = construct(loader, node)
        except Exception as e:  # noqa: BLE001 - ValueError, KeyError (`!!bool maybe`), AttributeError (`!!timestamp abc`)
            if _RESOLVER.resolve(ScalarNode, node.value, (True, False)) != node.tag:  # tagged, not resolved
                raise ConstructorError(None, None, f"{shown(node.value)} is not a valid {node.tag.rsplit(':', 1)[-1]}", node.start_mark) from None
            if not isinstance(e, ValueError):
                raise
            return node.value
        if value.__class__ is int and not printable(value):
            return node.value
        return value

    return construct_or_text


# Tag -> constructor: the scalars whose constructors can fail (null, str and binary cannot,
# or raise YAML's own error). manifests/yaml_fast.py also builds scalars with them directly.
LENIENT_SCALARS = {
    f"tag:yaml.org,2002:{name}": _or_text(SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{name}"]) for name in ("int", "float", "bool", "timestamp")
}

Loader = TypeVar("Loader", bound=type)


def lenient(loader: Loader) -> Loader:
    """A class decorator: the safe loader `loader` constructs its scalars with LENIENT_SCALARS
    (the manifests', --config's and --cases' readers)."""
    for tag, construct in LENIENT_SCALARS.items():
        loader.add_constructor(tag, construct)  # type: ignore[attr-defined]
    return loader


@lenient
class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader with LENIENT_SCALARS: the reader of --config and --cases files (the manifests
    have their own, manifests/yaml_fast.py, lenient in the same way)."""
