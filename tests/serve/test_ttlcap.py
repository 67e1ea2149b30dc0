"""Our answers' TTLs as CoreDNS's cache passes them on (plugin/cache/cache.go WriteMsg,
computeTTL; plugin/pkg/dnsutil/ttl.go MinimalTTLWithMaximum), and where a Corefile turns it on."""

from __future__ import annotations

import pytest

from clusterdns.codes import NOERROR, NXDOMAIN, SERVFAIL, SOA, A
from clusterdns.config.corefile import corefile_values
from clusterdns.config.settings import Config
from clusterdns.records import RR
from clusterdns.resolver import Answer
from clusterdns.serve.ttlcap import TTLCap

NAME = b"\x03web\x07example\x00"


def rr(ttl: int, rtype: int = A) -> RR:
    return RR(None, rtype, ttl, b"\x0a\x00\x00\x01")


# (what, cache settings, rcode, TTLs of answer / authority, the TTLs clients see)
CASES = [
    ("a hosts ttl 60 under cache 30 becomes 30", {"cache": 30}, NOERROR, [60], [], [30]),
    ("a TTL below the cap is kept", {"cache": 30}, NOERROR, [5, 5], [], [5, 5]),
    ("the reply's lowest TTL is the cap: 60 and 10 under cache 30 give 10 and 10", {"cache": 30}, NOERROR, [60, 10], [], [10, 10]),
    ("never below MinimalDefaultTTL: 0 stays 0, 20 becomes 5", {"cache": 30}, NOERROR, [0, 20], [], [0, 5]),
    ("a denial uses the denial cap", {"cache": 3600, "cache_denial_ttl": 60}, NXDOMAIN, [], [300], [60]),
    ("NODATA is a denial", {"cache": 3600, "cache_denial_ttl": 60}, NOERROR, [], [300], [60]),
    ("without a TTL, cache caps answers at 3600", {"cache": 3600}, NOERROR, [86400], [], [3600]),
    ("SERVFAIL is not touched", {"cache": 30}, SERVFAIL, [60], [], [60]),
]


@pytest.mark.parametrize(("what", "settings", "rcode", "answer", "authority", "want"), CASES, ids=[c[0] for c in CASES])
def test_ttl_cap(what: str, settings: dict[str, int], rcode: int, answer: list[int], authority: list[int], want: list[int]) -> None:
    capped = TTLCap(Config(**settings)).apply(Answer(rcode, tuple(map(rr, answer)), tuple(rr(t, SOA) for t in authority)), NAME)
    assert [r.ttl for r in capped.answer + capped.authority] == want, what


def test_only_under_the_cache_zones() -> None:
    cap = TTLCap(Config(cache=30, cache_zones=("cluster.local",)))
    assert cap.apply(Answer(NOERROR, (rr(60),)), NAME).answer[0].ttl == 60


def test_a_corefile_cache_in_the_cluster_block_caps_and_a_stub_block_without_one_is_uncached() -> None:
    text = (".:53 {\n    kubernetes cluster.local\n    hosts {\n        10.0.0.1 web\n        ttl 60\n    }\n    forward . 192.0.2.53\n    cache 30\n}\n"
            "consul.local:53 {\n    forward . 192.0.2.54\n}\ncached.local:53 {\n    forward . 192.0.2.55\n    cache 30\n}\n")
    values, _ = corefile_values(text, "Corefile", {})
    assert values["cache_caps_own"] is True
    assert values["uncached_stubs"] == ("consul.local",)
    values, _ = corefile_values(".:53 {\n    kubernetes cluster.local\n    forward . 192.0.2.53\n}\n", "Corefile", {})
    assert "cache_caps_own" not in values
