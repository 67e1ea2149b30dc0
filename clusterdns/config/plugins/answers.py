"""The plugins that answer or shape answers besides `kubernetes`: `loadbalance`, `rewrite`,
`hosts` and `k8s_external` (each plugin's README.md and setup.go in CoreDNS)."""

from __future__ import annotations

import os
import shlex

from clusterdns.config.corefile_syntax import Directive, decimal, parse_duration, zone
from clusterdns.config.plugins.context import Block, Context
from clusterdns.errors import ConfigError, shown
from clusterdns.rewrite import parse_rule


def loadbalance(m: Context, e: Directive, block: Block) -> None:
    """`loadbalance [round_robin]`: shuffle A, AAAA and MX per reply (plugin/loadbalance/setup.go)."""
    if e.args and e.args[0] == "weighted":
        raise m.error(e, "loadbalance weighted: not supported by clusterdns (round_robin only)")
    if e.args and e.args[0] != "round_robin":
        raise m.error(e, f"loadbalance: unknown policy: {e.args[0]}")
    if len(e.args) > 1:
        raise m.error(e, f"loadbalance: unknown property '{e.args[1]}'")
    for opt in e.block or []:
        if opt.name == "prefer":
            raise m.error(opt, "loadbalance prefer: not supported by clusterdns")
        raise m.error(opt, f"loadbalance: unknown property '{opt.name}'")
    m.set("loadbalance", "round_robin", e, "loadbalance")


def rewrite(m: Context, e: Directive, block: Block) -> None:
    """`rewrite [continue|stop] name ...`: one rule per directive, in order. With fewer than two
    words on its line, the words of its `{ }` block are the rest of the rule (setup.go rewriteParse)."""
    words = list(e.args)
    if len(words) >= 2 and e.block:
        raise m.error(e, "rewrite: a rule written on its line takes no { } block")
    if len(words) < 2 and e.block:
        for line in e.block:
            words += [line.name, *line.args]
    try:
        parse_rule(words)
    except ConfigError as err:
        raise m.error(e, str(err)) from None
    rules = m.raw.get("rewrite", ([], ""))[0]
    m.raw["rewrite"] = ([*rules, shlex.join(words)], m.where(e))


HOSTS_OPTIONS = ("ttl", "no_reverse", "reload", "fallthrough", "fallthrough_unsupported")


def hosts(m: Context, e: Directive, block: Block) -> None:
    """`hosts [FILE [ZONES...]] { INLINE...; ttl; no_reverse; reload; fallthrough; fallthrough_unsupported }`
    (plugin/hosts/setup.go hostsParse): once per server, its inline lines only before `fallthrough`."""
    if any(p.name == "hosts" for p in block.plugins):
        raise m.error(e, "hosts: this plugin can only be used once per Server Block")
    path = e.args[0] if e.args else "/etc/hosts"
    m.set("hosts_file", path, e, "hosts")
    if not os.path.isfile(path):
        m.warn(e, f"hosts: file {path} does not exist (yet): serving the inline entries; it is read when it appears")
    try:
        m.set("hosts_zones", [zone(z) for z in e.args[1:]] or block.zones, e, "hosts ZONES")
    except ConfigError as err:
        raise m.error(e, f"hosts: {err}") from None
    inline: list[str] = []
    fallthrough = False
    for opt in e.block or []:
        if opt.name not in HOSTS_OPTIONS:
            if fallthrough:
                raise m.error(opt, f"hosts: unknown property '{opt.name}'")  # inline lines come before fallthrough
            inline.append(" ".join([opt.name, *opt.args]))
            continue
        fallthrough |= opt.name == "fallthrough"
        _hosts_option(m, opt)
    if any(o.name == "fallthrough_unsupported" for o in e.block or []) and not fallthrough:
        raise m.error(e, "hosts: fallthrough_unsupported requires fallthrough")
    if inline:
        m.set("hosts", inline, e, "hosts")


def _hosts_option(m: Context, opt: Directive) -> None:
    what = f"hosts {opt.name}"
    if opt.name == "ttl":
        m.arity(opt, 1, 1, what)
        if not decimal(opt.args[0]) or not 1 <= int(opt.args[0]) <= 65535:
            raise m.error(opt, f"{what}: ttl provided is invalid: {shown(opt.args[0])} (1-65535 seconds)")
        m.set("hosts_ttl", opt.args[0], opt, what)
    elif opt.name == "reload":
        m.arity(opt, 1, 1, what)
        try:
            m.set("hosts_reload", repr(parse_duration(opt.args[0])), opt, what)
        except ValueError as err:
            raise m.error(opt, f"{what}: {err}") from None
    elif opt.name == "fallthrough":
        try:
            m.set("hosts_fallthrough", [zone(z) for z in opt.args] or ["."], opt, what)
        except ConfigError as err:
            raise m.error(opt, f"{what}: {err}") from None
    else:  # no_reverse, fallthrough_unsupported
        m.arity(opt, 0, 0, what)
        m.set("hosts_no_reverse" if opt.name == "no_reverse" else "hosts_fallthrough_unsupported", True, opt, what)


K8S_EXTERNAL_OPTIONS = ("apex", "ttl", "headless", "fallthrough")


def k8s_external(m: Context, e: Directive, block: Block) -> None:
    """`k8s_external [ZONES...] { apex; ttl; headless; fallthrough }` (plugin/k8s_external/setup.go)."""
    try:
        zones = [zone(z) for z in e.args] or block.zones
    except ConfigError as err:
        raise m.error(e, f"k8s_external: {err}") from None
    if "." in zones:
        raise m.error(e, "k8s_external: clusterdns needs its zone named (not the root), like `k8s_external example.org`")
    m.set("external_zones", zones, e, "k8s_external")
    for opt in e.block or []:
        what = f"k8s_external {opt.name}"
        if opt.name not in K8S_EXTERNAL_OPTIONS:
            raise m.error(opt, f"k8s_external: unknown property '{opt.name}'")
        if opt.name in ("apex", "ttl"):
            m.arity(opt, 1, 1, what)
            if opt.name == "ttl" and (not decimal(opt.args[0]) or int(opt.args[0]) > 3600):
                raise m.error(opt, f"{what}: ttl must be in range [0, 3600]")
            m.set(f"external_{opt.name}", opt.args[0], opt, what)
        elif opt.name == "headless":
            m.arity(opt, 0, 0, what)
            m.set("external_headless", True, opt, what)
        elif opt.name == "fallthrough":
            try:
                m.set("external_fallthrough", [zone(z) for z in opt.args] or ["."], opt, what)
            except ConfigError as err:
                raise m.error(opt, f"{what}: {err}") from None
