"""What each listening socket answered, counted cheaply on the hot path, with CoreDNS's labels.

Each query costs one dict lookup and a few list increments in the transport that answered
it (`ListenerStats.record`), or, for a reply from a listener's cache, the increments alone
(`count`, in Python or in serve/_udpbatch.c). The Prometheus families are made from these cells
only when /metrics is scraped (metrics.py).
"""

from __future__ import annotations

import bisect
from typing import Any

from clusterdns.codes import RCODE_LABELS, TYPE_LABELS

# CoreDNS: prometheus.ExponentialBuckets(0.00025, 2, 16) for durations.
DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))
FASTEST = DURATION_BUCKETS[0]
SIZE_BUCKETS = (0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000)
ZONE = "."  # we behave as one server block for the root zone, like kubeadm's `.:53`

# What a reply was, for the counters: "type|rcode|plugin|do" (labels, and "1" for the DO
# bit). One string rather than a tuple because a string caches its hash: every query looks
# its counters up by it, and a cached answer hands back the same string object each time.
CounterKey = str
_SEP = "|"  # in no type, rcode or plugin label


def key(qtype: int, rcode: int, plugin: str, do: bool = False) -> CounterKey:
    return _SEP.join((TYPE_LABELS.get(qtype, "other"), RCODE_LABELS.get(rcode, str(rcode)), plugin, "1" if do else ""))


def labels(k: CounterKey) -> tuple[str, str, str, bool]:
    """(type, rcode, plugin, DO bit) of a CounterKey."""
    qtype, rcode, plugin, do = k.split(_SEP)
    return qtype, rcode, plugin, do == "1"


class ListenerStats:
    """Counts for one listening socket: its `server`, `proto` and `family` labels are fixed."""

    def __init__(self, server: str, proto: str, family: int, querylog: Any = None) -> None:
        self.server, self.proto, self.family = server, proto, str(family)
        # (key, request size, response size) -> [duration sum, then a count per duration
        # bucket]; the request count is the buckets' sum. A cached answer has fixed sizes, so
        # the size histograms are made at scrape time from these counts and the hot path
        # does one dict lookup and two additions.
        self.cells: dict[tuple[CounterKey, int, int], list[Any]] = {}
        self.querylog = querylog  # querylog.record when --log-queries, else None

    def record(self, k: CounterKey, request: int, response: int, seconds: float) -> list[Any]:
        """Count one answer; returns its cell, where repeats of the same reply are counted (count)."""
        cell = self.cells.get((k, request, response))
        if cell is None:
            cell = self.cells[(k, request, response)] = [0.0] + [0] * (len(DURATION_BUCKETS) + 1)
        count(cell, seconds)
        return cell


def count(cell: list[Any], seconds: float) -> None:
    """One more answer in a cell: its duration added, its histogram bucket counted."""
    cell[0] += seconds
    if seconds <= FASTEST:  # nearly every answer from memory: no bisect
        cell[1] += 1
    else:
        cell[1 + bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
