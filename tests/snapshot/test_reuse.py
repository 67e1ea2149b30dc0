"""A configuration reload hands the running snapshot to a new Pipeline (serve/reconfigure.py):
its per-Service contributions are reused only when made under the same settings, so a reload
that turns on endpoint_pod_names or changes the TTL answers exactly as a fresh start would."""

from __future__ import annotations

from pathlib import Path

import pytest

from clusterdns.config.settings import Config
from clusterdns.pipeline import Pipeline, load
from clusterdns.snapshot.xfr import zone_records
from tests.snapshot.test_xfr import MANIFESTS

EXTERNAL = """\
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.test}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: None, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
addressType: IPv4
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
ports: [{name: http, port: 80}]
endpoints: [{addresses: [10.2.0.1], targetRef: {kind: Pod, name: web-0, namespace: default}}]
"""


@pytest.mark.parametrize("changed", [{"endpoint_pod_names": True}, {"ttl": 99}, {"noendpoints": True}])
def test_a_reload_that_changes_a_setting_rebuilds_unchanged_services(tmp_path: Path, changed: dict[str, object]) -> None:
    (tmp_path / "all.yaml").write_text(MANIFESTS + EXTERNAL)
    before = Config(manifests=str(tmp_path), ns_address=("10.0.0.10",))
    after = Config(manifests=str(tmp_path), ns_address=("10.0.0.10",), **changed)  # type: ignore[arg-type]
    running = Pipeline(tmp_path, before).refresh(full=True).snapshot
    reloaded = Pipeline(tmp_path, after, running).refresh(full=True).snapshot
    fresh = load(after)
    assert list(zone_records(reloaded)) == list(zone_records(fresh))
    assert list(zone_records(reloaded)) != list(zone_records(running))
    assert reloaded.entries == fresh.entries and reloaded.static == fresh.static


def test_a_reload_with_the_same_settings_reuses_every_contribution(tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(MANIFESTS + EXTERNAL)
    config = Config(manifests=str(tmp_path), ns_address=("10.0.0.10",))
    running = Pipeline(tmp_path, config).refresh(full=True).snapshot
    reloaded = Pipeline(tmp_path, config, running).refresh(full=True).snapshot
    assert all(reloaded.contributions[key][1] is contrib for key, (_, contrib) in running.contributions.items())
    assert reloaded.serial == running.serial
