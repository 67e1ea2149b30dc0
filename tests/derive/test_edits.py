"""Random edits through the pipeline, as the server reloads them: after each, the snapshot
is the one a fresh load of the same files gives. An edit that replaces a few objects by
others of the same names is patched into the previous run's results (derive/dedupe.py
deduped, memo.patch_step for ClusterIPs and endpoints); anything else is computed again;
either way nothing may differ."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from clusterdns.config.settings import Config
from clusterdns.pipeline import Pipeline, load


def service(i: int, rng: random.Random, noisy: bool = True, warn: bool = False) -> str:
    head = f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\n  namespace: ns{i % 2}\nspec:\n"
    ports = f"  ports:\n  - name: http\n    port: {rng.choice((80, 81, 8080))}\n    targetPort: {rng.choice(('http', 8080))}\n"
    app = f"a{2 * rng.randrange(4) + i % 2}"  # an app that Deployments of its namespace run (d_j: a{j % 8} in ns{j % 2})
    if warn:  # a warning: a Service that selects no Pod, holds an IP as externalName or wants IPv6 where there is none
        return head + rng.choice((ports + "  selector: {app: nobody}\n", "  type: ExternalName\n  externalName: 192.0.2.9\n",
                                  ports + "  ipFamilyPolicy: RequireDualStack\n"))
    variant = rng.randrange(9)
    if not noisy and variant in (2, 3, 4):
        variant = 5
    if variant == 0:
        return head + ports + "  clusterIP: None\n" + f"  selector: {{app: {app}}}\n"
    if variant == 1:
        return head + ports + f"  clusterIP: 10.96.200.{i}\n" + f"  selector: {{app: {app}}}\n"
    if variant == 2:
        return head + "  type: ExternalName\n" + f"  externalName: {rng.choice(('example.org', '192.0.2.9'))}\n"
    if variant == 3:
        return head + ports + "  ipFamilyPolicy: RequireDualStack\n" + f"  selector: {{app: {app}}}\n"
    if variant == 4:
        return head + ports  # no selector: endpoints only from an EndpointSlice or Endpoints
    return head + ports + f"  selector: {{app: {app}}}\n"


def deployment(i: int, rng: random.Random, noisy: bool = True, warn: bool = False) -> str:
    return (
        f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\n  namespace: ns{i % 2}\nspec:\n"
        f"  replicas: {rng.randrange(0 if noisy else 1, 4)}\n  selector: {{matchLabels: {{app: a{i % 8}}}}}\n"
        f"  template:\n    metadata: {{labels: {{app: a{i % 8}}}}}\n"
        f"    spec: {{containers: [{{name: c, ports: [{{name: http, containerPort: {rng.choice((8080, 9090))}}}]}}]}}\n"
    )


def pod(i: int, rng: random.Random, noisy: bool = True, warn: bool = False) -> str:
    status = rng.choice(("", f"status: {{podIP: 10.244.0.{i + 1}}}\n", "status: {podIP: 10.244.0.200, conditions: [{type: Ready, status: 'False'}]}\n"))
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: ns{i % 2}\n  labels: {{app: a{rng.randrange(8)}}}\n"
        f"spec: {{containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\n{status}"
    )


def endpoint_slice(i: int, rng: random.Random, noisy: bool = True, warn: bool = False) -> str:
    return (
        f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s{i}-x\n  namespace: ns{i % 2}\n"
        f"  labels: {{kubernetes.io/service-name: s{i}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\n"
        f"endpoints:\n- addresses: [192.0.2.{rng.randrange(1, 250)}]\n  conditions: {{ready: {rng.choice(('true', 'false'))}}}\n"
    )


def endpoint_slice_of(i: int) -> str:
    """A ready EndpointSlice of Service s{i} in `default`."""
    return (
        f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s{i}-x\n"
        f"  labels: {{kubernetes.io/service-name: s{i}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\n"
        "endpoints:\n- addresses: [192.0.2.7]\n"
    )


def endpoints(i: int, rng: random.Random, noisy: bool = True, warn: bool = False) -> str:
    return (
        f"---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: s{i}\n  namespace: ns{i % 2}\n"
        f"subsets:\n- addresses: [{{ip: 198.51.100.{rng.randrange(1, 250)}}}]\n  ports: [{{name: http, port: 8080}}]\n"
    )


MAKERS = {"svc": service, "deploy": deployment, "pod": pod, "slice": endpoint_slice, "ep": endpoints}
COUNTS = {"svc": 24, "deploy": 12, "pod": 16, "slice": 4, "ep": 3}


def clean(kind: str, i: int) -> bool:
    """Objects that warn in no cluster: no EndpointSlice or Endpoints (their Service may be gone)."""
    return kind in ("svc", "deploy", "pod")


def write(root: Path, files: dict[str, list[str]]) -> None:
    for name, documents in files.items():
        (root / name).write_text("".join(documents))


def edit(rng: random.Random, files: dict[str, list[tuple[str, int]]], texts: dict[str, list[str]], noisy: bool, undo: list[tuple[str, int, str]]) -> None:
    """Mostly an object changed under its own name (the edits patched); sometimes one added,
    removed, renamed or defined twice (the edits computed again)."""
    if undo:
        name, at, text = undo.pop()
        texts[name][at] = text
        return
    name = rng.choice(sorted(files))
    documents = files[name]
    what = rng.random()
    if what < 0.1 and documents:  # renamed in place: another name, sometimes one taken (defined twice)
        at = rng.randrange(len(documents))
        kind, i = documents[at]
        documents[at] = (kind, rng.randrange(COUNTS[kind] * 2))
        texts[name][at] = MAKERS[kind](documents[at][1], rng, noisy)
    elif what < 0.75 and documents:
        at = rng.randrange(len(documents))
        kind, i = documents[at]
        warn = not noisy and kind == "svc" and rng.randrange(8) == 0  # the first warning in a clean cluster: not patched
        texts[name][at] = MAKERS[kind](i, rng, noisy, warn)
        if warn:
            undo.append((name, at, MAKERS[kind](i, rng, noisy)))  # gone with the next edit
    elif what < 0.85 and documents and noisy:
        at = rng.randrange(len(documents))
        del documents[at], texts[name][at]
    elif noisy:
        kind = rng.choice(sorted(MAKERS))
        i = rng.randrange(COUNTS[kind] + 2)  # sometimes a name another document has: defined twice
        documents.append((kind, i))
        texts[name].append(MAKERS[kind](i, rng, noisy))


@pytest.mark.parametrize("seed", range(16))
def test_after_each_edit_the_snapshot_is_a_fresh_loads(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    noisy = seed % 2 == 1  # even seeds: clusters without a warning, whose edits are patched (a step that found a problem is computed again)
    config = Config(pod_cidr=(rng.choice(("10.244.0.0/24", "10.244.0.0/27")),), manifests=str(tmp_path))
    files: dict[str, list[tuple[str, int]]] = {f"f{n}.yaml": [] for n in range(3)}
    for kind, count in COUNTS.items():
        for i in range(count if noisy or clean(kind, 0) else 0):
            files[f"f{rng.randrange(3)}.yaml"].append((kind, i))
    texts = {name: [MAKERS[kind](i, rng, noisy) for kind, i in documents] for name, documents in files.items()}
    write(tmp_path, texts)
    pipeline = Pipeline(tmp_path, config)
    pipeline.refresh(full=True)
    undo: list[tuple[str, int, str]] = []
    for _ in range(25):
        edit(rng, files, texts, noisy, undo)
        write(tmp_path, texts)
        got = pipeline.refresh().snapshot
        fresh = load(config)
        assert got.state == fresh.state
        assert (got.entries, got.static, got.problems) == (fresh.entries, fresh.static, fresh.problems)
        assert got.own == fresh.own and got.pod_ips == fresh.pod_ips and got.externals == fresh.externals
        assert list(got.contributions.items()) == list(fresh.contributions.items())  # in order: AXFR's


def named(i: int, spec: str) -> str:
    return f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s{i}\nspec:\n{spec}"


SELECTING = "  ports: [{name: http, port: 80}]\n  selector: {app: a0}\n"
DEPLOYMENT = deployment(0, random.Random(0)).replace("replicas: 0", "replicas: 1").replace("ns0", "default")


@pytest.mark.parametrize(
    ("before", "after", "warning"),
    [
        (SELECTING + "  ipFamilyPolicy: SingleStack\n", SELECTING + "  ipFamilyPolicy: RequireDualStack\n", "RequireDualStack but no IPv6"),
        ("  type: ExternalName\n  externalName: example.org\n", "  type: ExternalName\n  externalName: 192.0.2.9\n", "is an IP address"),
        (SELECTING, SELECTING.replace("a0", "nobody"), "matches no Pods"),
    ],
)
def test_an_edit_that_finds_a_problem_is_not_patched(tmp_path: Path, before: str, after: str, warning: str) -> None:
    """One Service of sixteen edited under its own name, into one that warns: the warning is found.
    (The same number of lines: a line more would move every later document, and with its
    line every later object would be another one.)"""
    config = Config(manifests=str(tmp_path))
    others = "".join(named(i, SELECTING) for i in range(1, 16))
    (tmp_path / "a.yaml").write_text(DEPLOYMENT + named(0, before) + others)
    pipeline = Pipeline(tmp_path, config)
    assert not pipeline.refresh(full=True).snapshot.problems
    (tmp_path / "a.yaml").write_text(DEPLOYMENT + named(0, after) + others)
    got = pipeline.refresh().snapshot
    assert [p.message for p in got.problems if warning in p.message]
    assert got.state == load(config).state


LONG_ZONE = ".".join(["z" * 63] * 3) + ".local"  # 197 octets: a Service name of 60 does not fit below it
SERVICES = "".join(named(i, SELECTING) for i in range(1, 16))


@pytest.mark.parametrize(
    ("before", "after", "config"),
    [  # what the snapshot's patch (snapshot/build.py _Builder.patch) must take out or keep out
        ("  type: ExternalName\n  externalName: example.org\n", "  type: ClusterIP\n  ports: [{name: http, port: 80}]\n", {}),
        (SELECTING, SELECTING.replace("80", "81"), {"zones": (LONG_ZONE,)}),  # a Service whose names do not fit: a problem each time
        ("  ports: [{name: http, port: 80}]\n", "  ports: [{name: http, port: 81}]\n", {"ns_address": ("192.0.2.53",)}),  # this server's endpoint
    ],
)
def test_a_snapshot_patched_after_an_edit_is_a_fresh_ones(tmp_path: Path, before: str, after: str, config: dict[str, object]) -> None:
    settings = Config(manifests=str(tmp_path), **config)  # type: ignore[arg-type]
    long_name = "l" * 60
    own = (
        f"---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: {long_name}\n"
        "subsets:\n- addresses: [{ip: 192.0.2.53}]\n  ports: [{name: http, port: 80}]\n"
    )

    def write(spec: str) -> None:
        (tmp_path / "a.yaml").write_text(DEPLOYMENT + named(0, spec).replace("name: s0", f"name: {long_name}") + SERVICES + own)

    write(before)
    pipeline = Pipeline(tmp_path, settings)
    first = pipeline.refresh(full=True).snapshot
    write(after)
    got = pipeline.refresh().snapshot
    fresh = load(settings)
    assert (got.entries, got.static, got.externals, got.problems, got.own) == (fresh.entries, fresh.static, fresh.externals, fresh.problems, fresh.own)
    assert list(got.contributions.items()) == list(fresh.contributions.items())
    assert got.static != first.static or got.problems or got.own  # each case has something to get right


@pytest.mark.parametrize(("before", "after"), [("http", "''"), ("''", "http")])
def test_problems_of_a_patched_snapshot_come_in_service_order(tmp_path: Path, before: str, after: str) -> None:
    """Below a 197-octet zone a Service named with 40 octets has an A record that fits and an
    SRV record that does not: a named port is a problem, an unnamed one none."""
    settings = Config(manifests=str(tmp_path), zones=(LONG_ZONE,))

    def write(port_name: str) -> None:
        changed = named(0, f"  ports: [{{name: {port_name}, port: 80}}]\n").replace("name: s0", f"name: {'a' * 40}")
        unchanged = named(0, "  ports: [{name: http, port: 80}]\n").replace("name: s0", f"name: {'z' * 40}")  # sorted after it, with a problem
        (tmp_path / "a.yaml").write_text(DEPLOYMENT + changed + SERVICES + unchanged)

    write(before)
    pipeline = Pipeline(tmp_path, settings)
    pipeline.refresh(full=True)
    write(after)
    got = pipeline.refresh().snapshot
    assert len(got.problems) == (2 if after == "http" else 1), got.problems
    assert got.problems == load(settings).problems


def test_a_pod_whose_ip_changed_in_a_cluster_of_written_ips_has_the_new_one(tmp_path: Path) -> None:
    """No Pod needs an address handed out, so none is taken: the patched Pods (memo.patch_step
    in derive/pod_ips.py) must take the written address, not the previous one."""
    config = Config(manifests=str(tmp_path))
    pods = [f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nstatus: {{podIP: 10.244.0.{i + 1}}}\n" for i in range(16)]
    (tmp_path / "a.yaml").write_text("".join(pods))
    pipeline = Pipeline(tmp_path, config)
    pipeline.refresh(full=True)
    pods[3] = pods[3].replace("10.244.0.4", "10.244.0.99")
    (tmp_path / "a.yaml").write_text("".join(pods))
    got = pipeline.refresh().snapshot.state
    assert [p.ips for p in got.pods if p.name == "p3"] == [("10.244.0.99",)]
    assert got == load(config).state


def test_a_patched_merge_keeps_the_warning_of_a_pod_manifest_named_as_a_workloads_pod(tmp_path: Path) -> None:
    """The previous merge warned (a Pod manifest has the name of a Deployment's Pod); an edit that
    moves some Deployments must not lose that warning (derive/workloads.py _patched_merge)."""
    config = Config(manifests=str(tmp_path))
    deployments = [deployment(i, random.Random(i)).replace("replicas: 0", "replicas: 1").replace(f"ns{i % 2}", "default") for i in range(40)]
    (tmp_path / "a.yaml").write_text("".join(deployments))
    taken = next(p.name for p in load(config).state.pods if p.owner.startswith("Deployment/d0"))
    bare = f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {taken}}}\nstatus: {{podIP: 10.244.9.9}}\n"
    others = "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nstatus: {{podIP: 10.244.8.{i + 1}}}\n" for i in range(16))
    (tmp_path / "a.yaml").write_text(others + "".join(deployments[:36]) + bare + "".join(deployments[36:]))
    pipeline = Pipeline(tmp_path, config)
    assert [p for p in pipeline.refresh(full=True).snapshot.problems if "has the same name" in p.message]
    labelled = bare.replace("metadata: {", "metadata:\n  labels: {x: y}\n  ").replace("}\nstatus", "\nstatus")  # a line more: the Deployments after it move
    (tmp_path / "a.yaml").write_text(others + "".join(deployments[:36]) + labelled + "".join(deployments[36:]))
    got = pipeline.refresh().snapshot
    assert [p for p in got.problems if "has the same name" in p.message]
    assert got.state == load(config).state


def test_a_service_renamed_in_place_leaves_its_endpoint_slice_without_a_service(tmp_path: Path) -> None:
    """The endpoints' patch (derive/endpoints.py _patched) redoes changed Services only when
    their names held: a slice whose Service went is a warning."""
    config = Config(manifests=str(tmp_path))
    services = [named(i, "  ports: [{name: http, port: 80}]\n") for i in range(16)]
    endpoint_slice = endpoint_slice_of(3)
    (tmp_path / "a.yaml").write_text("".join(services) + endpoint_slice)
    pipeline = Pipeline(tmp_path, config)
    assert not pipeline.refresh(full=True).snapshot.problems
    services[3] = services[3].replace("name: s3", "name: s3a")  # at the same place in (namespace, name) order
    (tmp_path / "a.yaml").write_text("".join(services) + endpoint_slice)
    got = pipeline.refresh().snapshot
    assert [p for p in got.problems if "does not exist" in p.message]
    assert got.state == load(config).state


def test_a_pod_moved_to_another_namespace_at_its_place_leaves_the_selector(tmp_path: Path) -> None:
    """The label index is kept only where each changed Pod has the namespace it had
    (derive/pod_index.py): the last Pod, moved from `a` to `b`, stays last but is not `a`'s."""
    config = Config(manifests=str(tmp_path))
    service_a = "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: a}\nspec:\n  clusterIP: None\n  selector: {app: x}\n"
    pods = [f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i:02d}, namespace: a, labels: {{app: x}}}}\nstatus: {{podIP: 10.244.0.{i + 1}}}\n"
            for i in range(16)]
    (tmp_path / "a.yaml").write_text(service_a + "".join(pods))
    pipeline = Pipeline(tmp_path, config)
    pipeline.refresh(full=True)
    pods[15] = pods[15].replace("namespace: a", "namespace: b")
    (tmp_path / "a.yaml").write_text(service_a + "".join(pods))
    got = pipeline.refresh().snapshot.state
    (web,) = [s for s in got.services if s.name == "web"]
    assert "10.244.0.16" not in {a.ip for g in web.endpoints for a in g.addresses}
    assert got == load(config).state


