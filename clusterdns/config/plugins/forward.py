"""`forward FROM TO... { ... }` (plugin/forward/README.md) and `cache [TTL] [ZONES] { ... }`
(plugin/cache/README.md) onto the upstream and cache settings."""

from __future__ import annotations

from clusterdns.config.addresses import parse_hostport
from clusterdns.config.corefile_syntax import Directive, decimal, parse_duration, zone
from clusterdns.config.plugins.context import Block, Context, Forward
from clusterdns.errors import ConfigError, shown

# forward's options (plugin/forward/setup.go parseBlock) that take one value -> the setting.
FORWARD_VALUES = {"policy": "upstream_policy", "max_fails": "max_fails", "max_concurrent": "max_concurrent",
                  "max_idle_conns": "max_idle_conns"}
FORWARD_DURATIONS = {"expire": "upstream_expire", "read_timeout": "upstream_timeout"}
FORWARD_SWITCHES = {"force_tcp": "force_tcp", "prefer_udp": "prefer_udp", "failfast_all_unhealthy_upstreams": "failfast"}
# Every option forward's block takes; any other is an error.
FORWARD_OPTIONS = (*FORWARD_VALUES, *FORWARD_DURATIONS, *FORWARD_SWITCHES, "health_check", "except")
# Every option cache's block takes; any other is an error.
CACHE_OPTIONS = ("success", "denial", "disable", "prefetch", "serve_stale", "servfail", "keepttl")


def forward(m: Context, e: Directive, block: Block) -> None:
    """One `forward`: which names (FROM, a zone) go where (TO); the options are the server's."""
    m.arity(e, 2, None, "forward")
    try:
        source = zone(e.args[0].removeprefix("dns://"))
    except ConfigError as err:
        raise m.error(e, f"forward: unable to normalize '{e.args[0]}': {err}") from None
    targets = e.args[1:]
    if len(targets) > 15:
        raise m.error(e, f"forward: more than 15 TOs configured ({len(targets)})")
    upstream: list[str] = []
    resolv = False
    for to in targets:
        if "://" in to:
            scheme, _, rest = to.partition("://")
            if scheme.lower() != "dns":
                raise m.error(e, f"forward {to}: {scheme}:// is not supported by clusterdns (plain DNS only)")
            to = rest
        if to.startswith("/") or to.startswith("."):
            if to != "/etc/resolv.conf":
                raise m.error(e, f"forward {to}: the only file clusterdns reads upstreams from is /etc/resolv.conf")
            resolv = True
            continue
        try:
            parse_hostport(to, 53)
        except ConfigError as err:
            raise m.error(e, f"forward: {err}") from None
        upstream.append(to)
    if resolv and upstream:
        raise m.error(e, "forward: give either /etc/resolv.conf or addresses, not both")
    block.forwards.append(Forward(source, upstream, resolv, e))
    for opt in e.block or []:
        forward_option(m, opt)


def forward_option(m: Context, opt: Directive) -> None:
    name = opt.name
    what = f"forward {name}"
    if name not in FORWARD_OPTIONS:
        raise m.unknown(opt, "forward option", name, FORWARD_OPTIONS)
    if name in FORWARD_SWITCHES:
        m.arity(opt, 0, 0, what)
        m.set(FORWARD_SWITCHES[name], True, opt, what)
    elif name in FORWARD_VALUES:
        m.arity(opt, 1, 1, what)
        m.set(FORWARD_VALUES[name], opt.args[0], opt, what)
    elif name in FORWARD_DURATIONS:
        m.arity(opt, 1, 1, what)
        m.set(FORWARD_DURATIONS[name], repr(_duration(m, opt, opt.args[0])), opt, what)
    elif name == "health_check":
        m.arity(opt, 1, 1, what)  # `no_rec` and `domain` are not supported: the probe is `. IN NS`, RD set
        m.set("health_check", repr(_duration(m, opt, opt.args[0])), opt, what)
    elif name == "except":
        m.arity(opt, 1, None, what)
        try:
            zones = [zone(z) for z in opt.args]
        except ConfigError as err:
            raise m.error(opt, f"forward except: {err}") from None
        previous = m.raw.get("forward_except", ([], ""))[0]
        m.raw["forward_except"] = (previous + zones, m.where(opt))  # repeated `except` lines add up (setup.go)
    else:
        raise m.unknown(opt, "forward option", name, FORWARD_OPTIONS)


def cache(m: Context, e: Directive, block: Block) -> None:
    """`cache [TTL] [ZONES...] { ... }`: forwarded answers only (clusterdns never caches its own
    zones, which is what kubeadm's `disable` lines ask for them)."""
    args = list(e.args)
    if args and decimal(args[0].lstrip("-")):
        if int(args[0]) <= 0:
            raise m.error(e, f"cache TTL can not be zero or negative: {args[0]}")
        m.set("cache", args.pop(0), e, "cache")
    else:
        m.set("cache", "3600", e, "cache")  # CoreDNS's cap for answers when no TTL is given
    if args:
        try:
            m.set("cache_zones", [zone(z) for z in args], e, "cache ZONES")
        except ConfigError as err:
            raise m.error(e, f"cache: {err}") from None
    for opt in e.block or []:
        cache_option(m, opt, block)


