"""/metrics: the Prometheus families, with CoreDNS's names and labels (plugin/metrics/vars,
plugin/forward/metrics.go, plugin/cache/metrics.go), made at scrape time from the counters.

The collector sees the server only through `MetricsSource`: the snapshot it serves, its
reload figures, and its counts as plain data (`Counts`, which --workers children send to
the first process so that /metrics adds every process up).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from clusterdns import __version__
from clusterdns.codes import RCODE_LABELS
from clusterdns.config.addresses import hostport_text
from clusterdns.ops.counters import DURATION_BUCKETS, SIZE_BUCKETS, ZONE, ListenerStats, labels
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder


class MetricsSource(Protocol):
    """What the collector reads of the server (serve/server.py's Server)."""

    @property
    def current(self) -> Snapshot | None: ...

    reloads: int
    reload_failures: int
    last_reload: dict[str, Any]

    def counts(self) -> Counts: ...


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels)


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    out, total = [], 0
    for bound, n in zip(bounds, counts):
        total += n
        out.append((repr(float(bound)), total))
    out.append(("+Inf", total + counts[-1]))
    return out


# What one process counted, as plain data (picklable): a --workers child sends its own
# to the first process, which serves /metrics for all of them (serve/workers.py).
Counts = dict[str, Any]


def counts(listeners: list[ListenerStats], groups: list[Forwarder], panics: int) -> Counts:
    """One process's counters: DNS cells per listener, panics, and per upstream group
    (the default upstreams, each stub domain) its forward and cache figures."""
    return {"listeners": [(ls.server, ls.proto, ls.family, dict(ls.cells)) for ls in listeners], "panics": panics,
            "forward": [_group(fwd) for fwd in groups if fwd.state]}


def _group(fwd: Forwarder) -> dict[str, Any]:
    ups = list(fwd.state.values())
    cache = fwd.cache
    return {
        "zone": fwd.zone if fwd.zone == "." else fwd.zone + ".",
        "requests": {up.name: up.requests for up in ups},
        "responses": {(up.name, rcode): n for up in ups for rcode, n in sorted(up.responses.items())},
        "health": {up.name: up.healthcheck_failures for up in ups},
        "conn_hits": {hostport_text(*to): n for to, n in fwd.pool.hits.items()},
        "conn_misses": {hostport_text(*to): n for to, n in fwd.pool.misses.items()},
        "rejects": fwd.rejects,
        "broken": fwd.healthcheck_broken,
        "cache": None if cache is None else {
            "entries": dict(cache.entries), "hits": cache.counted()[1], "evictions": dict(cache.evictions),
            "misses": cache.misses, "requests": cache.counted()[0], "prefetches": cache.prefetches, "served_stale": cache.served_stale,
        },
    }


