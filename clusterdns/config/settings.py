"""One frozen Config: every `serve` setting defined once (default, converter, help)."""

# Longer than 300 lines: one frozen Config holds every setting, each with its flag and help.

from __future__ import annotations

import functools
import ipaddress
import math
import shlex
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from clusterdns.config.addresses import (
    DEFAULT_PORT,
    HEALTH_PORT,
    METRICS_PORT,
    READY_PORT,
    Address,
    endpoint,
    hostport_text,
    is_reverse_zone,
    network,
    normalize_zone,
    parse_hostport,
)
from clusterdns.errors import ConfigError, shown
from clusterdns.rewrite import parse_rule


def _cidr(text: str) -> str:
    """A network in canonical text (host bits cleared: 10.1.2.3/8 is 10.0.0.0/8)."""
    return str(network(text))


def _ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        raise ConfigError(f"bad IP address {shown(text)}") from None


def _stub_domain(text: str) -> tuple[str, str]:
    """`ZONE=ADDR[,ADDR...]` -> (zone, the addresses as given, comma-separated); checked here."""
    zone, sep, addresses = text.partition("=")
    if not sep or not zone.strip() or not addresses.strip():
        raise ConfigError(f"stub domain {shown(text)}: expected ZONE=ADDR[,ADDR...], like consul.local=10.150.0.1")
    for address in addresses.split(","):
        parse_hostport(address.strip(), 53)
    return normalize_zone(zone), ",".join(a.strip() for a in addresses.split(","))


def _any_zone(text: str) -> str:
    """A zone, or `.` for every name."""
    return "." if text.strip() in (".", "") else normalize_zone(text)


def _hosts_line(text: str) -> str:
    """An inline hosts line: an address and at least one name (plugin/hosts/hostsfile.go)."""
    fields = text.split("#", 1)[0].split()
    if len(fields) < 2:
        raise ConfigError(f"hosts line {shown(text)}: expected an address and at least one name")
    _ip(fields[0].split("%", 1)[0])
    return " ".join(fields)


def _rewrite_rule(text: str) -> str:
    """A rewrite rule as CoreDNS's Corefile writes it after `rewrite`; checked here."""
    words = shlex.split(text)
    parse_rule(words)
    return shlex.join(words)


POD_MODES = ("disabled", "insecure", "verified")
WATCH_MODES = ("auto", "poll", "off")
UPSTREAM_POLICIES = ("random", "round_robin", "sequential")
LOADBALANCE_POLICIES = ("round_robin", "off")

# The settings that change only how a running server listens, answers, forwards and caches:
# `check`, `records`, `export-zone` and `compare` take them too (one command line for serve and
# them), but their --help does not list them (tests/e2e/test_config.py checks that none of
# these is read on the way from the manifests to the snapshot).
SERVING_ONLY = frozenset({
    "listen", "upstream", "watch", "poll_interval", "health", "ready", "metrics", "lameduck", "reload", "reload_jitter", "transfer_to",
    "notify", "log_queries", "upstream_policy", "upstream_timeout", "max_fails", "max_concurrent", "cache", "cache_caps_own", "cache_size",
    "cache_zones", "cache_disable_success", "cache_disable_denial", "cache_denial_size", "cache_denial_ttl", "cache_servfail",
    "cache_keepttl", "cache_prefetch", "cache_prefetch_window", "cache_prefetch_percent", "serve_stale", "serve_stale_mode",
    "serve_stale_ttl", "serve_stale_recheck", "serve_stale_verify_timeout", "stub_domains", "uncached_stubs", "forward_except",
    "force_tcp", "prefer_udp", "health_check", "failfast", "upstream_expire", "max_idle_conns", "serve_zones", "rewrite", "loadbalance",
    "loop_detect", "allow_forward", "rate_limit", "tcp_max_queries", "workers",
})


@dataclass(frozen=True)
class Setting:
    """How one Config field appears on the command line."""

    flag: str
    help: str
    metavar: str | None = None
    repeat: bool = False  # repeatable flag, collected into a tuple
    choices: tuple[str, ...] | None = None
    convert: Callable[[str], Any] | None = None
    switch: bool = False  # a boolean flag without a value