def cache_option(m: Context, opt: Directive, block: Block) -> None:
    name = opt.name
    if name not in CACHE_OPTIONS:
        raise m.unknown(opt, "cache option", name, CACHE_OPTIONS)
    if name in ("success", "denial"):
        _capacity(m, opt)
    elif name == "disable":
        m.arity(opt, 1, None, "cache disable")
        if opt.args[0] not in ("success", "denial"):
            raise m.error(opt, f'cache type for disable must be "success" or "denial", not {shown(opt.args[0])}')
        try:
            zones = [zone(z) for z in opt.args[1:]] or block.zones
        except ConfigError as err:
            raise m.error(opt, f"cache disable: {err}") from None
        m.cache_disabled.append((opt, opt.args[0], zones))
    elif name == "prefetch":
        _prefetch(m, opt)
    elif name == "serve_stale":
        _serve_stale(m, opt)
    elif name == "servfail":
        m.arity(opt, 1, 1, "cache servfail")
        m.set("cache_servfail", repr(_duration(m, opt, opt.args[0])), opt, "cache servfail")
    elif name == "keepttl":
        m.arity(opt, 0, 0, "cache keepttl")
        m.set("cache_keepttl", True, opt, "cache keepttl")
    else:
        raise m.unknown(opt, "cache option", name, CACHE_OPTIONS)


def _capacity(m: Context, opt: Directive) -> None:
    """`success|denial CAPACITY [TTL [MINTTL]]` (setup.go: TTL > 0; clusterdns has no MINTTL)."""
    what = f"cache {opt.name}"
    m.arity(opt, 1, 3, what)
    m.set("cache_size" if opt.name == "success" else "cache_denial_size", opt.args[0], opt, what)
    if len(opt.args) > 1:
        if not decimal(opt.args[1]) or int(opt.args[1]) <= 0:
            raise m.error(opt, f"{what}: cache TTL can not be zero or negative: {opt.args[1]}")
        if opt.name == "success":
            m.raw["cache"] = (opt.args[1], m.where(opt))  # the block's TTL beats the directive's (setup.go)
        else:
            m.raw["cache_denial_ttl"] = (opt.args[1], m.where(opt))
    if len(opt.args) > 2 and opt.args[2] != "0":
        raise m.error(opt, f"{what} MINTTL {opt.args[2]}: not supported: clusterdns keeps the TTLs the authority published (only 0 is accepted)")


def _prefetch(m: Context, opt: Directive) -> None:
    """`prefetch AMOUNT [DURATION [PERCENTAGE%]]` (setup.go)."""
    m.arity(opt, 1, 3, "cache prefetch")
    if not decimal(opt.args[0]):
        raise m.error(opt, "cache prefetch: prefetch amount should be positive")
    m.set("cache_prefetch", opt.args[0], opt, "cache prefetch")
    if len(opt.args) > 1:
        m.set("cache_prefetch_window", repr(_duration(m, opt, opt.args[1])), opt, "cache prefetch")
    if len(opt.args) > 2:
        pct = opt.args[2]
        if not pct.endswith("%") or not decimal(pct[:-1]):
            raise m.error(opt, f"cache prefetch: last character of percentage should be `%`, but is: {shown(pct)}")
        if not 10 <= int(pct[:-1]) <= 90:
            raise m.error(opt, "cache prefetch: percentage should fall in range [10, 90]")
        m.set("cache_prefetch_percent", pct[:-1], opt, "cache prefetch")


def _serve_stale(m: Context, opt: Directive) -> None:
    """`serve_stale [DURATION [immediate [RESPONSE_TTL [RECHECK]] | verify [TIMEOUT [RESPONSE_TTL [RECHECK]]]]]`."""
    m.arity(opt, 0, 5, "cache serve_stale")
    args = list(opt.args)
    stale = _duration(m, opt, args.pop(0)) if args else 3600.0  # CoreDNS: 1h when none is given
    m.set("serve_stale", repr(stale), opt, "cache serve_stale")
    if not args:
        return
    mode = args.pop(0).lower()
    if mode not in ("immediate", "verify"):
        raise m.error(opt, f"cache serve_stale: invalid value for serve_stale refresh mode: {mode}")
    m.set("serve_stale_mode", mode, opt, "cache serve_stale")
    if mode == "immediate" and len(args) > 2:
        raise m.error(opt, "cache serve_stale immediate takes at most RESPONSE_TTL and FAILURE_RECHECK")
    if mode == "verify" and args:
        m.set("serve_stale_verify_timeout", repr(_duration(m, opt, args.pop(0))), opt, "cache serve_stale")
    if args:
        ttl = _duration(m, opt, args.pop(0))
        if ttl != int(ttl):
            raise m.error(opt, "cache serve_stale: RESPONSE_TTL must be a whole number of seconds")
        m.set("serve_stale_ttl", str(int(ttl)), opt, "cache serve_stale")
    if args:
        m.set("serve_stale_recheck", repr(_duration(m, opt, args.pop(0))), opt, "cache serve_stale")


def _duration(m: Context, opt: Directive, text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise m.error(opt, f"{opt.name}: {err}") from None
    if seconds < 0:
        raise m.error(opt, f"{opt.name}: {text} can't be negative")
    return seconds
