"""One value converted by its setting's own converter, wherever it came from (a file, a variable, a
Corefile): nothing about a setting is defined twice."""

from __future__ import annotations

from typing import Any

from clusterdns.config.settings import Setting, settings
from clusterdns.errors import ClusterDNSError, ConfigError, shown

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _settings() -> dict[str, tuple[Any, Setting]]:
    return {name: (default, s) for name, default, s in settings()}


def convert_value(name: str, value: Any, where: str) -> Any:
    """A file's value for setting `name`, converted as its flag would convert it.

    A repeatable setting takes a list, or one string (comma-separated, like its CLUSTERDNS_
    variable); a switch takes true/false; a setting whose value is a list but whose flag
    takes one comma-separated word (`namespaces`) takes either form too.
    """
    default, s = _settings()[name]
    if value is None:
        raise ConfigError(f"{where}: no value given")
    if value is False and _turned_off_by_none(s):  # `health: off` (YAML 1.1 reads off, no as false)
        raise ConfigError(f"{where}: YAML reads this as false; write none to turn it off")
    if s.switch:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
            return value.strip().lower() in TRUE
        raise ConfigError(f"{where}: expected true or false, not {shown(value)}")
    if s.repeat:
        items = value if isinstance(value, (list, tuple)) else _scalar(value, where).split(",")
        return tuple(_convert_one(s, item, where) for item in items if not isinstance(item, str) or item.strip())
    if isinstance(value, (list, tuple)):
        if not isinstance(default, tuple):
            raise ConfigError(f"{where}: expected one value, not a list")
        value = ",".join(_scalar(item, where) for item in value)
    return _convert_one(s, value, where)


def _turned_off_by_none(s: Setting) -> bool:
    """Whether the word `none` turns the setting off (its converter makes None of it: --health, --hosts-file)."""
    try:
        return s.convert is not None and s.convert("none") is None
    except (ValueError, ClusterDNSError):
        return False


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a word or number, not {str(value).lower()} (quote it if you mean the text)")
    if value is None or isinstance(value, (dict, list, tuple)):
        what = "null" if value is None else "a mapping" if isinstance(value, dict) else "a nested list"
        raise ConfigError(f"{where}: expected a word or number, not {what}")
    return str(value).strip()


def _convert_one(s: Setting, value: Any, where: str) -> Any:
    text = _scalar(value, where)
    if s.choices and text not in s.choices:
        raise ConfigError(f"{where}: {shown(text)} is not one of {', '.join(s.choices)}")
    try:
        return (s.convert or str)(text)
    except (ValueError, ClusterDNSError) as e:
        if s.convert is int and text.isascii() and text.lstrip("-").isdigit():  # past int()'s 4,300 digits
            raise ConfigError(f"{where}: {shown(text)} is out of range") from None
        if s.convert in (int, float):  # Python's own words ("invalid literal for int()") are not the user's
            raise ConfigError(f"{where}: expected {'a whole number' if s.convert is int else 'a number'}, not {shown(text)}") from None
        raise ConfigError(f"{where}: {e}") from None