class DNSCollector(Collector):
    """Builds the coredns_* and clusterdns_* families at scrape time, from this process's
    counts plus `remote`: the counts the --workers children sent for this scrape.

    Traffic, panics, forward and cache figures are summed over the processes (each worker
    has its own forward cache, so cache entries add up too). Reload and cluster figures are
    the first process's: every worker reads the same manifests.
    """

    def __init__(self, server: MetricsSource) -> None:
        self.server = server
        self.remote: list[Counts] = []

    def collect(self) -> Iterator[Any]:
        every = [self.server.counts()] + self.remote
        yield from self._dns(every)
        yield from self._build(every)
        yield from self._cluster()
        yield from self._forward(every)

    def _forward(self, every: list[Counts]) -> Iterator[Any]:
        """forward and cache plugin metrics (plugin/forward/metrics.go, plugin/pkg/proxy/metrics.go,
        plugin/cache/metrics.go), summed over processes; the cache's `zones` label is the group's zone."""
        forwards = [group for c in every for group in c["forward"]]
        if not forwards:  # no upstreams
            return
        requests = CounterMetricFamily("coredns_forward_requests", "Counter of requests made per upstream.", labels=["to"])
        responses = CounterMetricFamily("coredns_forward_responses", "Counter of responses received per upstream.", labels=["to", "rcode"])
        health = CounterMetricFamily("coredns_proxy_healthcheck_failures", "Counter of the number of failed healthchecks.",
                                     labels=["proxy_name", "to", "rcode"])
        conn_hits = CounterMetricFamily("coredns_proxy_conn_cache_hits", "Counter of connection cache hits per upstream and protocol.",
                                        labels=["proxy_name", "to", "proto"])
        conn_misses = CounterMetricFamily("coredns_proxy_conn_cache_misses", "Counter of connection cache misses per upstream and protocol.",
                                          labels=["proxy_name", "to", "proto"])
        for to, n in _sum(f["requests"] for f in forwards).items():
            requests.add_metric([to], n)
        for (to, rcode), n in _sum(f["responses"] for f in forwards).items():
            responses.add_metric([to, RCODE_LABELS.get(rcode, str(rcode))], n)
        for to, n in _sum(f["health"] for f in forwards).items():
            health.add_metric(["forward", to, ""], n)
        for family, field in ((conn_hits, "conn_hits"), (conn_misses, "conn_misses")):
            for to, n in _sum(f[field] for f in forwards).items():
                family.add_metric(["forward", to, "tcp"], n)
        yield from (requests, responses, health, conn_hits, conn_misses)
        rejects = CounterMetricFamily("coredns_forward_max_concurrent_rejects", "Counter of queries rejected because the concurrent queries were at maximum.")
        rejects.add_metric([], sum(f["rejects"] for f in forwards))
        broken = CounterMetricFamily("coredns_forward_healthcheck_broken", "Counter of the number of complete failures of the healthchecks.")
        broken.add_metric([], sum(f["broken"] for f in forwards))
        yield from (rejects, broken)
        yield from self._cache(every, [f for f in forwards if f["cache"] is not None])

    def _cache(self, every: list[Counts], groups: list[dict[str, Any]]) -> Iterator[Any]:
        if not groups:
            return
        labels = ["server", "type", "zones", "view"]
        entries = GaugeMetricFamily("coredns_cache_entries", "The number of elements in the cache.", labels=labels)
        hits = CounterMetricFamily("coredns_cache_hits", "The count of cache hits.", labels=labels)
        evictions = CounterMetricFamily("coredns_cache_evictions", "The count of cache evictions.", labels=labels)
        plain = ["server", "zones", "view"]
        misses = CounterMetricFamily("coredns_cache_misses", "The count of cache misses. Deprecated, derive from cache requests minus hits.", labels=plain)
        cache_requests = CounterMetricFamily("coredns_cache_requests", "The count of cache requests.", labels=plain)
        prefetches = CounterMetricFamily("coredns_cache_prefetch", "The number of times the cache has prefetched a cached item.", labels=plain)
        stale = CounterMetricFamily("coredns_cache_served_stale", "The number of requests served from stale cache entries.", labels=plain)
        server = (sorted({listener[0] for listener in every[0]["listeners"]}) or [""])[0]
        for zone in sorted({g["zone"] for g in groups}):
            caches = [g["cache"] for g in groups if g["zone"] == zone]
            for kind in ("success", "denial"):
                entries.add_metric([server, kind, zone, ""], sum(c["entries"].get(kind, 0) for c in caches))
                hits.add_metric([server, kind, zone, ""], sum(c["hits"].get(kind, 0) for c in caches))
                evictions.add_metric([server, kind, zone, ""], sum(c["evictions"].get(kind, 0) for c in caches))
            for family, field in ((misses, "misses"), (cache_requests, "requests"), (prefetches, "prefetches"), (stale, "served_stale")):
                family.add_metric([server, zone, ""], sum(c[field] for c in caches))
        yield from (entries, hits, evictions, misses, cache_requests, prefetches, stale)

    def _dns(self, every: list[Counts]) -> Iterator[Any]:
        requests = CounterMetricFamily("coredns_dns_requests", "Counter of DNS requests made per zone, protocol and family.",
                                       labels=["server", "zone", "view", "proto", "family", "type"])
        responses = CounterMetricFamily("coredns_dns_responses", "Counter of response status codes.",
                                        labels=["server", "zone", "view", "rcode", "plugin"])
        do = CounterMetricFamily("coredns_dns_do_requests", "Counter of DNS requests with DO bit set per zone.", labels=["server", "view", "zone"])
        duration = _histogram("coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took per zone.",
                              ["server", "zone", "view", "type"])
        req_size = _histogram("coredns_dns_request_size_bytes", "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
                              ["server", "zone", "view", "proto"])
        resp_size = _histogram("coredns_dns_response_size_bytes", "Size of the returned response in bytes.", ["server", "zone", "view", "proto"])
        sums: dict[tuple, list[Any]] = {}
        for server, proto, family, cells in (listener for c in every for listener in c["listeners"]):
            for (k, request, response), cell in cells.items():
                qtype, rcode, plugin, dobit = labels(k)
                buckets = cell[1:]
                count = sum(buckets)
                _add(sums, ("req", server, proto, family, qtype), count)
                _add(sums, ("resp", server, rcode, plugin), count)
                if dobit:
                    _add(sums, ("do", server), count)
                _add_hist(sums, ("dur", server, qtype), buckets, cell[0])
                _add_hist(sums, ("rqs", server, proto), _one_bucket(request, count), request * count)
                _add_hist(sums, ("rss", server, proto), _one_bucket(response, count), response * count)
        for k, v in sums.items():
            kind, server = k[0], k[1]
            if kind == "req":
                requests.add_metric([server, ZONE, "", k[2], k[3], k[4]], v[0])
            elif kind == "resp":
                responses.add_metric([server, ZONE, "", k[2], k[3]], v[0])
            elif kind == "do":
                do.add_metric([server, "", ZONE], v[0])
            elif kind == "dur":
                duration.add_metric([server, ZONE, "", k[2]], _buckets(DURATION_BUCKETS, v[0]), v[1])
            elif kind == "rqs":
                req_size.add_metric([server, ZONE, "", k[2]], _buckets(SIZE_BUCKETS, v[0]), v[1])
            else:
                resp_size.add_metric([server, ZONE, "", k[2]], _buckets(SIZE_BUCKETS, v[0]), v[1])
        yield from (requests, responses, do, duration, req_size, resp_size)

    def _build(self, every: list[Counts]) -> Iterator[Any]:
        info = GaugeMetricFamily("coredns_build_info", "A metric with a constant '1' value labeled by version, revision, and goversion.",
                                 labels=["version", "revision", "goversion"])
        info.add_metric([__version__, "clusterdns", "python"], 1)
        yield info
        panics = CounterMetricFamily("coredns_panics", "A metrics that counts the number of panics.")
        panics.add_metric([], sum(c["panics"] for c in every))
        yield panics
        reload_failed = CounterMetricFamily("coredns_reload_failed", "Counter of the number of failed reload attempts.")
        reload_failed.add_metric([], self.server.reload_failures)
        yield reload_failed

    def _cluster(self) -> Iterator[Any]:
        snap = self.server.current
        if snap is None or snap.state is None:
            return
        state = snap.state
        objects = GaugeMetricFamily("clusterdns_objects", "Objects served, by kind (Pods include those derived from workloads).", labels=["kind"])
        objects.add_metric(["Service"], len(state.services))
        objects.add_metric(["Pod"], len(state.pods))
        objects.add_metric(["Namespace"], len(state.namespaces))
        yield objects
        names = GaugeMetricFamily("clusterdns_names", "Names answered (forward and reverse).")
        names.add_metric([], snap.names())
        yield names
        serial = GaugeMetricFamily("clusterdns_snapshot_serial", "SOA serial of the snapshot being served.")
        serial.add_metric([], snap.serial)
        yield serial
        errors = GaugeMetricFamily("clusterdns_manifest_errors", "Manifest errors and warnings in the last load.", labels=["level"])
        for level in ("error", "warning"):
            errors.add_metric([level], sum(p.level == level for p in state.problems))
        yield errors
        reloads = CounterMetricFamily("clusterdns_manifest_reloads", "Snapshots built from the manifests.")
        reloads.add_metric([], self.server.reloads)
        yield reloads
        seconds = GaugeMetricFamily("clusterdns_reload_duration_seconds", "How long the last reload took.")
        seconds.add_metric([], self.server.last_reload.get("seconds", 0.0))
        yield seconds


def _sum(dicts: Iterable[dict[Any, int]]) -> dict[Any, int]:
    """Add up counters by key, keys in the order first seen."""
    out: dict[Any, int] = {}
    for d in dicts:
        for k, n in d.items():
            out[k] = out.get(k, 0) + n
    return out


def _one_bucket(size: int, count: int) -> list[int]:
    buckets = [0] * (len(SIZE_BUCKETS) + 1)
    buckets[bisect.bisect_left(SIZE_BUCKETS, size)] = count
    return buckets


def _add(sums: dict[tuple, list[Any]], k: tuple, n: int) -> None:
    cell = sums.get(k)
    if cell is None:
        sums[k] = [n]
    else:
        cell[0] += n


def _add_hist(sums: dict[tuple, list[Any]], k: tuple, buckets: list[int], total: float) -> None:
    cell = sums.get(k)
    if cell is None:
        sums[k] = [list(buckets), total]
    else:
        cell[0] = [a + b for a, b in zip(cell[0], buckets)]
        cell[1] += total
