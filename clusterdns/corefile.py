"""Settings from files: a YAML config file (`--config`) and CoreDNS's Corefile (`--corefile`).

Both produce a dict of converted Config values (never a Config), so the command line can
lay flags and CLUSTERDNS_* variables over them: flags > environment > config file >
Corefile > defaults. Every value goes through its setting's own converter (config.py),
so nothing about a setting is defined twice.

The Corefile is read like CoreDNS reads it (coredns/caddy's lexer: whitespace-separated
words, `"quoted"` words, `#` comments, `{ }` blocks, `{$VAR}` per word) and mapped onto
Config as the plugins mean it: a plugin that is absent is off (no `health` line, no
health endpoint; no `forward`, no upstream), and the `kubernetes` plugin's own defaults
apply (`pods disabled`, `ttl 5`, no `fallthrough`), not kubeadm's. docs/corefile.md has
the whole mapping.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterdns.config import DEFAULT_PORT, HEALTH_PORT, METRICS_PORT, READY_PORT, Setting, hostport_text, normalize_zone, parse_hostport, settings
from clusterdns.errors import ClusterDNSError, ConfigError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


# --- converting one value with its setting's converter --------------------------------------


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
    if s.switch:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
            return value.strip().lower() in TRUE
        raise ConfigError(f"{where}: expected true or false, not {value!r}")
    if s.repeat:
        items = value if isinstance(value, (list, tuple)) else _scalar(value, where).split(",")
        return tuple(_convert_one(s, item, where) for item in items if not isinstance(item, str) or item.strip())
    if isinstance(value, (list, tuple)):
        if not isinstance(default, tuple):
            raise ConfigError(f"{where}: expected one value, not a list")
        value = ",".join(_scalar(item, where) for item in value)
    return _convert_one(s, value, where)


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a word or number, not {str(value).lower()} (quote it if you mean the text)")
    if value is None or isinstance(value, (dict, list, tuple)):
        shown = "null" if value is None else "a mapping" if isinstance(value, dict) else "a nested list"
        raise ConfigError(f"{where}: expected a word or number, not {shown}")
    return str(value).strip()


def _convert_one(s: Setting, value: Any, where: str) -> Any:
    text = _scalar(value, where)
    if s.choices and text not in s.choices:
        raise ConfigError(f"{where}: {text!r} is not one of {', '.join(s.choices)}")
    try:
        return (s.convert or str)(text)
    except (ValueError, ClusterDNSError) as e:
        raise ConfigError(f"{where}: {e}") from None


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

    class Loader(yaml.SafeLoader):
        """safe_load, but a key given twice in one mapping is an error, not the last one winning."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: setting {key!r} given twice")
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
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{hint}; the settings are the long flags of `clusterdns serve`")
        if name in values:
            raise ConfigError(f"{path}: setting {name!r} given twice")
        values[name] = convert_value(name, value, f"{path}: {key}")
    return values


# --- Corefile: words, blocks -------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    end_line: int  # a quoted word may span lines
    quoted: bool = False

    def brace(self, which: str) -> bool:
        return not self.quoted and self.text == which


@dataclass
class Entry:
    """One directive (or option inside a block): `name args... [{ entries }]`."""

    name: str
    args: list[str]
    line: int
    block: list[Entry] | None = None


@dataclass
class ServerBlock:
    keys: list[str]
    line: int
    entries: list[Entry]


def tokenize(text: str, path: str) -> list[Token]:
    """coredns/caddy's lexer: `#` starts a comment at the start of a word, `"` quotes (only `\\"`
    is an escape inside), everything else is split on whitespace; `{` and `}` are braces only
    as words of their own."""
    tokens: list[Token] = []
    i, n, line = 0, len(text), 1
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == '"':
            start, buf = line, []
            i += 1
            while True:
                if i >= n:
                    raise ConfigError(f"{path}:{start}: unterminated quoted string")
                c = text[i]
                if c == "\\" and i + 1 < n and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                    continue
                i += 1
                if c == '"':
                    break
                if c == "\n":
                    line += 1
                buf.append(c)
            tokens.append(Token("".join(buf), start, line, quoted=True))
        else:
            start_i = i
            while i < n and not text[i].isspace():
                i += 1
            tokens.append(Token(text[start_i:i], line, line))
    return tokens


