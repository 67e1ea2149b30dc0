"""The plugins that shape answers: `loadbalance` (plugin/loadbalance/README.md) and `rewrite`
(plugin/rewrite/README.md)."""

from __future__ import annotations

import shlex

from clusterdns.config.corefile_syntax import Directive
from clusterdns.config.plugins.context import Block, Context
from clusterdns.errors import ConfigError
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
    if len(words) < 2 and e.block:
        for line in e.block:
            words += [line.name, *line.args]
    try:
        parse_rule(words)
    except ConfigError as err:
        raise m.error(e, str(err)) from None
    rules = m.raw.get("rewrite", ([], ""))[0]
    m.raw["rewrite"] = ([*rules, shlex.join(words)], m.where(e))
