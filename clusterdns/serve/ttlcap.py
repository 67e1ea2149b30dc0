"""The TTLs of our own answers as CoreDNS's cache plugin passes them on: capped, never raised.

In CoreDNS the cache plugin comes before hosts, k8s_external and kubernetes in the chain
(plugin.cfg), and its ResponseWriter caps every reply it writes, cached or not
(plugin/cache/cache.go WriteMsg: "Apply capped TTL to this reply"): the reply's lowest TTL
(dnsutil.MinimalTTLWithMaximum), clamped between the cache's minimum (5 s) and its maximum
for answers or denials, is the most any record may say. So with `cache 30`, a hosts entry
with `ttl 60` reaches clients as 30. clusterdns never caches its own answers (they change
with the manifests at once), but caps them the same way.
"""

from __future__ import annotations

from dataclasses import replace

from clusterdns.codes import NOERROR, NXDOMAIN
from clusterdns.config.settings import Config
from clusterdns.resolver import Answer
from clusterdns.upstream.cache import DENIAL_CAP, SUCCESS_CAP, under, zone_labels

MIN_TTL = 5  # dnsutil.MinimalDefaultTTL: the cache's default minimum for answers and denials


class TTLCap:
    """The cache's caps for answers and denials, and the zones its cache covers."""

    def __init__(self, config: Config) -> None:
        self.success = min(config.cache, SUCCESS_CAP)
        self.denial = config.cache_denial_ttl or min(config.cache, DENIAL_CAP)
        self.zones = None if "." in config.cache_zones else zone_labels(config.cache_zones)

    def apply(self, answer: Answer, wire_name: bytes) -> Answer:
        """`answer` with no TTL above what the cache would let through for it."""
        if answer.rcode not in (NOERROR, NXDOMAIN) or (self.zones is not None and not under(wire_name, self.zones)):
            return answer
        records = answer.answer + answer.authority + answer.additional
        if not records:
            return answer
        denial = answer.rcode == NXDOMAIN or not answer.answer
        most = self.denial if denial else self.success
        cap = min(max(min(min(rr.ttl for rr in records), most), MIN_TTL), most)
        if all(rr.ttl <= cap for rr in records):
            return answer
        return replace(answer, answer=_capped(answer.answer, cap), authority=_capped(answer.authority, cap),
                       additional=_capped(answer.additional, cap))


def _capped(records: tuple, cap: int) -> tuple:  # type: ignore[type-arg]
    return tuple(rr if rr.ttl <= cap else replace(rr, ttl=cap) for rr in records)