_ENV = re.compile(r"\{\$([^{}:]+)(?::([^{}]*))?\}")


class _Parser:
    def __init__(self, text: str, path: str, environ: Mapping[str, str], warnings: list[str]) -> None:
        self.path = path
        self.environ = environ
        self.warnings = warnings
        self.tokens = tokenize(text, path)
        self.pos = 0

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def subst(self, token: Token) -> str:
        """`{$VAR}` and `{$VAR:default}` (the default when VAR is unset or empty), in one word."""

        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            value = self.environ.get(name)
            if not value and default is not None:
                return default
            if value is None:
                self.warnings.append(f"{self.path}:{token.line}: environment variable {name} is not set; {{${name}}} is empty")
                return ""
            return value

        return _ENV.sub(one, token.text)

    def words(self, tokens: list[Token]) -> list[str]:
        """Substituted words; an unquoted word that became empty is dropped (an unset `{$EXTRA}`)."""
        out = []
        for t in tokens:
            text = self.subst(t)
            if text or t.quoted:
                out.append(text)
        return out

    def parse(self) -> list[ServerBlock]:
        blocks = []
        while self.pos < len(self.tokens):
            first = self.tokens[self.pos]
            if first.brace("{") or first.brace("}"):
                raise self.error(first.line, f"unexpected '{first.text}': expected a server block like `cluster.local:53 {{`")
            keys: list[Token] = []
            while self.pos < len(self.tokens):
                t = self.tokens[self.pos]
                if t.brace("{"):
                    break
                if t.brace("}"):
                    raise self.error(t.line, "unexpected '}'")
                if keys and t.line != keys[-1].end_line and not keys[-1].text.endswith(","):
                    break
                keys.append(t)
                self.pos += 1
            names = [k.rstrip(",") for k in self.words(keys)]
            names = [k for k in names if k]
            if not names:
                raise self.error(first.line, "a server block needs a zone, like `cluster.local:53`")
            if names[0].startswith("(") and names[0].endswith(")"):
                raise self.error(first.line, "snippets `(name) { }` and `import` are not supported by clusterdns")
            if self.pos < len(self.tokens) and self.tokens[self.pos].brace("{"):
                opening = self.tokens[self.pos]
                self.pos += 1
                entries = self.entries(1, opening.line)
            else:  # a single server block may go without braces (coredns/caddy)
                entries = self.entries(0, first.line)
            blocks.append(ServerBlock(names, first.line, entries))
        return blocks

    def entries(self, depth: int, opened: int) -> list[Entry]:
        """Lines until the `}` that closes this block (depth > 0) or the end of the file."""
        out: list[Entry] = []
        while self.pos < len(self.tokens):
            t = self.tokens[self.pos]
            if t.brace("}"):
                if depth == 0:
                    raise self.error(t.line, "unexpected '}' without a matching '{'")
                self.pos += 1
                return out
            if t.brace("{"):
                raise self.error(t.line, "unexpected '{': a block opens on the line of its directive")
            self.pos += 1
            args: list[Token] = []
            block = None
            last = t.end_line
            while self.pos < len(self.tokens):
                u = self.tokens[self.pos]
                if u.line != last or u.brace("}"):
                    break
                if u.brace("{"):
                    self.pos += 1
                    block = self.entries(depth + 1, u.line)
                    if self.pos < len(self.tokens):
                        after = self.tokens[self.pos]
                        if after.line == self.tokens[self.pos - 1].end_line and not after.brace("}"):
                            raise self.error(after.line, f"unexpected {after.text!r} after '}}': start a new line")
                    break
                args.append(u)
                last = u.end_line
                self.pos += 1
            name = self.subst(t)
            out.append(Entry(name, self.words(args), t.line, block))
        if depth > 0:
            raise self.error(opened, "this '{' is never closed (missing '}')")
        return out