def test_a_service_that_stops_selecting_and_selects_again_gets_the_pods_of_now(tmp_path: Path) -> None:
    """Found in review: the endpoints' patch kept the entry of a Service that stopped selecting
    (`selector: {}`), moved it to the next Pod index when a Pod changed, and reused it when the
    selector came back: the Pod's old address was served."""
    config = Config(manifests=str(tmp_path))
    selecting = "  clusterIP: 10.96.0.50\n  ports: [{name: http, port: 80, targetPort: 8080}]\n  selector: {app: a}\n"
    pod_at = "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, labels: {{app: a}}}}\nstatus: {{podIP: {}}}\n"
    others = "".join(named(i + 1, SELECTING) for i in range(16)) + DEPLOYMENT
    others += "".join(f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: o{i}, labels: {{app: o}}}}\nstatus: {{podIP: 10.244.1.{i + 1}}}\n" for i in range(16))
    (tmp_path / "others.yaml").write_text(others)  # enough Pods that one changed is patched in
    (tmp_path / "s.yaml").write_text(named(0, selecting))
    (tmp_path / "p.yaml").write_text(pod_at.format("10.244.0.5"))
    pipeline = Pipeline(tmp_path, config)
    pipeline.refresh(full=True)
    for path, text in (("s.yaml", named(0, selecting.replace("{app: a}", "{}"))), ("p.yaml", pod_at.format("10.244.0.6")), ("s.yaml", named(0, selecting))):
        (tmp_path / path).write_text(text)
        got = pipeline.refresh().snapshot.state
        assert got == load(config).state, path
    (s0,) = [s for s in got.services if s.name == "s0"]
    assert [a.ip for g in s0.endpoints for a in g.addresses] == ["10.244.0.6"]


