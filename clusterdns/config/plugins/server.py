"""The server's own plugins: `bind`, `health`, `ready`, `prometheus`, `log`, `errors`, `loop`, `reload`, `transfer`."""

from __future__ import annotations

import ipaddress

from clusterdns.config.addresses import HEALTH_PORT, hostport_text, parse_hostport
from clusterdns.config.corefile_syntax import Directive, parse_duration
from clusterdns.config.plugins.context import Block, Context, PluginHandler
from clusterdns.errors import ConfigError, shown


def bind(m: Context, e: Directive, block: Block) -> None:
    m.no_block(e, "bind")
    m.arity(e, 1, None, "bind")
    for addr in e.args:
        try:
            block.binds.append(ipaddress.ip_address(addr).compressed)
        except ValueError:
            raise m.error(e, f"bind {addr}: clusterdns binds IP addresses only (no interface names, no `except`)") from None


# The options each plugin's block takes; any other is an error.
HEALTH_OPTIONS = ("lameduck",)
ERRORS_OPTIONS = ("stacktrace", "consolidate")
TRANSFER_OPTIONS = ("to",)


def health(m: Context, e: Directive, block: Block) -> None:
    m.arity(e, 0, 1, "health")
    m.set("health", e.args[0] if e.args else f":{HEALTH_PORT}", e, "health")
    for opt in e.block or []:
        if opt.name not in HEALTH_OPTIONS:
            raise m.error(opt, f'health option "{opt.name}" is not supported')
        m.arity(opt, 1, 1, "health lameduck")
        try:
            seconds = parse_duration(opt.args[0])
        except ValueError as err:
            raise m.error(opt, f"health lameduck: {err}") from None
        m.set("lameduck", repr(seconds), opt, "health lameduck")


def endpoint(setting: str, default: str) -> PluginHandler:
    """`ready`/`prometheus [ADDRESS]`: an HTTP endpoint setting, `default` when no address is given."""

    def handle(m: Context, e: Directive, block: Block) -> None:
        m.no_block(e, e.name)
        m.arity(e, 0, 1, e.name)
        m.set(setting, e.args[0] if e.args else default, e, e.name)

    return handle


def log(m: Context, e: Directive, block: Block) -> None:
    if e.args or e.block:
        m.warn(e, "log: options ignored: clusterdns logs every query in the common format")
    m.set("log_queries", True, e, "log")


def errors(m: Context, e: Directive, block: Block) -> None:
    """`errors { stacktrace; consolidate DURATION REGEXP [LEVEL] }` (plugin/errors/setup.go): clusterdns
    always logs errors, with the traceback, and reports a repeating one once with its count, so both
    options are taken as already in effect; any other option is an error."""
    m.arity(e, 0, 0, "errors")
    for opt in e.block or []:
        if opt.name not in ERRORS_OPTIONS:
            raise m.error(opt, f'errors option "{opt.name}" is not supported')
        if opt.name == "stacktrace":
            m.arity(opt, 0, 0, "errors stacktrace")
        elif opt.name == "consolidate":
            m.arity(opt, 2, 3, "errors consolidate")
            try:
                parse_duration(opt.args[0])
            except ValueError as err:
                raise m.error(opt, f"errors consolidate: {err}") from None
            if len(opt.args) == 3 and opt.args[2] not in ("warning", "error", "info", "debug"):
                raise m.error(opt, f"errors consolidate: unknown log level {shown(opt.args[2])}")


def reload(m: Context, e: Directive, block: Block) -> None:
    """`reload [INTERVAL] [JITTER]` (plugin/reload/setup.go: 30s and 15s by default)."""
    m.no_block(e, "reload")
    m.arity(e, 0, 2, "reload")
    try:
        interval = parse_duration(e.args[0]) if e.args else 30.0
        jitter = parse_duration(e.args[1]) if len(e.args) > 1 else 15.0
    except ValueError as err:
        raise m.error(e, f"reload: {err}") from None
    if interval < 2:
        raise m.error(e, "reload: interval value must be greater or equal to 2s")
    if 0 < jitter < 1:
        raise m.error(e, "reload: jitter value must be 0 or greater or equal to 1s")
    m.set("reload", repr(interval), e, "reload")
    m.set("reload_jitter", repr(jitter), e, "reload")


def loop(m: Context, e: Directive, block: Block) -> None:
    m.no_block(e, "loop")
    m.arity(e, 0, 0, "loop")
    m.set("loop_detect", "on", e, "loop")


def transfer(m: Context, e: Directive, block: Block) -> None:
    if e.args:
        m.warn(e, "transfer: clusterdns transfers the cluster domain only (the first kubernetes zone)")
    if not e.block:
        raise m.error(e, "transfer needs a block: `transfer { to ADDRESS... }`")
    allow: list[str] = []
    notify: list[str] = []
    for opt in e.block:
        if opt.name not in TRANSFER_OPTIONS:
            raise m.error(opt, f'transfer option "{opt.name}" is not supported')
        m.arity(opt, 1, None, "transfer to")
        for addr in opt.args:
            if addr == "*" or "/" in addr:
                allow.append(addr)
                continue
            try:  # an address (and port): allowed, and sent NOTIFY, as CoreDNS does
                host, port = parse_hostport(addr, 53)
            except ConfigError as err:
                raise m.error(opt, f"transfer to: {err}") from None
            allow.append(host)
            notify.append(hostport_text(host, port))
    m.set("transfer_to", allow, e, "transfer")
    m.set("notify", notify, e, "transfer")