def setting(default: Any, **kw: Any) -> Any:
    """A dataclass field carrying its CLI description in metadata (defaults are immutable: tuples)."""
    return field(default=default, metadata={"setting": Setting(**kw)})


# The numbers that cannot be negative, and what 0 means for each (None: 0 is refused below too).
_NOT_NEGATIVE = {
    "rate_limit": "off", "tcp_max_queries": "no limit", "lameduck": "close at once", "cache": "off", "cache_prefetch": "off",
    "cache_prefetch_window": None, "cache_denial_ttl": "as --cache, at most 1800", "serve_stale": "off", "serve_stale_ttl": "the TTL 0",
    "serve_stale_verify_timeout": "wait for the upstream's deadline", "hosts_reload": "never", "max_fails": "never marked down",
    "max_concurrent": None, "health_check": None, "upstream_expire": "never reuse", "max_idle_conns": "no limit", "reload": "only on SIGUSR1",
    "reload_jitter": "none",
}


@dataclass(frozen=True)
class Config:
    """Every setting of `clusterdns serve`. Validated on construction."""

    manifests: str = setting("zones", flag="--manifests", metavar="DIR", help="directory of Kubernetes manifests to serve (watched)")
    listen: tuple[Address, ...] = setting(
        (("127.0.0.1", DEFAULT_PORT),),
        flag="--listen",
        metavar="HOST:PORT",
        repeat=True,
        convert=parse_hostport,
        help="address to serve DNS on, UDP and TCP (repeatable; [::1]:5353 for IPv6)",
    )
    zones: tuple[str, ...] = setting(
        ("cluster.local", "in-addr.arpa", "ip6.arpa"),
        flag="--zone",
        metavar="ZONE",
        repeat=True,
        convert=normalize_zone,
        help="authoritative zone (repeatable): the first is the cluster domain; reverse zones bound the PTRs we answer"
        " (default: cluster.local in-addr.arpa ip6.arpa, as kubeadm)",
    )
    ttl: int = setting(5, flag="--ttl", metavar="SECONDS", convert=int, help="TTL of cluster records (0-3600, CoreDNS default 5)")
    pods: str = setting("insecure", flag="--pods", choices=POD_MODES, help="pod A records <a-b-c-d>.<ns>.pod.<zone> (kubeadm: insecure)")
    namespaces: tuple[str, ...] = setting(
        (), flag="--namespaces", metavar="NS,NS", convert=lambda s: tuple(n for n in s.split(",") if n), help="expose only these namespaces"
    )
    endpoint_pod_names: bool = setting(False, flag="--endpoint-pod-names", switch=True, help="name endpoints by their Pod name")
    ignore_empty_service: bool = setting(
        False, flag="--ignore-empty-service", switch=True, help="NXDOMAIN for ClusterIP Services with no ready endpoints"
    )
    noendpoints: bool = setting(False, flag="--noendpoints", switch=True, help="serve no endpoint records (headless, endpoint names)")
    relaxed_service_names: bool = setting(
        False, flag="--relaxed-service-names", switch=True,
        help="accept Service names that start with a digit (DNS-1123 labels), as Kubernetes's RelaxedServiceNameValidation gate",
    )
    fallthrough: tuple[str, ...] = setting(
        ("in-addr.arpa", "ip6.arpa"),
        flag="--fallthrough",
        metavar="ZONE",
        repeat=True,
        convert=lambda s: s if s == "none" else normalize_zone(s) if s != "." else ".",
        help="send NXDOMAIN names under ZONE to the upstream instead (repeatable; '.' for every zone; 'none' for no zone;"
        " default: in-addr.arpa ip6.arpa, as kubeadm)",
    )
    ns_address: tuple[str, ...] = setting(
        (), flag="--ns-address", metavar="IP", repeat=True, convert=_ip, help="address(es) of ns.dns.<zone> (default: the listen address)"
    )
    service_cidr: tuple[str, ...] = setting(
        ("10.96.0.0/12",), flag="--service-cidr", metavar="CIDR", repeat=True, convert=_cidr,
        help="ClusterIP range(s) for Services without one (kubeadm 10.96.0.0/12)",
    )
    pod_cidr: tuple[str, ...] = setting(
        ("10.244.0.0/16",), flag="--pod-cidr", metavar="CIDR", repeat=True, convert=_cidr, help="Pod IP range(s) for Pods without status.podIP"
    )
    upstream: tuple[str, ...] = setting(
        (),
        flag="--upstream",
        metavar="ADDR[:PORT]",
        repeat=True,
        help="forward other names here (repeatable; default: /etc/resolv.conf nameservers; 'none' answers REFUSED)",
    )
    watch: str = setting("auto", flag="--watch", choices=WATCH_MODES, help="watch the manifests: inotify (auto), polling, or off")
    poll_interval: float = setting(1.0, flag="--poll-interval", metavar="SECONDS", convert=float, help="polling period for --watch poll")

    health: Address | None = setting(
        ("127.0.0.1", HEALTH_PORT), flag="--health", metavar="HOST:PORT", convert=lambda s: endpoint(s, HEALTH_PORT),
        help="liveness endpoint GET /health (and /status), CoreDNS's health plugin; 'none' to turn off",
    )
    ready: Address | None = setting(
        ("127.0.0.1", READY_PORT), flag="--ready", metavar="HOST:PORT", convert=lambda s: endpoint(s, READY_PORT),
        help="readiness endpoint GET /ready: 200 once the manifests are served, 503 before and while draining; 'none' to turn off",
    )
    metrics: Address | None = setting(
        ("127.0.0.1", METRICS_PORT), flag="--metrics", metavar="HOST:PORT", convert=lambda s: endpoint(s, METRICS_PORT),
        help="Prometheus GET /metrics with CoreDNS's metric names; 'none' to turn off",
    )
    lameduck: float = setting(
        0.0, flag="--lameduck", metavar="SECONDS", convert=float,
        help="on SIGTERM, keep answering this long with /ready at 503 before closing (kubeadm uses 5)",
    )
    reload: float = setting(
        0.0, flag="--reload", metavar="SECONDS", convert=float,
        help="look at the --corefile and --config this often and apply a change without a restart (CoreDNS's reload; "
             "0: only on SIGUSR1; at least 2)",
    )
    reload_jitter: float = setting(
        15.0, flag="--reload-jitter", metavar="SECONDS", convert=float,
        help="move each --reload look by up to half this either way, at most half the interval (0 or at least 1)",
    )
    transfer_to: tuple[str, ...] = setting(
        (), flag="--transfer-to", metavar="CIDR", repeat=True, convert=lambda s: s if s == "*" else str(network(s)),
        help="allow AXFR/IXFR of the cluster zone from these addresses (repeatable; '*' for anyone; default: nobody)",
    )
    notify: tuple[Address, ...] = setting(
        (), flag="--notify", metavar="HOST:PORT", repeat=True, convert=lambda s: parse_hostport(s, 53),
        help="send DNS NOTIFY here when the zone's serial changes (repeatable)",
    )
    log_queries: bool = setting(False, flag="--log-queries", switch=True, help="log every query in CoreDNS's log plugin format")
    quiet: bool = setting(False, flag="--quiet", switch=True, help="log only warnings and errors (queries still, with --log-queries)")
    upstream_policy: str = setting(
        "random", flag="--upstream-policy", choices=UPSTREAM_POLICIES,
        help="order in which upstreams are tried, as CoreDNS forward's policy (default random)",
    )
    upstream_timeout: float = setting(2.0, flag="--upstream-timeout", metavar="SECONDS", convert=float, help="per-upstream read timeout (CoreDNS 2 s)")
    max_fails: int = setting(2, flag="--max-fails", metavar="N", convert=int, help="consecutive failures before an upstream is marked down and probed")
    max_concurrent: int = setting(1000, flag="--max-concurrent", metavar="N", convert=int, help="outstanding forwarded queries; REFUSED past it")
    cache: int = setting(30, flag="--cache", metavar="SECONDS", convert=int, help="cache forwarded answers up to this TTL (0: off; never our own zones)")
    cache_caps_own: bool = setting(
        False, flag="--cache-caps-own", switch=True,
        help="no TTL of our own answers above what --cache lets through, as CoreDNS's cache plugin does to every reply it"
             " passes on (set by `cache` in a Corefile's cluster block)",
    )
    cache_size: int = setting(9984, flag="--cache-size", metavar="N", convert=int, help="forwarded answers kept in the cache (CoreDNS 9984)")
    cache_zones: tuple[str, ...] = setting(
        (".",), flag="--cache-zone", metavar="ZONE", repeat=True, convert=_any_zone,
        help="cache only forwarded names under ZONE (repeatable; CoreDNS `cache TTL ZONES`; default '.', every name)",
    )
    cache_disable_success: tuple[str, ...] = setting(
        (), flag="--cache-disable-success", metavar="ZONE", repeat=True, convert=_any_zone,
        help="never cache answers for names under ZONE (CoreDNS cache `disable success ZONE`)",
    )
    cache_disable_denial: tuple[str, ...] = setting(
        (), flag="--cache-disable-denial", metavar="ZONE", repeat=True, convert=_any_zone,
        help="never cache denials (NXDOMAIN, NODATA, SERVFAIL) for names under ZONE (CoreDNS cache `disable denial ZONE`)",
    )
    cache_denial_size: int = setting(
        9984, flag="--cache-denial-size", metavar="N", convert=int,
        help="denials (NXDOMAIN, NODATA, SERVFAIL) kept in the cache, apart from answers (CoreDNS cache `denial CAPACITY`)",
    )
    cache_denial_ttl: int = setting(
        0, flag="--cache-denial-ttl", metavar="SECONDS", convert=int,
        help="the longest a denial is cached (CoreDNS cache `denial CAPACITY TTL`; 0: as --cache, at most 1800)",
    )
    cache_servfail: float = setting(
        5.0, flag="--cache-servfail", metavar="SECONDS", convert=float,
        help="how long an upstream's SERVFAIL is cached (CoreDNS cache `servfail`; 0: not cached; at most 300)",
    )
    cache_keepttl: bool = setting(
        False, flag="--cache-keepttl", switch=True, help="answers from the cache keep their first TTL instead of counting down (CoreDNS cache `keepttl`)"
    )
    cache_prefetch: int = setting(
        0, flag="--cache-prefetch", metavar="N", convert=int,
        help="refresh an answer asked N times within --cache-prefetch-window before it expires (CoreDNS cache `prefetch`; 0: off)",
    )
    cache_prefetch_window: float = setting(
        60.0, flag="--cache-prefetch-window", metavar="SECONDS", convert=float, help="the window --cache-prefetch counts questions in (CoreDNS 1m)"
    )
    cache_prefetch_percent: int = setting(
        10, flag="--cache-prefetch-percent", metavar="PERCENT", convert=int,
        help="prefetch when this share of the answer's TTL is left (10-90, CoreDNS 10)",
    )
    serve_stale: float = setting(
        0.0, flag="--serve-stale", metavar="SECONDS", convert=float,
        help="answer from expired cache entries for up to this long when no upstream answers (CoreDNS cache `serve_stale`; 0: off)",
    )
    serve_stale_mode: str = setting(
        "immediate", flag="--serve-stale-mode", choices=("immediate", "verify"),
        help="immediate: answer stale at once and refresh behind it; verify: ask the upstream first (CoreDNS serve_stale's refresh mode)",
    )
    serve_stale_ttl: int = setting(0, flag="--serve-stale-ttl", metavar="SECONDS", convert=int, help="the TTL of a stale answer (CoreDNS RESPONSE_TTL, 0)")
    serve_stale_recheck: float = setting(
        0.0, flag="--serve-stale-recheck", metavar="SECONDS", convert=float,
        help="after a failed refresh, serve stale without asking again for this long (CoreDNS FAILURE_RECHECK; at most 300)",
    )
    serve_stale_verify_timeout: float = setting(
        0.0, flag="--serve-stale-verify-timeout", metavar="SECONDS", convert=float,
        help="verify mode: answer stale if the upstream has not answered within this (0: wait for the upstream's deadline)",
    )
    stub_domains: tuple[tuple[str, str], ...] = setting(
        (), flag="--stub-domain", metavar="ZONE=ADDR[,ADDR]", repeat=True, convert=_stub_domain,
        help="forward names under ZONE to these upstreams instead of --upstream (repeatable; kube-dns stubDomains,"
        " a CoreDNS server block `ZONE { forward . ADDR }`); the longest zone wins",
    )
    uncached_stubs: tuple[str, ...] = setting(
        (), flag="--stub-domain-uncached", metavar="ZONE", repeat=True, convert=normalize_zone,
        help="a --stub-domain zone whose answers are not cached (repeatable; a Corefile server block without `cache`)",
    )
    forward_except: tuple[str, ...] = setting(
        (), flag="--forward-except", metavar="ZONE", repeat=True, convert=normalize_zone,
        help="never forward names under ZONE (CoreDNS forward `except`): they get SERVFAIL",
    )
    force_tcp: bool = setting(False, flag="--force-tcp", switch=True, help="ask the upstreams over TCP only (CoreDNS forward `force_tcp`)")
    prefer_udp: bool = setting(
        False, flag="--prefer-udp", switch=True, help="ask the upstreams over UDP even for TCP clients (CoreDNS forward `prefer_udp`)"
    )
    health_check: float = setting(
        0.5, flag="--health-check", metavar="SECONDS", convert=float, help="how often an upstream marked down is probed (CoreDNS forward 0.5s)"
    )
    failfast: bool = setting(
        False, flag="--failfast-all-unhealthy-upstreams", switch=True,
        help="SERVFAIL at once when every upstream is down, instead of trying them anyway (CoreDNS forward option)",
    )
    upstream_expire: float = setting(
        10.0, flag="--upstream-expire", metavar="SECONDS", convert=float,
        help="close a TCP connection to an upstream left idle this long (CoreDNS forward `expire`, 10s; 0: never reuse)",
    )
    max_idle_conns: int = setting(
        0, flag="--max-idle-conns", metavar="N", convert=int, help="idle TCP connections kept per upstream (CoreDNS forward `max_idle_conns`; 0: no limit)"
    )
    serve_zones: tuple[str, ...] = setting(
        (".",), flag="--serve-zone", metavar="ZONE", repeat=True, convert=_any_zone,
        help="the names this server answers at all (repeatable; default '.', every name); others get REFUSED, as CoreDNS answers"
        " names outside its server blocks",
    )
    hosts_file: str | None = setting(
        None, flag="--hosts-file", metavar="FILE", convert=lambda s: None if s == "none" else s,
        help="answer from this hosts file before the cluster, re-read when it changes (CoreDNS `hosts FILE`; default: none)",
    )
    hosts: tuple[str, ...] = setting(
        (), flag="--host", metavar="'IP NAME...'", repeat=True, convert=_hosts_line,
        help="a hosts-file line answered before the cluster (repeatable; CoreDNS `hosts { IP NAME }` inline entries)",
    )
    hosts_zones: tuple[str, ...] = setting(
        (".",), flag="--hosts-zone", metavar="ZONE", repeat=True, convert=_any_zone,
        help="the zones the hosts entries may answer in (repeatable; default '.', every name)",
    )
    hosts_ttl: int = setting(3600, flag="--hosts-ttl", metavar="SECONDS", convert=int, help="TTL of hosts answers (1-65535, CoreDNS 3600)")
    hosts_reload: float = setting(
        5.0, flag="--hosts-reload", metavar="SECONDS", convert=float, help="how often the hosts file is checked for changes (0: never; CoreDNS 5s)"
    )
    hosts_no_reverse: bool = setting(False, flag="--hosts-no-reverse", switch=True, help="no PTR answers from the hosts entries (CoreDNS `no_reverse`)")
    hosts_fallthrough: tuple[str, ...] = setting(
        (), flag="--hosts-fallthrough", metavar="ZONE", repeat=True, convert=_any_zone,
        help="a name under ZONE the hosts entries do not hold goes on to the cluster and the upstreams (repeatable; '.' every name;"
        " default none: SERVFAIL, as CoreDNS's hosts)",
    )
    hosts_fallthrough_unsupported: bool = setting(
        False, flag="--hosts-fallthrough-unsupported", switch=True,
        help="other types than A, AAAA and PTR for a hosts name go on too (CoreDNS `fallthrough_unsupported`)",
    )
    external_zones: tuple[str, ...] = setting(
        (), flag="--external-zone", metavar="ZONE", repeat=True, convert=normalize_zone,
        help="answer <svc>.<ns>.ZONE with the Service's external IPs and LoadBalancer addresses (repeatable; CoreDNS k8s_external)",
    )
    external_apex: str = setting("dns", flag="--external-apex", metavar="LABEL", help="k8s_external's apex: ns1.LABEL.ZONE is its nameserver")
    external_ttl: int = setting(5, flag="--external-ttl", metavar="SECONDS", convert=int, help="TTL of k8s_external's answers (0-3600)")
    external_headless: bool = setting(
        False, flag="--external-headless", switch=True, help="k8s_external answers headless Services with their endpoints (CoreDNS `headless`)"
    )
    external_fallthrough: tuple[str, ...] = setting(
        (), flag="--external-fallthrough", metavar="ZONE", repeat=True, convert=_any_zone,
        help="an NXDOMAIN of k8s_external under ZONE goes on to the next source (repeatable; '.' every name)",
    )
    rewrite: tuple[str, ...] = setting(
        (), flag="--rewrite", metavar="RULE", repeat=True, convert=_rewrite_rule,
        help="rewrite question names before answering, as CoreDNS's `rewrite` (repeatable, in order):"
        " 'name [exact|prefix|suffix|substring|regex] FROM TO [answer auto|name FROM TO|value FROM TO]...'",
    )
    loadbalance: str = setting(
        "round_robin", flag="--loadbalance", choices=LOADBALANCE_POLICIES,
        help="order of A, AAAA and MX records in each reply: round_robin shuffles them per reply (CoreDNS loadbalance,"
        " in kubeadm's Corefile), off keeps one fixed order",
    )
    loop_detect: str = setting("on", flag="--loop-detect", choices=("on", "off"), help="probe the upstreams for a forwarding loop at start (CoreDNS loop)")
    allow_forward: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"),
        flag="--allow-forward", metavar="CIDR", repeat=True, convert=_cidr,
        help="clients whose queries may be forwarded upstream (default: loopback and private ranges); others get REFUSED",
    )
    rate_limit: int = setting(0, flag="--rate-limit", metavar="N", convert=int, help="responses per second per client /24 (/56) before dropping (0: off)")
    tcp_max_queries: int = setting(
        0, flag="--tcp-max-queries", metavar="N", convert=int,
        help="queries answered on one TCP connection before it is closed (0: no limit, as NSD's tcp-query-count;"
        " a client pipelining past the limit loses the queries it had in flight)",
    )
    workers: int = setting(
        1, flag="--workers", metavar="N", convert=int, help="processes sharing each port with SO_REUSEPORT (one per spare core)"
    )

    def __post_init__(self) -> None:
        if not 0 <= self.ttl <= 3600:
            raise ConfigError(f"--ttl {self.ttl}: must be 0-3600")
        self._check_each()
        if not self.zones:
            raise ConfigError("at least one --zone is needed")
        if is_reverse_zone(self.zones[0]):
            raise ConfigError(f"--zone {self.zones[0]}: the first zone is the cluster domain and cannot be a reverse zone")
        for cidr in self.service_cidr + self.pod_cidr:
            network(cidr)
        if not self.listen:
            raise ConfigError("at least one --listen address is needed")
        if "none" in self.upstream and len(self.upstream) > 1:  # else `none` silently won over the addresses
            raise ConfigError(f"--upstream none (forward nothing) cannot go with addresses: {', '.join(u for u in self.upstream if u != 'none')}")
        twice = [a for i, a in enumerate(self.listen) if a[1] and a in self.listen[:i]]  # (port 0: a new port each)
        if twice:  # else the second bind fails as if another process held the port
            raise ConfigError(f"--listen {hostport_text(*twice[0])}: the same address is given twice")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers {self.workers}: must be 1-64")
        if self.poll_interval <= 0:  # a poll period of 0 or less spins a core
            raise ConfigError(f"--poll-interval {self.poll_interval:g}: must be more than 0")
        self._check_cache()

    def _check_each(self) -> None:
        """Each setting on its own: one of its choices, a finite number, not negative where
        that means nothing (a negative rate limit would drop every answer)."""
        for name, _, spec in settings():
            value = getattr(self, name)
            if spec.choices and value not in spec.choices:
                raise ConfigError(f"{spec.flag} {shown(value)}: must be one of {', '.join(spec.choices)}")
            if type(value) is float and not math.isfinite(value):
                raise ConfigError(f"{spec.flag} {value}: must be a finite number")
            if name in _NOT_NEGATIVE and value < 0:
                zero = _NOT_NEGATIVE[name]
                raise ConfigError(f"{spec.flag} {value:g}: cannot be negative" + (f" (0: {zero})" if zero else ""))

    def _check_cache(self) -> None:
        """The ranges CoreDNS's cache setup accepts (plugin/cache/setup.go)."""
        if not 0 <= self.cache_servfail <= 300:
            raise ConfigError(f"--cache-servfail {self.cache_servfail:g}: must be 0-300 seconds (CoreDNS: at most 5m)")
        if not 10 <= self.cache_prefetch_percent <= 90:
            raise ConfigError(f"--cache-prefetch-percent {self.cache_prefetch_percent}: must be 10-90")
        if not 0 <= self.serve_stale_recheck <= 300:
            raise ConfigError(f"--serve-stale-recheck {self.serve_stale_recheck:g}: must be 0-300 seconds (CoreDNS: at most 5m)")
        if not 1 <= self.hosts_ttl <= 65535:
            raise ConfigError(f"--hosts-ttl {self.hosts_ttl}: must be 1-65535")
        if not 0 <= self.external_ttl <= 3600:
            raise ConfigError(f"--external-ttl {self.external_ttl}: must be 0-3600")
        # What a forwarder and its cache cannot work with (checked here, so that `check` says it too).
        if not 0 < self.upstream_timeout <= 60:
            raise ConfigError(f"--upstream-timeout {self.upstream_timeout:g}: must be more than 0 and at most 60 seconds")
        if self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent {self.max_concurrent}: must be at least 1")
        if self.cache_size < 1 or self.cache_denial_size < 1:
            raise ConfigError(f"--cache-size {self.cache_size}, --cache-denial-size {self.cache_denial_size}: must be at least 1")
        self._check_reload()

    def _check_reload(self) -> None:
        """The ranges CoreDNS's reload accepts (plugin/reload/setup.go: interval at least 2s, jitter 0 or at least 1s)."""
        if 0 < self.reload < 2:
            raise ConfigError(f"--reload {self.reload:g}: must be 0 (only on SIGUSR1) or at least 2 seconds")
        if 0 < self.reload_jitter < 1:
            raise ConfigError(f"--reload-jitter {self.reload_jitter:g}: must be 0 or at least 1 second")

    @property
    def cluster_domain(self) -> str:
        return self.zones[0]

    @functools.cached_property
    def forward_zones(self) -> tuple[str, ...]:
        """Zones that carry the svc/pod tree (every non-reverse zone); worked out once (each Service's contribution asks)."""
        return tuple(z for z in self.zones if not is_reverse_zone(z))

    @property
    def fallthrough_zones(self) -> tuple[str, ...]:
        return tuple(z for z in self.fallthrough if z != "none")

    @property
    def stubs(self) -> dict[str, tuple[str, ...]]:
        """--stub-domain by zone: the addresses of every entry for it, in order."""
        out: dict[str, list[str]] = {}
        for zone, addresses in self.stub_domains:
            for address in addresses.split(","):
                if address not in out.setdefault(zone, []):
                    out[zone].append(address)
        return {zone: tuple(addresses) for zone, addresses in out.items()}

    @property
    def reverse_zones(self) -> tuple[str, ...]:
        return tuple(z for z in self.zones if is_reverse_zone(z))

    @property
    def nameserver_ips(self) -> tuple[str, ...]:
        """What `ns.dns.<zone>` answers: --ns-address, else the listen addresses."""
        if self.ns_address:
            return self.ns_address
        ips = []
        for host, _ in self.listen:
            ip = ipaddress.ip_address(host)
            if ip.is_unspecified:
                ip = ipaddress.ip_address("127.0.0.1" if ip.version == 4 else "::1")
            if ip.compressed not in ips:
                ips.append(ip.compressed)
        return tuple(ips)


def settings() -> list[tuple[str, Any, Setting]]:
    """(field name, default, Setting) for every Config field, in declaration order."""
    out = []
    for f in fields(Config):
        out.append((f.name, f.default, f.metadata["setting"]))
    return out