def test_the_nameserver_records_of_a_patched_snapshot_are_those_of_now(tmp_path: Path) -> None:
    """Found in review: the snapshot's patch kept ns.dns's AAAA from the previous build when
    this server's address moved to a Service with an IPv4 ClusterIP only."""
    config = Config(manifests=str(tmp_path), ns_address=("192.0.2.53", "2001:db8::53"))
    (tmp_path / "others.yaml").write_text("".join(named(i + 1, "  ports: [{name: http, port: 80}]\n") for i in range(16)))
    dns = named(0, "  clusterIP: 10.96.0.10\n  ports: [{name: dns, port: 53, protocol: UDP}]\n")
    endpoint_slice = endpoint_slice_of(0)  # 192.0.2.7
    (tmp_path / "dns.yaml").write_text(dns + endpoint_slice.replace("192.0.2.7", "192.0.2.99"))
    pipeline = Pipeline(tmp_path, config)
    first = pipeline.refresh(full=True).snapshot
    assert sorted(k for k in first.static if k[0] == "ns.dns") == [("ns.dns", 1), ("ns.dns", 28)]  # the server's own addresses
    (tmp_path / "dns.yaml").write_text(dns + endpoint_slice.replace("192.0.2.7", "192.0.2.53"))
    got = pipeline.refresh().snapshot
    assert sorted(k for k in got.static if k[0] == "ns.dns") == [("ns.dns", 1)]  # s0's ClusterIP: IPv4 only
    assert got.static == load(config).static


