"""One frozen Config: every `serve` setting defined once (default, converter, help)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from clusterdns.config.addresses import (
    DEFAULT_PORT,
    HEALTH_PORT,
    METRICS_PORT,
    READY_PORT,
    Address,
    endpoint,
    is_reverse_zone,
    network,
    normalize_zone,
    parse_hostport,
)
from clusterdns.errors import ConfigError


def _cidr(text: str) -> str:
    """A network in canonical text (host bits cleared: 10.1.2.3/8 is 10.0.0.0/8)."""
    return str(network(text))


def _ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        raise ConfigError(f"bad IP address {text!r}") from None


POD_MODES = ("disabled", "insecure", "verified")
WATCH_MODES = ("auto", "poll", "off")
UPSTREAM_POLICIES = ("random", "round_robin", "sequential")
LOADBALANCE_POLICIES = ("round_robin", "off")


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
    cache_size: int = setting(9984, flag="--cache-size", metavar="N", convert=int, help="forwarded answers kept in the cache (CoreDNS 9984)")
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
        for name, _, spec in settings():
            if spec.choices and getattr(self, name) not in spec.choices:
                raise ConfigError(f"{spec.flag} {getattr(self, name)!r}: must be one of {', '.join(spec.choices)}")
        if not self.zones:
            raise ConfigError("at least one --zone is needed")
        if is_reverse_zone(self.zones[0]):
            raise ConfigError(f"--zone {self.zones[0]}: the first zone is the cluster domain and cannot be a reverse zone")
        for cidr in self.service_cidr + self.pod_cidr:
            network(cidr)
        if not self.listen:
            raise ConfigError("at least one --listen address is needed")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"--workers {self.workers}: must be 1-64")

    @property
    def cluster_domain(self) -> str:
        return self.zones[0]

    @property
    def forward_zones(self) -> tuple[str, ...]:
        """Zones that carry the svc/pod tree (every non-reverse zone)."""
        return tuple(z for z in self.zones if not is_reverse_zone(z))

    @property
    def fallthrough_zones(self) -> tuple[str, ...]:
        return tuple(z for z in self.fallthrough if z != "none")

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
