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


def _file(k: int, port: int = 80, extra: str = "", own: bool = False) -> str:
    """Five Services (one headless with an EndpointSlice, one ExternalName) in namespace ns<k%2>;
    `own`: the slice holds the server's address (the NS records follow it, nameservers.py)."""
    ns = f"ns{k % 2}"
    first = "10.0.0.10" if own else f"10.2.{k}.1"
    docs = [f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{k}-{i}, namespace: {ns}}}\n"
            f"spec: {{clusterIP: 10.96.{k}.{i + 1}, ports: [{{name: http, port: {port}}}]}}\n" for i in range(3)]
    docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: h{k}, namespace: {ns}}}\nspec: {{clusterIP: None, ports: [{{name: http, port: 80}}]}}\n")
    docs.append(f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4\n"
                f"metadata: {{name: h{k}-1, namespace: {ns}, labels: {{kubernetes.io/service-name: h{k}}}}}\n"
                f"ports: [{{name: http, port: 80}}]\nendpoints: [{{addresses: [{first}], hostname: a}}, {{addresses: [10.2.{k}.2]}}]\n")
    docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: x{k}, namespace: {ns}}}\nspec: {{type: ExternalName, externalName: x{k}.example.test}}\n")
    return "---\n".join(docs) + extra


def _tables(snap: object) -> tuple:
    return tuple(getattr(snap, f) for f in ("entries", "static", "static_owners", "structure", "externals", "namespaces", "ptr_targets", "apex_ns", "apex_glue", "own"))


def test_an_edit_merges_into_the_previous_tables_as_a_fresh_load_makes_them(tmp_path: Path) -> None:
    """build() merges a few changed Services into the previous snapshot's entries
    (snapshot/build.py _Builder.entries); after every kind of edit they equal a fresh load's."""
    for k in range(20):
        (tmp_path / f"part{k:02d}.yaml").write_text(_file(k, own=k == 1))
    config = Config(manifests=str(tmp_path), ns_address=("10.0.0.10",))
    pipeline = Pipeline(tmp_path, config)
    pipeline.refresh(full=True)
    edits = [
        ("part03.yaml", _file(3, port=81)),  # a port: the Services' SRVs change
        ("part04.yaml", _file(4).replace("name: s4-1,", "name: renamed,")),  # a rename: one name goes, one comes
        ("part05.yaml", _file(5).replace("x5.example.test", "y5.example.test")),  # an ExternalName target
        ("part06.yaml", _file(6).replace("hostname: a", "hostname: b")),  # an endpoint name
        ("part07.yaml", None),  # a file removed: its Services go
        ("part21.yaml", _file(21)),  # a file added
        ("part01.yaml", _file(1)),  # the server's endpoint goes: NS ns.dns
        ("part09.yaml", _file(9, own=True)),  # and comes back in another Service: NS h9.ns1.svc
        ("part08.yaml", _file(8).replace("namespace: ns0", "namespace: ns9")),  # a new namespace
    ]
    for name, text in edits:
        if text is None:
            (tmp_path / name).unlink()
        else:
            (tmp_path / name).write_text(text)
        update = pipeline.refresh()
        assert update.rebuilt, name
        assert _tables(update.snapshot) == _tables(load(config)), name
        assert update.snapshot.serial > update.previous.serial  # type: ignore[union-attr]
