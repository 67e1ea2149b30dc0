"""`kubernetes ZONES { ... }` (plugin/kubernetes/README.md) onto the settings, with the plugin's own
defaults (`pods disabled`, `ttl 5`, no `fallthrough`), not kubeadm's."""

from __future__ import annotations

from typing import Any

from clusterdns.config.addresses import is_reverse_zone
from clusterdns.config.corefile_syntax import Directive, decimal, zone
from clusterdns.config.plugins.context import Block, Context
from clusterdns.config.settings import POD_MODES
from clusterdns.errors import ConfigError, shown

# kubernetes options about reaching an API server: clusterdns has none, it reads --manifests.
KUBERNETES_API_OPTIONS = ("endpoint", "tls", "kubeconfig", "startup_timeout", "apiserver_qps", "apiserver_burst", "apiserver_max_inflight")
# Every option the kubernetes block takes (`manifests` is clusterdns's own); any other is an error.
KUBERNETES_OPTIONS = ("pods", "ttl", "namespaces", "endpoint_pod_names", "noendpoints", "fallthrough", "ignore", "manifests", *KUBERNETES_API_OPTIONS)


def kubernetes(m: Context, e: Directive, block: Block) -> None:
    if m.kubernetes_at is not None:
        raise m.error(e, f"kubernetes: only one server block may contain kubernetes (it is already at {m.where(m.kubernetes_at)})")
    m.kubernetes_at = e
    try:
        zones = [zone(z) for z in e.args] or list(block.zones)
    except ConfigError as err:
        raise m.error(e, f"kubernetes: {err}") from None
    if "." in zones:
        raise m.error(e, "kubernetes: clusterdns cannot serve the root zone '.': name the cluster domain,"
                         " like `kubernetes cluster.local in-addr.arpa ip6.arpa`")
    zones = _cluster_domain_first(m, e, zones)
    # The plugin's defaults, not kubeadm's: the Corefile says what it wants.
    values: dict[str, Any] = {
        "zones": zones, "pods": "disabled", "ttl": "5", "fallthrough": ["none"], "namespaces": [],
        "endpoint_pod_names": False, "noendpoints": False, "ignore_empty_service": False,
    }
    lines: dict[str, Directive] = dict.fromkeys(values, e)
    seen: dict[str, Directive] = {}
    for opt in e.block or []:
        what = f'kubernetes option "{opt.name}"'
        if opt.block is not None:
            raise m.error(opt, f"{what} takes no {{ }} block")
        if opt.name in seen and opt.name not in KUBERNETES_API_OPTIONS:
            raise m.error(opt, f"{what} is given twice (also at {m.where(seen[opt.name])})")
        seen[opt.name] = opt
        name, value = kubernetes_option(m, opt, what, zones)
        if name:
            values[name], lines[name] = value, opt
    for name, value in values.items():
        m.set(name, value, lines[name], "kubernetes")


def _cluster_domain_first(m: Context, e: Directive, zones: list[str]) -> list[str]:
    """The zones with the cluster domain first: the first that is not a reverse zone, wherever
    it is written, as CoreDNS takes its primary zone (setup.go, primaryZoneIndex).

    One deliberate difference: CoreDNS's dnsutil.IsReverse wants a label before `in-addr.arpa.`
    or `ip6.arpa.`, so for it the bare reverse roots are not reverse zones, and one written
    first becomes the cluster domain (Services at `web.default.svc.in-addr.arpa`, their PTRs
    pointing there). clusterdns takes the zone the user meant, and says so; a block of
    reverse zones alone has no cluster domain to take."""
    forward = [z for z in zones if not is_reverse_zone(z)]
    if not forward:
        raise m.error(e, "kubernetes: only reverse zones: name the cluster domain too, like `kubernetes cluster.local in-addr.arpa ip6.arpa`")
    if zones[0] in ("in-addr.arpa", "ip6.arpa"):
        m.warn(e, f"kubernetes: {zones[0]} is written first, which CoreDNS would take as the cluster domain"
                  f" (its IsReverse wants a label before {zones[0]}); clusterdns takes {forward[0]}: write it first")
    return [forward[0], *(z for z in zones if z != forward[0])]


def kubernetes_option(m: Context, opt: Directive, what: str, zones: list[str]) -> tuple[str | None, Any]:
    n = opt.name
    if n not in KUBERNETES_OPTIONS:
        raise m.unknown(opt, "kubernetes option", n, KUBERNETES_OPTIONS)
    if n == "pods":
        m.arity(opt, 1, 1, what)
        if opt.args[0] not in POD_MODES:
            raise m.error(opt, f"{what}: {shown(opt.args[0])} is not one of {', '.join(POD_MODES)}")
        return "pods", opt.args[0]
    if n == "ttl":
        m.arity(opt, 1, 1, what)
        if not decimal(opt.args[0]) or not 0 <= int(opt.args[0]) <= 3600:
            raise m.error(opt, f"{what}: {shown(opt.args[0])} must be a whole number of seconds, 0-3600")
        return "ttl", opt.args[0]
    if n == "namespaces":
        m.arity(opt, 1, None, what)
        return "namespaces", list(opt.args)
    if n in ("endpoint_pod_names", "noendpoints"):
        m.arity(opt, 0, 0, what)
        return n, True
    if n == "fallthrough":
        try:
            return "fallthrough", [zone(z) for z in opt.args] or ["."]
        except ConfigError as err:
            raise m.error(opt, f"{what}: {err}") from None
    if n == "ignore":
        m.arity(opt, 1, 1, what)
        if opt.args[0] != "empty_service":
            raise m.error(opt, f"{what}: only `ignore empty_service` exists, not {shown(opt.args[0])}")
        return "ignore_empty_service", True
    if n == "manifests":
        m.arity(opt, 1, 1, what)
        return "manifests", opt.args[0]
    if n in KUBERNETES_API_OPTIONS:
        m.warn(opt, f"kubernetes {n}: ignored: clusterdns talks to no API server, it reads the manifests directory")
        return None, None
    raise m.unknown(opt, "kubernetes option", n, KUBERNETES_OPTIONS)
