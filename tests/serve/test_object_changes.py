"""The reload line's '+added -removed ~changed' (serve/reports.py object_changes): the walk side by
side for lists of the same keys, and the full comparison when something came or went."""

from __future__ import annotations

import pytest

from clusterdns.model import ClusterState, Pod, Service
from clusterdns.serve.reports import object_changes


def state(services: list[tuple[str, str]], pods: list[tuple[str, str, str]]) -> ClusterState:
    return ClusterState(services=tuple(Service(ns, name, cluster_ips=(ip,)) for ns, name, ip in [(*s, "10.96.0.1") for s in services]),
                        pods=tuple(Pod(ns, name, ips=(ip,)) for ns, name, ip in pods))


BEFORE = state([("a", "web"), ("b", "db")], [("a", "web-1", "10.0.0.1"), ("a", "web-2", "10.0.0.2")])


@pytest.mark.parametrize("after, expected", [
    (BEFORE, "+0 -0 ~0"),
    (state([("a", "web"), ("b", "db")], [("a", "web-1", "10.0.0.1"), ("a", "web-2", "10.0.0.9")]), "+0 -0 ~1"),  # equal keys, one Pod changed
    (state([("a", "web"), ("b", "db")], [("a", "web-1", "10.0.0.1"), ("a", "web-3", "10.0.0.2")]), "+1 -1 ~0"),  # a rename: as many, other keys
    (state([("a", "web")], [("a", "web-1", "10.0.0.1"), ("a", "web-2", "10.0.0.2")]), "+0 -1 ~0"),
    (state([("a", "web"), ("b", "db"), ("c", "new")], [("a", "web-1", "10.0.0.7")]), "+1 -1 ~1"),
])
def test_object_changes(after: ClusterState, expected: str) -> None:
    assert object_changes(BEFORE, after) == expected