def test_a_manifests_directory_that_goes_away_keeps_serving_what_was_read(tmp_path: Path) -> None:
    """An unmounted volume or a directory being swapped: an error, and the last files' Services stay
    (they were all dropped before, every name NXDOMAIN); back empty, the cluster is empty and said so;
    back with its file, served again and the error gone."""
    root = tmp_path / "m"
    root.mkdir()
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
    (root / "s.yaml").write_text(text)
    pipeline = Pipeline(root, Config(manifests=str(root)))
    assert [s.name for s in pipeline.refresh(full=True).snapshot.state.services] == ["web"]
    (root / "s.yaml").unlink()
    root.rmdir()
    gone = pipeline.refresh()
    assert gone.rebuilt and [s.name for s in gone.snapshot.state.services] == ["web"]
    assert [(p.level, p.message) for p in gone.snapshot.problems] == [
        ("error", "manifests directory not found: serving the files read from it before until it is back")]
    assert not pipeline.refresh().rebuilt  # still gone: nothing new to say
    root.mkdir()
    empty = pipeline.refresh()
    assert list(empty.snapshot.state.services) == []
    assert [p.message for p in empty.snapshot.problems] == ["no manifest files (.yaml, .yml, .json) here yet: the cluster is empty"]
    (root / "s.yaml").write_text(text)
    back = pipeline.refresh()
    assert [s.name for s in back.snapshot.state.services] == ["web"] and list(back.snapshot.problems) == []
