"""Where settings come from, in precedence order: flags > CLUSTERDNS_* variables > the YAML
`--config` file > the `--corefile` > the defaults.

Every value, wherever it comes from, goes through its setting's own converter
(settings.py), so nothing about a setting is defined twice. Files produce a dict of
converted values (never a Config), so flags and variables can be laid over them.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
from collections.abc import Mapping
from typing import Any

from clusterdns.config.addresses import hostport_text
from clusterdns.config.convert import convert_value
from clusterdns.config.corefile import load_corefile
from clusterdns.config.reread import ConfigSources
from clusterdns.config.settings import SERVING_ONLY, Config, settings
from clusterdns.errors import ConfigError, shown
from clusterdns.names import is_dns1123_label

log = logging.getLogger("clusterdns")
UNSET = object()  # a flag not given (None is a real value: `--health none`)


# --- the YAML config file ----------------------------------------------------------------------


def setting_keys() -> dict[str, str]:
    """Every key a config file may use -> the setting: the Config field name and its flag's
    name (`zones` and `zone`, `ns_address` and `ns-address`), with `-` or `_`."""
    keys: dict[str, str] = {}
    for name, _, s in settings():
        for key in (name, s.flag.lstrip("-")):
            keys[key.replace("-", "_")] = name
    return keys


def load_config_file(path: str) -> dict[str, Any]:
    """The settings of a YAML config file, converted; ConfigError naming the file and key."""
    import yaml

    from clusterdns.yaml_scalars import SafeLoader  # 2024-02-30 or 5,000 digits: the text, which the setting then refuses by name

    class Loader(SafeLoader):
        """safe_load, but a key given twice in one mapping is an error, not the last one winning."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: setting {shown(key)} given twice")
                seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=Loader)  # noqa: S506 (a SafeLoader)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting: value, not a {type(data).__name__}")
    keys = setting_keys()
    values: dict[str, Any] = {}
    for key, value in data.items():
        name = keys.get(str(key).strip().replace("-", "_"))
        if name is None:
            close = difflib.get_close_matches(str(key).replace("-", "_"), sorted(set(keys.values())), n=1)
            hint = f" (did you mean {shown(close[0])}?)" if close else ""
            raise ConfigError(f"{path}: unknown setting {shown(key)}{hint}; the settings are the long flags of `clusterdns serve`")
        if name in values:
            raise ConfigError(f"{path}: setting {shown(name)} given twice")
        values[name] = convert_value(name, value, f"{path}: {key}")
    return values


# --- flags and the environment -----------------------------------------------------------------


def add_config_flags(parser: argparse.ArgumentParser, offline: bool = False) -> None:
    """One flag per Config field, from its Setting; the help shows the default (_with_default).
    `offline`: a command that reads the manifests once (check, records, ...): the SERVING_ONLY
    flags are taken but not listed (the epilog says so), and the manifests are not said to be watched."""
    if offline:
        parser.epilog = "The flags of `clusterdns serve` that only change how it listens, answers or forwards are taken too, and not listed here."
    for name, default, s in settings():
        kw: dict[str, Any] = {"dest": name, "help": _with_default(s.help, default) if not s.switch else s.help}
        if offline:
            kw["help"] = argparse.SUPPRESS if name in SERVING_ONLY else kw["help"].replace(" (watched)", "")
        if s.switch:
            kw["action"] = "store_true"
        else:
            if s.metavar:
                kw["metavar"] = s.metavar
            if s.choices:
                kw["choices"] = s.choices
            if s.convert:
                kw["type"] = _flag_type(s.convert)
            if s.repeat:
                kw["action"] = "append"
        parser.add_argument(s.flag, **kw)
    # Unset flags are told apart from `none` values: None for repeatable flags (argparse
    # appends to the default), a sentinel for the rest.
    parser.set_defaults(**{name: None if s.repeat else UNSET for name, _, s in settings() if not s.switch})


def _flag_type(convert: Any) -> Any:
    """A setting's converter as argparse calls it: its ConfigError becomes argparse's own error
    (`argument --listen: port out of range in '127.0.0.1:99999'`, exit 2), not a traceback."""

    def flag_value(text: str) -> Any:
        try:
            return convert(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    flag_value.__name__ = getattr(convert, "__name__", "value")  # what argparse names on a ValueError
    return flag_value


def _with_default(help: str, default: Any) -> str:
    """The help text and the setting's default, unless the text already says it or there is none."""
    if "default" in help or default in ((), None, ""):
        return help
    if isinstance(default, tuple) and len(default) == 2 and isinstance(default[1], int):
        text = hostport_text(*default)  # one address
    elif isinstance(default, tuple):
        text = " ".join(hostport_text(*d) if isinstance(d, tuple) else str(d) for d in default)
    else:
        text = str(default)
    return f"{help} (default: {text})"


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    """Flags first, then CLUSTERDNS_<SETTING> environment variables, then the --config file
    (or CLUSTERDNS_CONFIG), then the --corefile (or CLUSTERDNS_COREFILE), then the defaults.

    A variable is converted as a config file's value is (corefile.convert_value): a
    repeatable setting takes a comma-separated list (CLUSTERDNS_UPSTREAM=10.0.0.2,10.0.0.3),
    a switch 1/true/yes/on or 0/false/no/off (empty: off), a choice one of its words.
    The Corefile's warnings (plugins accepted but not implemented) are logged here.
    """
    env = os.environ if environ is None else environ
    config_file = getattr(args, "config", None) or env.get("CLUSTERDNS_CONFIG")
    corefile = getattr(args, "corefile", None) or env.get("CLUSTERDNS_COREFILE")
    values, warnings = file_values(config_file, corefile, env)
    for warning in warnings:
        log.warning("%s", warning)
    for name, _, s in settings():
        value = getattr(args, name)
        if value is UNSET or (value is None and s.repeat) or (s.switch and value is False):
            raw = env.get(f"CLUSTERDNS_{name.upper()}")
            if raw is None:
                continue
            value = False if s.switch and not raw.strip() else convert_value(name, raw, f"CLUSTERDNS_{name.upper()}={shown(raw)}")
        values[name] = tuple(value) if s.repeat and value is not None else value
    config = Config(**values)
    for namespace in config.namespaces:  # CoreDNS takes any word too; this one can match nothing
        if not is_dns1123_label(namespace):
            log.warning("--namespaces %s: no namespace can be named so (a DNS-1123 label: a-z, 0-9 and '-'): it matches none", shown(namespace))
    return config


def config_sources(args: argparse.Namespace, environ: dict[str, str] | None = None) -> ConfigSources:
    """The files the settings come from, and how to make the Config of them again (for --reload)."""
    env = dict(os.environ if environ is None else environ)
    return ConfigSources(getattr(args, "corefile", None) or env.get("CLUSTERDNS_COREFILE"),
                         getattr(args, "config", None) or env.get("CLUSTERDNS_CONFIG"), env, lambda: config_from_args(args, env))


def file_values(config: str | None, corefile: str | None, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Corefile's settings with the config file's laid over them, and the warnings."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    if corefile:
        values, warnings = load_corefile(corefile, environ)
    if config:
        values.update(load_config_file(config))
    return values, warnings