def parse_corefile(text: str, path: str = "Corefile", environ: Mapping[str, str] | None = None) -> tuple[list[ServerBlock], list[str]]:
    """The server blocks of a Corefile, and the warnings found on the way (unset variables)."""
    warnings: list[str] = []
    blocks = _Parser(text, path, {} if environ is None else environ, warnings).parse()
    return blocks, warnings


# --- Corefile: plugins onto settings ------------------------------------------------------------


_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """A Go duration (`5s`, `500ms`, `1m30s`, `0`) in seconds; ValueError otherwise."""
    if text in ("0", "+0"):
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _GO_DURATION.match(text, pos)
        if not m:
            raise ValueError(f"bad duration {text!r}: expected a Go duration like 5s, 500ms or 1m30s")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError("empty duration")
    return total


def _zone(text: str) -> str:
    """A zone as CoreDNS takes it: a name (`cluster.local.`), `.`, or a CIDR meaning its reverse zone."""
    text = text.strip()
    if text in ("", "."):
        return "."
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ConfigError(f"bad zone {text!r}") from None
        bits = 8 if net.version == 4 else 4
        if net.prefixlen % bits:
            raise ConfigError(f"zone {text!r}: the prefix must be a multiple of {bits} to name a reverse zone")
        labels = net.network_address.reverse_pointer.split(".")
        return ".".join(labels[(net.max_prefixlen - net.prefixlen) // bits :])
    return normalize_zone(text)


# Plugins clusterdns accepts without acting on them: the warning printed at start-up (None: quietly).
ACCEPTED = {
    "errors": None,  # errors are always logged
    "loadbalance": "accepted, but answers are not shuffled (records come in a fixed order)",
    "reload": "accepted: clusterdns watches the manifests, but does not re-read the Corefile (restart to apply Corefile changes)",
}
# forward's options (plugin/forward/README.md) -> clusterdns setting, or None: accepted with a warning.
FORWARD_OPTIONS: dict[str, str | None] = {
    "policy": "upstream_policy", "max_fails": "max_fails", "max_concurrent": "max_concurrent",
    "except": None, "force_tcp": None, "prefer_udp": None, "expire": None, "tls": None, "tls_servername": None,
    "health_check": None, "next": None, "failfast_all_unhealthy_upstreams": None, "max_idle_conns": None,
}
# cache's options that clusterdns does not implement (plugin/cache/README.md).
CACHE_UNIMPLEMENTED = ("denial", "prefetch", "serve_stale", "servfail", "keepttl")
# kubernetes options about reaching an API server: clusterdns has none, it reads --manifests.
KUBERNETES_API_OPTIONS = ("endpoint", "tls", "kubeconfig", "startup_timeout", "apiserver_qps", "apiserver_burst", "apiserver_max_inflight")


@dataclass
class _Block:
    zones: list[str]
    port: int | None
    line: int
    binds: list[str] = field(default_factory=list)


class _Mapper:
    """Walks the server blocks and collects raw setting values, each with the line it came from."""

    def __init__(self, path: str, warnings: list[str]) -> None:
        self.path = path
        self.warnings = warnings
        self.raw: dict[str, tuple[Any, int]] = {}
        self.kubernetes_line = 0
        self.forward_line = 0
        self.forward_to: list[str] | None = None
        self.handlers: dict[str, Callable[[Entry, _Block], None]] = {
            "kubernetes": self.kubernetes,
            "forward": self.forward,
            "health": self.health,
            "ready": self.endpoint("ready", f":{READY_PORT}"),
            "prometheus": self.endpoint("metrics", f"localhost:{METRICS_PORT}"),
            "log": self.log,
            "transfer": self.transfer,
            "bind": self.bind,
            "cache": self.cache,
            "loop": self.loop,
        }
        self.cache_disabled: list[tuple[int, list[str]]] = []  # (line, zones) of `disable success|denial ZONES`

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}: {message}")

    def set(self, name: str, value: Any, line: int, what: str) -> None:
        if name in self.raw and self.raw[name][0] != value:
            raise self.error(line, f"{what} conflicts with line {self.raw[name][1]} (clusterdns has one {name} for the whole server)")
        self.raw[name] = (value, line)

    def arity(self, e: Entry, low: int, high: int | None, what: str) -> None:
        n = len(e.args)
        if n < low or (high is not None and n > high):
            if high == low:
                want = f"{low} argument{'s' if low != 1 else ''}"
            elif high is None:
                want = f"at least {low} argument{'s' if low != 1 else ''}"
            else:
                want = f"{low} to {high} arguments" if low else f"at most {high} argument{'s' if high != 1 else ''}"
            raise self.error(e.line, f"{what} takes {want}, not {n}")

    def no_block(self, e: Entry, what: str) -> None:
        if e.block is not None:
            raise self.error(e.line, f"{what} takes no {{ }} block in clusterdns")

    # ---- server blocks ----

    def run(self, blocks: list[ServerBlock]) -> dict[str, tuple[Any, int]]:
        parsed = []
        for sb in blocks:
            zones, ports = [], set()
            for key in sb.keys:
                zone, port = self.key(key, sb.line)
                zones.append(zone)
                ports.add(port)
            explicit = {p for p in ports if p is not None}
            if len(explicit) > 1:
                raise self.error(sb.line, f"server block {' '.join(sb.keys)}: ports {', '.join(map(str, sorted(explicit)))} conflict;"
                                 " clusterdns serves every zone on the same port(s)")
            block = _Block(zones, explicit.pop() if explicit else None, sb.line)
            for e in sb.entries:
                handler = self.handlers.get(e.name)
                if handler is not None:
                    handler(e, block)
                elif e.name in ACCEPTED:
                    message = ACCEPTED[e.name]
                    if message:
                        self.warn(e.line, f"{e.name}: {message}")
                    elif e.block:
                        self.warn(e.line, f"{e.name}: options accepted, not implemented")
                else:
                    raise self.error(e.line, f'plugin "{e.name}" is not supported by clusterdns')
            parsed.append(block)
        self.listen(parsed)
        if not self.kubernetes_line:
            raise ConfigError(f"{self.path}: no server block has the kubernetes plugin; clusterdns serves a cluster zone:"
                              " add `kubernetes cluster.local { manifests DIR }`")
        # What the Corefile leaves out is off, as in CoreDNS.
        for name, value in (("health", "none"), ("ready", "none"), ("metrics", "none"), ("lameduck", "0"), ("log_queries", False),
                            ("transfer_to", []), ("notify", []), ("cache", "0"), ("loop_detect", "off")):
            self.raw.setdefault(name, (value, 0))
        ours = self.raw["zones"][0]
        for line, zones in self.cache_disabled:
            outside = [z for z in zones if not any(z == o or z.endswith("." + o) for o in ours)]
            if outside:
                self.warn(line, f"cache disable {' '.join(outside)}: accepted, not implemented (clusterdns caches every forwarded name)")
        if not self.forward_line:
            self.raw.setdefault("upstream", (["none"], 0))
        return self.raw

    def key(self, key: str, line: int) -> tuple[str, int | None]:
        """`[dns://]ZONE[:PORT]` -> (zone, port or None)."""
        text = key
        if "://" in text:
            scheme, _, text = text.partition("://")
            if scheme.lower() != "dns":
                raise self.error(line, f"server block {key!r}: {scheme}:// is not supported by clusterdns (plain DNS over UDP and TCP only)")
        port = None
        host = text
        if text.count(":") == 1:
            host, _, p = text.partition(":")
            if not p.isdigit() or not 0 < int(p) <= 65535:
                raise self.error(line, f"server block {key!r}: bad port {p!r}")
            port = int(p)
        try:
            return _zone(host), port
        except ConfigError as e:
            raise self.error(line, f"server block {key!r}: {e}") from None

    def listen(self, blocks: list[_Block]) -> None:
        ports = {b.port for b in blocks if b.port is not None}
        if len(ports) > 1:
            lines = ", ".join(f"line {b.line} :{b.port}" for b in blocks if b.port is not None)
            raise self.error(blocks[0].line, f"server blocks on different ports ({lines}): clusterdns serves every zone on the same port(s)")
        port = ports.pop() if ports else None
        if port is None and not any(b.binds for b in blocks):
            return  # the default --listen
        hosts: list[str] = []
        for b in blocks:
            for host in b.binds or ["127.0.0.1"]:
                if host not in hosts:
                    hosts.append(host)
        line = min(b.line for b in blocks)
        self.raw["listen"] = ([hostport_text(h, port or DEFAULT_PORT) for h in hosts], line)

    # ---- plugins ----

    def bind(self, e: Entry, block: _Block) -> None:
        self.no_block(e, "bind")
        self.arity(e, 1, None, "bind")
        for addr in e.args:
            try:
                block.binds.append(ipaddress.ip_address(addr).compressed)
            except ValueError:
                raise self.error(e.line, f"bind {addr}: clusterdns binds IP addresses only (no interface names, no `except`)") from None

    def kubernetes(self, e: Entry, block: _Block) -> None:
        if self.kubernetes_line:
            raise self.error(e.line, f"kubernetes: only one server block may contain kubernetes (it is already at line {self.kubernetes_line})")
        self.kubernetes_line = e.line
        try:
            zones = [_zone(z) for z in e.args] or list(block.zones)
        except ConfigError as err:
            raise self.error(e.line, f"kubernetes: {err}") from None
        if "." in zones:
            raise self.error(e.line, "kubernetes: clusterdns cannot serve the root zone '.': name the cluster domain,"
                             " like `kubernetes cluster.local in-addr.arpa ip6.arpa`")
        line = e.line
        # The plugin's defaults, not kubeadm's: the Corefile says what it wants.
        values: dict[str, Any] = {
            "zones": zones, "pods": "disabled", "ttl": "5", "fallthrough": ["none"], "namespaces": [],
            "endpoint_pod_names": False, "noendpoints": False, "ignore_empty_service": False,
        }
        lines = dict.fromkeys(values, line)
        seen: dict[str, int] = {}
        for opt in e.block or []:
            what = f'kubernetes option "{opt.name}"'
            if opt.block is not None:
                raise self.error(opt.line, f"{what} takes no {{ }} block")
            if opt.name in seen and opt.name not in KUBERNETES_API_OPTIONS:
                raise self.error(opt.line, f"{what} is given twice (also at line {seen[opt.name]})")
            seen[opt.name] = opt.line
            name, value = self.kubernetes_option(opt, what, zones)
            if name:
                values[name], lines[name] = value, opt.line
        for name, value in values.items():
            self.set(name, value, lines[name], "kubernetes")

    def kubernetes_option(self, opt: Entry, what: str, zones: list[str]) -> tuple[str | None, Any]:
        n = opt.name
        if n == "pods":
            self.arity(opt, 1, 1, what)
            return "pods", opt.args[0]
        if n == "ttl":
            self.arity(opt, 1, 1, what)
            if not opt.args[0].isdigit() or not 0 <= int(opt.args[0]) <= 3600:
                raise self.error(opt.line, f"{what}: {opt.args[0]!r} must be a whole number of seconds, 0-3600")
            return "ttl", opt.args[0]
        if n == "namespaces":
            self.arity(opt, 1, None, what)
            return "namespaces", list(opt.args)
        if n in ("endpoint_pod_names", "noendpoints"):
            self.arity(opt, 0, 0, what)
            return n, True
        if n == "fallthrough":
            try:
                return "fallthrough", [_zone(z) for z in opt.args] or ["."]
            except ConfigError as err:
                raise self.error(opt.line, f"{what}: {err}") from None
        if n == "ignore":
            self.arity(opt, 1, 1, what)
            if opt.args[0] != "empty_service":
                raise self.error(opt.line, f"{what}: only `ignore empty_service` exists, not {opt.args[0]!r}")
            return "ignore_empty_service", True
        if n == "manifests":
            self.arity(opt, 1, 1, what)
            return "manifests", opt.args[0]
        if n in KUBERNETES_API_OPTIONS:
            self.warn(opt.line, f"kubernetes {n}: ignored: clusterdns talks to no API server, it reads the manifests directory")
            return None, None
        raise self.error(opt.line, f"{what} is not supported")

    def forward(self, e: Entry, block: _Block) -> None:
        self.arity(e, 2, None, "forward")
        src, targets = e.args[0], e.args[1:]
        if src.removeprefix("dns://").rstrip(".") != "":
            raise self.error(e.line, f"forward {src}: clusterdns forwards every name outside its zones to one upstream list: write `forward . TO...`")
        if "." not in block.zones:
            self.warn(e.line, f"forward in server block {' '.join(block.zones)}: clusterdns forwards every name outside its zones there, not only these")
        if len(targets) > 15:
            raise self.error(e.line, f"forward: at most 15 upstreams, not {len(targets)}")
        upstream: list[str] = []
        resolv = False
        for to in targets:
            if "://" in to:
                scheme, _, rest = to.partition("://")
                if scheme.lower() != "dns":
                    raise self.error(e.line, f"forward {to}: {scheme}:// is not supported by clusterdns (plain DNS only)")
                to = rest
            if to.startswith("/") or to.startswith("."):
                if to != "/etc/resolv.conf":
                    raise self.error(e.line, f"forward {to}: the only file clusterdns reads upstreams from is /etc/resolv.conf")
                resolv = True
                continue
            try:
                parse_hostport(to, 53)
            except ConfigError as err:
                raise self.error(e.line, f"forward: {err}") from None
            upstream.append(to)
        if resolv and upstream:
            raise self.error(e.line, "forward: give either /etc/resolv.conf or addresses, not both")
        if self.forward_to is not None and self.forward_to != upstream:
            raise self.error(e.line, f"forward conflicts with line {self.forward_line}: clusterdns has one upstream list for every name")
        self.forward_to, self.forward_line = upstream, e.line
        if upstream:  # /etc/resolv.conf is the default: upstream stays unset
            self.set("upstream", upstream, e.line, "forward")
        for opt in e.block or []:
            if opt.name not in FORWARD_OPTIONS:
                raise self.error(opt.line, f'forward option "{opt.name}" is not supported')
            setting = FORWARD_OPTIONS[opt.name]
            if setting is None:
                self.warn(opt.line, f"forward {opt.name}: accepted, not implemented")
                continue
            self.arity(opt, 1, 1, f"forward {opt.name}")
            self.set(setting, opt.args[0], opt.line, f"forward {opt.name}")

    def health(self, e: Entry, block: _Block) -> None:
        self.arity(e, 0, 1, "health")
        self.set("health", e.args[0] if e.args else f":{HEALTH_PORT}", e.line, "health")
        for opt in e.block or []:
            if opt.name != "lameduck":
                raise self.error(opt.line, f'health option "{opt.name}" is not supported')
            self.arity(opt, 1, 1, "health lameduck")
            try:
                seconds = parse_duration(opt.args[0])
            except ValueError as err:
                raise self.error(opt.line, f"health lameduck: {err}") from None
            self.set("lameduck", repr(seconds), opt.line, "health lameduck")

    def endpoint(self, setting: str, default: str) -> Callable[[Entry, _Block], None]:
        def handle(e: Entry, block: _Block) -> None:
            self.no_block(e, e.name)
            self.arity(e, 0, 1, e.name)
            self.set(setting, e.args[0] if e.args else default, e.line, e.name)

        return handle

    def log(self, e: Entry, block: _Block) -> None:
        if e.args or e.block:
            self.warn(e.line, "log: options ignored: clusterdns logs every query in the common format")
        self.set("log_queries", True, e.line, "log")

    def cache(self, e: Entry, block: _Block) -> None:
        """`cache [TTL] [ZONES...] { success CAPACITY; disable success|denial ZONES; ... }`: forwarded
        answers only (clusterdns never caches its own zones, which is what kubeadm's `disable` lines ask)."""
        ttl, zones = "3600", e.args  # 3600: CoreDNS's cap for positive answers when no TTL is given
        if e.args and e.args[0].isdigit():
            ttl, zones = e.args[0], e.args[1:]
        if zones:
            self.warn(e.line, "cache ZONES: clusterdns caches every forwarded name")
        self.set("cache", ttl, e.line, "cache")
        for opt in e.block or []:
            if opt.name == "success":
                self.arity(opt, 1, 3, "cache success")
                self.set("cache_size", opt.args[0], opt.line, "cache success")
                if len(opt.args) > 1:
                    self.warn(opt.line, "cache success TTL: ignored: the cache TTL is the one after `cache`")
            elif opt.name == "disable":
                self.arity(opt, 1, None, "cache disable")
                if opt.args[0] not in ("success", "denial"):
                    raise self.error(opt.line, f"cache disable {opt.args[0]}: expected success or denial")
                try:
                    zones = [_zone(z) for z in opt.args[1:]]
                except ConfigError as err:
                    raise self.error(opt.line, f"cache disable: {err}") from None
                self.cache_disabled.append((opt.line, zones or block.zones))
            elif opt.name in CACHE_UNIMPLEMENTED:
                self.warn(opt.line, f"cache {opt.name}: accepted, not implemented")
            else:
                raise self.error(opt.line, f'cache option "{opt.name}" is not supported')

    def loop(self, e: Entry, block: _Block) -> None:
        self.no_block(e, "loop")
        self.arity(e, 0, 0, "loop")
        self.set("loop_detect", "on", e.line, "loop")

    def transfer(self, e: Entry, block: _Block) -> None:
        if e.args:
            self.warn(e.line, "transfer: clusterdns transfers the cluster domain only (the first kubernetes zone)")
        if not e.block:
            raise self.error(e.line, "transfer needs a block: `transfer { to ADDRESS... }`")
        allow: list[str] = []
        notify: list[str] = []
        for opt in e.block:
            if opt.name != "to":
                raise self.error(opt.line, f'transfer option "{opt.name}" is not supported')
            self.arity(opt, 1, None, "transfer to")
            for addr in opt.args:
                if addr == "*" or "/" in addr:
                    allow.append(addr)
                    continue
                try:  # an address (and port): allowed, and sent NOTIFY, as CoreDNS does
                    host, port = parse_hostport(addr, 53)
                except ConfigError as err:
                    raise self.error(opt.line, f"transfer to: {err}") from None
                allow.append(host)
                notify.append(hostport_text(host, port))
        self.set("transfer_to", allow, e.line, "transfer")
        self.set("notify", notify, e.line, "transfer")


def load_corefile(path: str, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """A Corefile's settings, converted, and the warnings to print at start-up."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read Corefile {path}: {e.strerror or e}") from None
    return corefile_values(text, path, environ)


def corefile_values(text: str, path: str = "Corefile", environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    blocks, warnings = parse_corefile(text, path, environ)
    if not blocks:
        raise ConfigError(f"{path}: no server block (like `cluster.local:53 {{ kubernetes }}`)")
    raw = _Mapper(path, warnings).run(blocks)
    warnings.sort(key=lambda w: int(w[len(path) + 1 :].split(":", 1)[0]))  # in file order (all are PATH:LINE: ...)
    values = {}
    for name, (value, line) in raw.items():
        values[name] = convert_value(name, value, f"{path}:{line}" if line else path)
    return values, warnings


def file_values(config: str | None, corefile: str | None, environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Corefile's settings with the config file's laid over them, and the warnings."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    if corefile:
        values, warnings = load_corefile(corefile, environ)
    if config:
        values.update(load_config_file(config))
    return values, warnings
