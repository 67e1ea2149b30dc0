"""cluster.py: what the controllers would derive from manifests (spec Part 2)."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from pathlib import Path

import pytest

from clusterdns.config.settings import Config
from clusterdns.derive.cluster import derive
from clusterdns.derive.workloads import template_hash
from clusterdns.errors import Problem
from clusterdns.model import ClusterState, Pod, Service
from clusterdns.objects import kinds as k8s
from clusterdns.objects.read import read_objects
from tests.helpers.manifests import load_state, read_directory
from tests.helpers.process import ROOT, UNIT_FIXTURE

FIXTURE = UNIT_FIXTURE
CLUSTERS = ROOT / "tests" / "clusters"
NAME_CHARS = "[bcdfghjklmnpqrstvwxz2456789]"


def load(root: Path, config: Config) -> ClusterState:
    """The cluster `serve` would derive from the directory."""
    return load_state(root, config)


def write(root: Path, relpath: str, text: str) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def service(state: ClusterState, name: str, namespace: str = "default") -> Service:
    (svc,) = [s for s in state.services if (s.namespace, s.name) == (namespace, name)]
    return svc


def pods_of(state: ClusterState, owner: str) -> list[Pod]:
    return [p for p in state.pods if p.owner == owner]


def errors(state: ClusterState) -> list[Problem]:
    return [p for p in state.problems if p.level == "error"]


def warnings(state: ClusterState, text: str) -> list[Problem]:
    return [p for p in state.problems if p.level == "warning" and text in p.message]


def addresses(svc: Service) -> list[tuple[str, str, bool]]:
    return sorted((a.ip, a.hostname, a.ready) for g in svc.endpoints for a in g.addresses)


def svc_yaml(name: str, extra: str = "", namespace: str = "default") -> str:
    """A Service document; `extra` holds more `spec` lines, indented by two spaces."""
    head = f"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
    return head + f"spec:\n  ports:\n  - name: http\n    port: 80\n{extra}\n"


def pod_yaml(name: str, labels: str = "app: web", spec: str = "", status: str = "", meta: str = "") -> str:
    """A Pod document with container port http/8080; `meta`/`spec` lines indented by two, `status` a top-level line."""
    return (
        f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\n{meta}\n"
        f"spec:\n  containers:\n  - name: c\n    ports:\n    - {{name: http, containerPort: 8080}}\n{spec}\n{status}\n"
    )


SELECTOR_WEB = "  selector:\n    app: web"


@pytest.fixture(scope="module")
def fixture_state() -> ClusterState:
    return load(FIXTURE, Config())


def test_fixture_loads_without_errors(fixture_state: ClusterState) -> None:
    assert errors(fixture_state) == []
    assert {(s.namespace, s.name) for s in fixture_state.services} == {
        ("kube-system", "kubedns"),
        ("testns", "svc1"),
        ("testns", "svcempty"),
        ("testns", "svc6"),
        ("testns", "hdls1"),
        ("testns", "external"),
        ("testns", "external-to-service"),
        ("testns", "hdlsprtls"),
        ("unexposedns", "svc1"),
        ("testns", "svc-dual-stack"),
    }
    assert [s.key for s in fixture_state.services] == sorted(s.key for s in fixture_state.services)


def test_fixture_headless_endpoints(fixture_state: ClusterState) -> None:
    hdls1 = service(fixture_state, "hdls1", "testns")
    assert hdls1.headless and hdls1.cluster_ips == () and hdls1.endpoints_source == "EndpointSlice"
    ready = [a for g in hdls1.endpoints for a in g.addresses if a.ready]
    assert len(ready) == 6
    assert sorted(a.ip for a in ready if a.hostname == "dup-name") == ["172.0.0.4", "172.0.0.5"]
    assert {a.ip for a in ready} >= {"5678:abcd::1", "5678:abcd::2"}
    assert [g.name for g in hdls1.endpoints] == ["hdls1-slice1", "hdls1-slice2"]
    assert all(g.ports[0].port == 80 for g in hdls1.endpoints)
    (portless,) = service(fixture_state, "hdlsprtls", "testns").endpoints
    assert portless.ports == () and [a.ip for a in portless.addresses] == ["172.0.0.20"]


def test_fixture_cluster_ips(fixture_state: ClusterState) -> None:
    assert service(fixture_state, "svc1", "testns").cluster_ips == ("10.0.0.1",)
    svcempty = service(fixture_state, "svcempty", "testns")
    assert svcempty.cluster_ips == ("10.0.0.1",)  # shared with svc1, as in CoreDNS's fixture
    assert svcempty.endpoints_source == "EndpointSlice" and svcempty.endpoints[0].addresses == ()
    (shared,) = warnings(fixture_state, "also used by Service testns/svc1")
    assert shared.name == "testns/svcempty" and shared.file == "services.yaml"
    assert service(fixture_state, "kubedns", "kube-system").cluster_ips == ("10.0.0.10",)
    assert service(fixture_state, "svc6", "testns").cluster_ips == ("1234:abcd::1",)
    assert service(fixture_state, "svc-dual-stack", "testns").cluster_ips == ("10.0.0.3", "10::3")


def test_fixture_other_services(fixture_state: ClusterState) -> None:
    kubedns = service(fixture_state, "kubedns", "kube-system")
    assert addresses(kubedns) == [("172.0.0.100", "", True)]
    svc1 = service(fixture_state, "svc1", "testns")
    assert addresses(svc1) == [("172.0.0.1", "ep1a", True)]
    external = service(fixture_state, "external-to-service", "testns")
    assert (external.type, external.external_name, external.endpoints) == ("ExternalName", "svc1.testns.svc.cluster.local", ())
    assert service(fixture_state, "svc1", "unexposedns").endpoints == ()


def test_fixture_namespaces_and_pods(fixture_state: ClusterState) -> None:
    assert {"testns", "kube-system", "default", "unexposedns", "podns", "svcns"} <= fixture_state.namespaces
    assert not {"pod-nons", "nsnoexist", "svc-nons", "foo", "b", "*"} & fixture_state.namespaces
    (foo,) = fixture_state.pods
    assert (foo.namespace, foo.name, foo.ips, foo.ready) == ("podns", "foo", ("10.240.0.1",), True)


def test_load_collects_problems_and_keeps_going(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", svc_yaml("good"))
    write(tmp_path, "b.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: noport\nspec:\n  ports:\n  - name: http\n")
    write(tmp_path, "c.yaml", "key: [unclosed\n")
    state = load(tmp_path, Config())
    assert [s.name for s in state.services] == ["good"]
    missing, broken = sorted(errors(state), key=lambda p: p.file)
    assert (missing.file, missing.line, missing.field, missing.kind, missing.name) == (
        "b.yaml",
        1,
        "spec.ports[0].port",
        "Service",
        "default/noport",
    )
    assert broken.file == "c.yaml" and broken.line == 1


def test_duplicates_warn_naming_both_files_and_the_later_wins(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", svc_yaml("web", "  clusterIP: 10.96.5.5"))
    write(tmp_path, "b/web.yaml", svc_yaml("web", "  clusterIP: 10.96.6.6"))
    state = load(tmp_path, Config())
    assert service(state, "web").cluster_ips == ("10.96.6.6",)
    (dup,) = warnings(state, "defined twice")
    assert "a.yaml" in dup.message and "b/web.yaml" in dup.message and dup.file == "b/web.yaml"


def test_duplicate_in_one_file_the_later_document_wins(tmp_path: Path) -> None:
    docs = [svc_yaml("web", f"  clusterIP: 10.96.7.{i}") for i in range(1, 12)]  # documents 0..10
    write(tmp_path, "m.yaml", "".join(docs))
    state = load(tmp_path, Config())
    assert service(state, "web").cluster_ips == ("10.96.7.11",)  # document "10" sorts after "9"
    assert len(warnings(state, "defined twice")) == 10


def test_namespaces_are_inferred(tmp_path: Path) -> None:
    write(tmp_path, "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: empty\n")
    write(tmp_path, "svc.yaml", svc_yaml("web", namespace="shop"))
    write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: config-only\n")
    write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  namespace: broken\nspec:\n  ports: [{}]\n")
    state = load(tmp_path, Config())
    assert state.namespaces == frozenset({"default", "kube-system", "empty", "shop", "config-only"})


def test_derive_extends_the_given_problem_list() -> None:
    found = [Problem("error", "from reading", file="x.yaml")]
    svc = k8s.Service("default", "web", selector=(("app", "none"),))
    state, _ = derive([svc], Config(), found)
    assert state.problems[0].message == "from reading"
    assert any("matches no Pods" in p.message for p in state.problems) and found == list(state.problems)


def many_services(root: Path, count: int, prefix: str = "s") -> None:
    write(root, f"{prefix}.yaml", "".join(svc_yaml(f"{prefix}{i}") for i in range(count)))


def cluster_ips(state: ClusterState) -> dict[str, str]:
    return {s.name: s.cluster_ips[0] for s in state.services if s.cluster_ips}


def test_assigned_cluster_ips_are_deterministic_and_in_the_dynamic_band(tmp_path: Path) -> None:
    many_services(tmp_path, 200)
    first, second = load(tmp_path, Config()), load(tmp_path, Config())
    assert cluster_ips(first) == cluster_ips(second)
    ips = [ipaddress.ip_address(ip) for ip in cluster_ips(first).values()]
    assert len(set(ips)) == 200
    # 10.96.0.0/12: offset min(max(16, 2**20/16), 256) = 256, dynamic band from 10.96.1.1 (KEP-3070)
    assert all(ipaddress.ip_address("10.96.1.1") <= ip <= ipaddress.ip_address("10.111.255.254") for ip in ips)


def test_adding_a_service_moves_no_other(tmp_path: Path) -> None:
    many_services(tmp_path, 100)
    before = cluster_ips(load(tmp_path, Config()))
    write(tmp_path, "zz-new.yaml", svc_yaml("brand-new", namespace="other"))
    after = cluster_ips(load(tmp_path, Config()))
    assert after.pop("brand-new") not in before.values()
    assert after == before


def test_small_range_fills_up_and_never_uses_1_or_10(tmp_path: Path) -> None:
    # /27: 30 usable addresses, offset 16 (static 1-16, dynamic 17-30); .1 and .10 reserved.
    many_services(tmp_path, 29)
    state = load(tmp_path, Config(service_cidr=("10.0.0.0/27",)))
    ips = sorted(int(ipaddress.ip_address(ip)) & 0xFF for ip in cluster_ips(state).values())
    assert ips == [o for o in range(1, 31) if o not in (1, 10)]
    assert len(warnings(state, "no free address left")) == 1


def test_dynamic_band_is_used_before_the_static_band(tmp_path: Path) -> None:
    many_services(tmp_path, 14)
    state = load(tmp_path, Config(service_cidr=("10.0.0.0/27",)))
    assert sorted(int(ipaddress.ip_address(ip)) & 0xFF for ip in cluster_ips(state).values()) == list(range(17, 31))


def test_explicit_cluster_ips_are_never_reused(tmp_path: Path) -> None:
    # /28 has no static/dynamic split: offsets 1-14, minus .1 and .10, leave 12 addresses.
    free = [o for o in range(2, 15) if o != 10]
    write(tmp_path, "explicit.yaml", "".join(svc_yaml(f"e{o}", f"  clusterIP: 10.0.0.{o}") for o in free[:-1]))
    write(tmp_path, "auto.yaml", svc_yaml("auto"))
    state = load(tmp_path, Config(service_cidr=("10.0.0.0/28",)))
    assert service(state, "auto").cluster_ips == (f"10.0.0.{free[-1]}",)


def test_well_known_services_get_1_and_10(tmp_path: Path) -> None:
    write(tmp_path, "k.yaml", svc_yaml("kubernetes") + svc_yaml("kube-dns", namespace="kube-system"))
    state = load(tmp_path, Config())
    assert service(state, "kubernetes").cluster_ips == ("10.96.0.1",)
    assert service(state, "kube-dns", "kube-system").cluster_ips == ("10.96.0.10",)


def test_explicit_ip_outside_the_range_and_duplicates_warn(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", svc_yaml("a", "  clusterIP: 192.168.0.1"))
    write(tmp_path, "b.yaml", svc_yaml("b", "  clusterIP: 192.168.0.1"))
    state = load(tmp_path, Config())
    assert len(warnings(state, "outside --service-cidr")) == 2
    (dup,) = warnings(state, "also used by")
    assert dup.file == "b.yaml" and "default/a" in dup.message and "a.yaml" in dup.message


def test_headless_and_external_name_get_no_ip(tmp_path: Path) -> None:
    write(tmp_path, "h.yaml", svc_yaml("h", "  clusterIP: None"))
    write(tmp_path, "e.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: x.example.}\n")
    state = load(tmp_path, Config())
    assert service(state, "h").cluster_ips == () and service(state, "h").headless
    assert service(state, "e").cluster_ips == () and service(state, "e").external_name == "x.example"


def test_external_name_holding_an_ip_warns(tmp_path: Path) -> None:
    write(tmp_path, "e.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: e}\nspec: {type: ExternalName, externalName: 192.0.2.1}\n")
    state = load(tmp_path, Config())
    (warning,) = warnings(state, "is an IP address")
    assert (warning.file, warning.field, warning.name) == ("e.yaml", "spec.externalName", "default/e")
    assert service(state, "e").external_name == "192.0.2.1"


DUAL = Config(service_cidr=("10.96.0.0/12", "fd00:10:96::/112"), pod_cidr=("10.244.0.0/16", "fd00:10:244::/64"))


@pytest.mark.parametrize(
    ("spec", "families"),
    [
        ("", [4]),
        ("  ipFamilyPolicy: PreferDualStack", [4, 6]),
        ("  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]", [6, 4]),
        ("  ipFamilies: [IPv6]", [6]),
        ("  ipFamilyPolicy: PreferDualStack\n  clusterIP: fd00:10:96::99", [6, 4]),
    ],
)
def test_ip_families(tmp_path: Path, spec: str, families: list[int]) -> None:
    write(tmp_path, "s.yaml", svc_yaml("s", spec))
    (svc,) = load(tmp_path, DUAL).services
    assert [ipaddress.ip_address(ip).version for ip in svc.cluster_ips] == families
    v6 = [ip for ip in svc.cluster_ips if ":" in ip]
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("fd00:10:96::/112") for ip in v6)


def test_require_dual_stack_without_an_ipv6_range_warns(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", svc_yaml("s", "  ipFamilyPolicy: RequireDualStack") + svc_yaml("v6", "  ipFamilies: [IPv6]"))
    state = load(tmp_path, Config())
    assert len(service(state, "s").cluster_ips) == 1 and service(state, "v6").cluster_ips == ()
    assert [w.name for w in warnings(state, "no IPv6 --service-cidr")] == ["default/s", "default/v6"]


def deployment(name: str = "web", replicas: int = 3, labels: str = "app: web", ports: str = "[{name: http, containerPort: 8080}]") -> str:
    return textwrap.dedent(
        f"""\
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {name}
        spec:
          replicas: {replicas}
          selector:
            matchLabels: {{{labels}}}
          template:
            metadata:
              labels: {{{labels}}}
            spec:
              containers:
              - name: c
                image: nginx
                ports: {ports}
        """
    )


def test_deployment_pod_names(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment())
    state = load(tmp_path, Config())
    pods = pods_of(state, "Deployment/web")
    assert len(pods) == 3 and len({p.name for p in pods}) == 3
    shape = re.compile(rf"^web-{NAME_CHARS}{{10}}-{NAME_CHARS}{{5}}$")
    assert all(shape.match(p.name) for p in pods), [p.name for p in pods]
    assert len({p.name.split("-")[1] for p in pods}) == 1  # one ReplicaSet hash
    assert all(dict(p.labels)["app"] == "web" and p.ready and p.phase == "Running" for p in pods)
    assert [p.name for p in pods_of(load(tmp_path, Config()), "Deployment/web")] == [p.name for p in pods]


def test_template_change_changes_the_hash(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment())
    before = {p.name.split("-")[1] for p in load(tmp_path, Config()).pods}
    write(tmp_path, "d.yaml", deployment(ports="[{name: http, containerPort: 9090}]"))
    after = {p.name.split("-")[1] for p in load(tmp_path, Config()).pods}
    assert before != after


def test_template_hash_looks_like_kubernetes() -> None:
    # ComputeHash prints a decimal and SafeEncodeString maps its digits: only 4-9, b, c, d, f.
    value = template_hash("ab" * 32)
    assert re.fullmatch(r"[4-9bcdf]{10}", value)


def test_replica_set_pods(tmp_path: Path) -> None:
    rs = deployment("front", 2).replace("Deployment", "ReplicaSet")
    write(tmp_path, "rs.yaml", rs)
    pods = pods_of(load(tmp_path, Config()), "ReplicaSet/front")
    assert len(pods) == 2 and all(re.fullmatch(rf"front-{NAME_CHARS}{{5}}", p.name) for p in pods)


def cassandra(replicas: int = 3, extra: str = "", service_spec: str = "  clusterIP: None") -> str:
    """A headless Service and a StatefulSet; `extra` (StatefulSet spec) lines need 12 spaces after the first."""
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Service
        metadata:
          name: cassandra
        spec:
        {service_spec}
          selector:
            app: cassandra
          ports:
          - name: cql
            port: 9042
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: cassandra
        spec:
          serviceName: cassandra
          replicas: {replicas}
        {extra}
          selector:
            matchLabels:
              app: cassandra
          template:
            metadata:
              labels:
                app: cassandra
            spec:
              containers:
              - name: cassandra
                image: cassandra:latest
        """
    )


def test_stateful_set_identity_and_endpoints(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", cassandra())
    state = load(tmp_path, Config())
    pods = pods_of(state, "StatefulSet/cassandra")
    assert [(p.name, p.hostname, p.subdomain) for p in pods] == [(f"cassandra-{i}", f"cassandra-{i}", "cassandra") for i in range(3)]
    assert dict(pods[1].labels)["statefulset.kubernetes.io/pod-name"] == "cassandra-1"
    svc = service(state, "cassandra")
    assert svc.endpoints_source == "selector"
    assert sorted(a.hostname for a in svc.endpoints[0].addresses) == ["cassandra-0", "cassandra-1", "cassandra-2"]
    assert {a.ip for a in svc.endpoints[0].addresses} == {p.ips[0] for p in pods}
    assert state.problems == ()


def test_stateful_set_ordinals_start(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", cassandra(2, "  ordinals:\n            start: 5"))
    assert [p.name for p in load(tmp_path, Config()).pods] == ["cassandra-5", "cassandra-6"]


@pytest.mark.parametrize("length, kept", [(52, 11), (53, 0), (62, 0)])
def test_a_stateful_set_name_over_52_characters_makes_no_pods(tmp_path: Path, length: int, kept: int) -> None:
    """Its Pods' label controller-revision-hash=<name>-<10-character hash> would pass 63 characters,
    which the API server refuses (kubernetes#64023). One warning names the StatefulSet, not
    one per Pod name the snapshot cannot serve."""
    name = "s" * length
    write(tmp_path, "c.yaml", cassandra(11).replace("metadata:\n  name: cassandra\nspec:\n  serviceName", f"metadata:\n  name: {name}\nspec:\n  serviceName"))
    state = load(tmp_path, Config())
    assert len(pods_of(state, f"StatefulSet/{name}")) == kept and all(len(p.name) <= 63 for p in state.pods)
    found = [p for p in state.problems if "controller-revision-hash" in p.message]
    assert [(p.kind, p.field) for p in found] == ([] if kept else [("StatefulSet", "metadata.name")])
    from clusterdns.pipeline import load as load_snapshot

    snap = load_snapshot(Config(manifests=str(tmp_path)))
    assert not [p for p in snap.problems if "octets" in p.message]  # no name the snapshot has to leave out (one warning per name before)


def test_stateful_set_needs_a_headless_service(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", cassandra(service_spec="  type: ClusterIP"))
    assert warnings(load(tmp_path, Config()), "is not headless")
    write(tmp_path, "c.yaml", cassandra().split("---")[1])
    assert warnings(load(tmp_path, Config()), "no such Service")


def daemon_set(nodes: list[str]) -> str:
    text = """\
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent, namespace: kube-system}
        spec:
          selector: {matchLabels: {app: agent}}
          template:
            metadata: {labels: {app: agent}}
            spec: {containers: [{name: a}]}
        """
    return textwrap.dedent(text) + "".join(f"---\napiVersion: v1\nkind: Node\nmetadata: {{name: {n}}}\n" for n in nodes)


def test_daemon_set_runs_one_pod_per_node(tmp_path: Path) -> None:
    write(tmp_path, "ds.yaml", daemon_set(["node-b", "node-a"]))
    pods = pods_of(load(tmp_path, Config()), "DaemonSet/agent")
    assert sorted(p.node_name for p in pods) == ["node-a", "node-b"]
    assert all(re.fullmatch(rf"agent-{NAME_CHARS}{{5}}", p.name) and p.namespace == "kube-system" for p in pods)


def test_daemon_set_without_nodes_runs_one_pod(tmp_path: Path) -> None:
    write(tmp_path, "ds.yaml", daemon_set([]))
    (pod,) = load(tmp_path, Config()).pods
    assert pod.owner == "DaemonSet/agent" and pod.node_name == ""


def test_kubectl_dump_derives_no_extra_pods() -> None:
    state = load(CLUSTERS / "kubectl-dump", Config())
    assert errors(state) == [] and warnings(state, "") == []
    assert [p.name for p in state.pods] == ["coredns-5d78c9869d-7x8qp", "web-7d4b9c8f5d-2xkqz", "web-7d4b9c8f5d-9hvbn"]
    assert pods_of(state, "ReplicaSet/web-7d4b9c8f5d")[0].ips == ("10.244.0.7",)
    web = service(state, "web", "shop")
    assert web.endpoints_source == "EndpointSlice"
    assert [(a.ip, a.ready, a.pod_name) for a in web.endpoints[0].addresses] == [
        ("10.244.0.7", True, "web-7d4b9c8f5d-2xkqz"),
        ("10.244.0.8", False, "web-7d4b9c8f5d-9hvbn"),
    ]
    assert service(state, "kubernetes").cluster_ips == ("10.96.0.1",)
    assert state.namespaces == frozenset({"default", "kube-system", "shop"})


def test_explicit_pod_wins_over_a_workload_pod_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", cassandra(1) + pod_yaml("cassandra-0", "app: cassandra", status="status: {podIP: 10.1.1.1}"))
    state = load(tmp_path, Config())
    (pod,) = state.pods
    assert pod.ips == ("10.1.1.1",) and pod.owner == ""
    assert warnings(state, "has the same name")


def test_pod_ips_explicit_or_assigned_deterministically(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", pod_yaml("fixed", status="status: {podIP: 10.244.9.9}") + pod_yaml("free"))
    state = load(tmp_path, Config())
    by_name = {p.name: p.ips for p in state.pods}
    assert by_name["fixed"] == ("10.244.9.9",)
    (free,) = by_name["free"]
    assert ipaddress.ip_address(free) in ipaddress.ip_network("10.244.0.0/16") and free != "10.244.9.9"
    assert {p.name: p.ips for p in load(tmp_path, Config()).pods} == by_name


def test_pod_ips_stay_when_an_unrelated_pod_is_added(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment(replicas=50))
    before = {p.name: p.ips for p in load(tmp_path, Config()).pods}
    write(tmp_path, "z.yaml", pod_yaml("newcomer", "app: other"))
    after = {p.name: p.ips for p in load(tmp_path, Config()).pods}
    assert after.pop("newcomer") not in before.values()
    assert after == before


def test_assigned_pod_ips_avoid_explicit_ones(tmp_path: Path) -> None:
    # 10.9.0.0/29: six usable addresses .1-.6; five are taken by manifests.
    explicit = "".join(pod_yaml(f"p{i}", status=f"status: {{podIP: 10.9.0.{i}}}") for i in range(1, 6))
    write(tmp_path, "p.yaml", explicit + pod_yaml("auto"))
    state = load(tmp_path, Config(pod_cidr=("10.9.0.0/29",)))
    assert {p.name: p.ips for p in state.pods}["auto"] == ("10.9.0.6",)


def test_dual_stack_pods_get_one_ip_per_family(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", pod_yaml("p"))
    (pod,) = load(tmp_path, DUAL).pods
    assert [ipaddress.ip_address(ip).version for ip in pod.ips] == [4, 6]


def test_selector_endpoints_conditions(tmp_path: Path) -> None:
    ready = "status: {phase: Running, podIP: 10.1.0.1, conditions: [{type: Ready, status: 'True'}]}"
    unready = "status: {phase: Running, podIP: 10.1.0.2, conditions: [{type: Ready, status: 'False'}]}"
    terminating_meta = "  deletionTimestamp: '2024-01-01T00:00:00Z'"
    write(
        tmp_path,
        "m.yaml",
        svc_yaml("web", SELECTOR_WEB)
        + svc_yaml("peers", SELECTOR_WEB + "\n  publishNotReadyAddresses: true")
        + pod_yaml("a", status=ready)
        + pod_yaml("b", status=unready)
        + pod_yaml("c", status="status: {phase: Running, podIP: 10.1.0.3}", meta=terminating_meta)
        + pod_yaml("d", status="status: {phase: Succeeded, podIP: 10.1.0.4}")
        + pod_yaml("e", "app: other"),
    )
    state = load(tmp_path, Config())
    web = service(state, "web")
    assert web.endpoints_source == "selector"
    by_ip = {a.ip: a for g in web.endpoints for a in g.addresses}
    assert sorted(by_ip) == ["10.1.0.1", "10.1.0.2", "10.1.0.3"]  # Succeeded and unselected Pods are left out
    assert (by_ip["10.1.0.1"].ready, by_ip["10.1.0.2"].ready, by_ip["10.1.0.2"].serving) == (True, False, False)
    assert (by_ip["10.1.0.3"].ready, by_ip["10.1.0.3"].serving, by_ip["10.1.0.3"].terminating) == (False, True, True)
    assert by_ip["10.1.0.1"].pod_name == "a" and by_ip["10.1.0.1"].pod_namespace == "default"
    peers = {a.ip: a for g in service(state, "peers").endpoints for a in g.addresses}
    assert all(a.ready for a in peers.values()) and not peers["10.1.0.2"].serving


def test_tolerate_unready_annotation_counts_as_publish_not_ready(tmp_path: Path) -> None:
    annotated = svc_yaml("old", SELECTOR_WEB).replace(
        "  namespace: default", "  namespace: default\n  annotations:\n    service.alpha.kubernetes.io/tolerate-unready-endpoints: 'true'"
    )
    write(tmp_path, "m.yaml", annotated + pod_yaml("a", status="status: {podIP: 10.1.0.2, conditions: [{type: Ready, status: 'False'}]}"))
    svc = service(load(tmp_path, Config()), "old")
    assert svc.publish_not_ready and addresses(svc) == [("10.1.0.2", "", True)]


def test_hostname_only_when_subdomain_is_the_service(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.yaml",
        svc_yaml("db", "  clusterIP: None\n" + SELECTOR_WEB)
        + pod_yaml("a", spec="  hostname: alpha\n  subdomain: db", status="status: {podIP: 10.1.0.1}")
        + pod_yaml("b", spec="  hostname: beta\n  subdomain: other", status="status: {podIP: 10.1.0.2}")
        + pod_yaml("c", spec="  subdomain: db", status="status: {podIP: 10.1.0.3}"),
    )
    assert addresses(service(load(tmp_path, Config()), "db")) == [
        ("10.1.0.1", "alpha", True),
        ("10.1.0.2", "", True),
        ("10.1.0.3", "", True),
    ]


def test_named_target_port_resolves_per_pod(tmp_path: Path) -> None:
    svc = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports:
          - {name: http, port: 80, targetPort: http}
          - {name: admin, port: 9000, targetPort: 9001}
          - {name: dns, port: 53, protocol: UDP}
        """
    )
    other_port = pod_yaml("b", status="status: {podIP: 10.1.0.2}").replace(
        "{name: http, containerPort: 8080}", "{name: web, containerPort: 7070}"
    )
    write(tmp_path, "m.yaml", svc + pod_yaml("a", status="status: {podIP: 10.1.0.1}") + other_port)
    state = load(tmp_path, Config())
    groups = {tuple((p.name, p.protocol, p.port) for p in g.ports): [a.ip for a in g.addresses] for g in service(state, "web").endpoints}
    assert groups == {
        (("http", "TCP", 8080), ("admin", "TCP", 9001), ("dns", "UDP", 53)): ["10.1.0.1"],
        (("admin", "TCP", 9001), ("dns", "UDP", 53)): ["10.1.0.2"],  # no container port "http": that port is omitted
    }
    assert not warnings(state, "targetPort")


@pytest.mark.parametrize(
    "target",
    [
        "targetPort: metrics",  # no container port of that name
        "targetPort: http\n    protocol: UDP",  # the name exists, for TCP only (podutil.FindPort matches both)
    ],
)
def test_named_target_port_found_nowhere_warns(tmp_path: Path, target: str) -> None:
    svc = svc_yaml("web", SELECTOR_WEB).replace("port: 80", f"port: 80\n    {target}")
    write(tmp_path, "m.yaml", svc + pod_yaml("a"))
    state = load(tmp_path, Config())
    (warning,) = warnings(state, "targetPort")
    assert warning.field == "spec.ports[0].targetPort"
    (group,) = service(state, "web").endpoints
    assert group.ports == () and len(group.addresses) == 1


def test_headless_dual_stack_pods_give_both_families(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", svc_yaml("h", "  clusterIP: None\n" + SELECTOR_WEB) + svc_yaml("v4", SELECTOR_WEB) + pod_yaml("a"))
    state = load(tmp_path, DUAL)
    assert [ipaddress.ip_address(a.ip).version for g in service(state, "h").endpoints for a in g.addresses] == [4, 6]
    assert [ipaddress.ip_address(a.ip).version for g in service(state, "v4").endpoints for a in g.addresses] == [4]


def test_deployment_pods_back_a_service(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", deployment(replicas=4) + svc_yaml("web", SELECTOR_WEB))
    state = load(tmp_path, Config())
    svc = service(state, "web")
    assert sorted(a.pod_name for g in svc.endpoints for a in g.addresses) == sorted(p.name for p in state.pods)
    assert svc.endpoints[0].ports[0].port == 80  # no targetPort: the Service port


def test_selector_matching_nothing_warns(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", svc_yaml("lonely", "  selector: {app: nobody}") + pod_yaml("a"))
    state = load(tmp_path, Config())
    (warning,) = warnings(state, "matches no Pods")
    assert warning.name == "default/lonely" and service(state, "lonely").endpoints == ()


def test_pods_in_other_namespaces_are_not_selected(tmp_path: Path) -> None:
    other = pod_yaml("x", status="status: {podIP: 10.1.0.9}").replace("  name: x", "  name: x\n  namespace: elsewhere")
    write(tmp_path, "m.yaml", svc_yaml("web", SELECTOR_WEB) + other)
    assert service(load(tmp_path, Config()), "web").endpoints == ()


def slice_yaml(name: str, service_name: str, ip: str, ready: str = "true") -> str:
    return textwrap.dedent(
        f"""\
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: {name}
          labels: {{kubernetes.io/service-name: {service_name}}}
        addressType: IPv4
        ports: [{{name: http, port: 8080}}]
        endpoints:
        - addresses: [{ip}]
          conditions: {{ready: {ready}}}
        """
    )


ENDPOINTS = textwrap.dedent(
    """\
    ---
    apiVersion: v1
    kind: Endpoints
    metadata: {name: web}
    subsets:
    - addresses: [{ip: 192.0.2.1}]
      notReadyAddresses: [{ip: 192.0.2.2}]
      ports: [{name: http, port: 8080}]
    """
)


def test_endpoint_slices_win_over_endpoints_and_selector(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.yaml",
        svc_yaml("web", SELECTOR_WEB)
        + pod_yaml("a")
        + slice_yaml("web-1", "web", "192.0.2.7")
        + slice_yaml("web-2", "web", "192.0.2.8", "false"),
    )
    write(tmp_path, "e.yaml", ENDPOINTS)
    svc = service(load(tmp_path, Config()), "web")
    assert svc.endpoints_source == "EndpointSlice" and [g.name for g in svc.endpoints] == ["web-1", "web-2"]
    assert addresses(svc) == [("192.0.2.7", "", True), ("192.0.2.8", "", False)]


def test_endpoints_win_over_selector(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", svc_yaml("web", SELECTOR_WEB) + pod_yaml("a"))
    write(tmp_path, "e.yaml", ENDPOINTS)
    svc = service(load(tmp_path, Config()), "web")
    assert svc.endpoints_source == "Endpoints"
    assert addresses(svc) == [("192.0.2.1", "", True), ("192.0.2.2", "", False)]


def test_orphan_slices_and_endpoints_warn(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", slice_yaml("ghost-1", "ghost", "192.0.2.9") + ENDPOINTS)
    state = load(tmp_path, Config())
    assert warnings(state, "does not exist") and warnings(state, "no Service default/web")
    assert state.services == ()


def test_named_service_port_missing_from_endpoints_warns(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", svc_yaml("web").replace("name: http", "name: https") + ENDPOINTS)
    (warning,) = warnings(load(tmp_path, Config()), "no endpoint port of the same name")
    assert warning.field == "spec.ports[0].name"


def test_external_name_ignores_endpoints(tmp_path: Path) -> None:
    write(
        tmp_path,
        "m.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: ExternalName, externalName: example.com}\n" + ENDPOINTS,
    )
    svc = service(load(tmp_path, Config()), "web")
    assert svc.endpoints == () and svc.endpoints_source == ""


@pytest.mark.parametrize("name", sorted(p.name for p in CLUSTERS.glob("seed-*")))
def test_seed_manifests_load_cleanly(name: str) -> None:
    config = Config(service_cidr=("10.233.0.0/18",)) if name.startswith("seed-001") else Config()
    state = load(CLUSTERS / name, config)
    assert state.problems == ()
    assert state.services


def test_seed_000_headless_pods() -> None:
    state = load(CLUSTERS / "seed-000-headless-endpoints", Config())
    assert sorted(h for _, h, _ in addresses(service(state, "headless1"))) == ["pod-a", "pod-b"]
    assert addresses(service(state, "endpoint3")) == [("185.199.110.153", "", True)]
    assert service(state, "endpoint2").endpoints == ()
    assert service(state, "externalname1").external_name == "github.github.io"


def test_seed_001_statefulset_and_static_ips() -> None:
    state = load(CLUSTERS / "seed-001-service-types", Config(service_cidr=("10.233.0.0/18",)))
    assert sorted(h for _, h, _ in addresses(service(state, "cassandra"))) == ["cassandra-0", "cassandra-1", "cassandra-2"]
    assert service(state, "myclusterip").cluster_ips == ("10.233.10.10",)
    assert service(state, "myloadbalance").cluster_ips == ("10.233.10.100",)
    (auto,) = service(state, "mycluster").cluster_ips
    assert ipaddress.ip_address(auto) in ipaddress.ip_network("10.233.0.0/18")
    assert len(addresses(service(state, "my-nodeport"))) == 3
    assert {g.ports[0].port for g in service(state, "my-nodeport").endpoints} == {8080}


def test_seed_004_nginx() -> None:
    state = load(CLUSTERS / "seed-004-nginx-services", Config())
    assert len(pods_of(state, "Deployment/nginx")) == 2
    assert len(addresses(service(state, "headless-svc"))) == 2
    assert addresses(service(state, "externalname-svc-httpd")) == [("10.65.40.20", "", True)]


def test_scale_2000_services_10000_pods(tmp_path: Path) -> None:
    chunks = []
    for i in range(2000):
        chunks.append(
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}, namespace: ns{i % 20}}}\n"
            f"spec:\n  selector: {{app: app{i}}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n"
            f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: dep{i}, namespace: ns{i % 20}}}\n"
            f"spec:\n  replicas: 5\n  selector: {{matchLabels: {{app: app{i}}}}}\n"
            f"  template:\n    metadata: {{labels: {{app: app{i}}}}}\n"
            f"    spec: {{containers: [{{name: c, ports: [{{name: http, containerPort: 8080}}]}}]}}\n"
        )
    write(tmp_path, "big.yaml", "".join(chunks))
    problems: list[Problem] = []
    objs = read_objects(read_directory(tmp_path), problems)
    state, _ = derive(objs, Config(), problems)
    assert state.problems == ()
    assert len(state.services) == 2000 and len(state.pods) == 10000
    assert len({p.ips[0] for p in state.pods}) == 10000
    assert len({s.cluster_ips[0] for s in state.services}) == 2000
    assert sum(len(g.addresses) for s in state.services for g in s.endpoints) == 10000


DEPLOY = """---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {app}}}}}
  template:
    metadata: {{labels: {{app: {app}}}}}
    spec:
      containers:
      - name: c
        ports: [{{name: http, containerPort: {port}}}]
"""


def test_a_rederivation_equals_a_fresh_one_and_reuses_what_did_not_change(tmp_path: Path) -> None:
    """derive() reuses what the previous call computed from the very same objects; the
    result must be the one a fresh call gives, whatever changed in between."""
    from clusterdns.manifests.files import read_file

    config = Config()
    files: dict[str, list[object]] = {}
    memo = None

    def put(rel: str, text: str) -> None:
        write(tmp_path, rel, text)
        files[rel] = read_objects(read_file(tmp_path, rel), [])

    def check() -> tuple[ClusterState, ClusterState]:
        """(derived after the previous check's call, derived again from itself), both checked."""
        nonlocal memo
        objs = [o for rel in sorted(files) for o in files[rel]]
        again, memo = derive(objs, config, None, memo)
        fresh, _ = derive(objs, config)
        assert again == fresh
        reused, memo = derive(objs, config, None, memo)  # and once more, everything reused
        assert reused == fresh
        return again, reused

    put("a.yaml", "".join(DEPLOY.format(name=f"d{i}", ns="default", replicas=3, app=f"a{i}", port=8080) for i in range(4)))
    put("b.yaml", "".join(svc_yaml(f"s{i}", f"    targetPort: http\n  selector:\n    app: a{i}") for i in range(3)))
    put("b3.yaml", svc_yaml("s3", "    targetPort: http\n  selector:\n    app: a3"))
    put("c.yaml", pod_yaml("bare", "app: a0", status="status:\n  podIP: 10.244.9.9"))
    put("d.yaml", "---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  selector: {matchLabels: {app: a1}}\n"
        "  template:\n    metadata: {labels: {app: a1}}\n    spec: {containers: [{name: c}]}\n")
    _, first = check()
    assert len(first.pods) == 14
    put("b.yaml", "".join(svc_yaml(f"s{i}", f"    targetPort: http\n  selector:\n    app: a{i}") for i in range(3)).replace("port: 80", "port: 81", 1))
    second, _ = check()
    kept = [p for p in second.pods if p.owner == "Deployment/d3"]
    assert kept and all(any(p is q for q in first.pods) for p in kept)  # the unchanged Deployment's Pods: the same objects
    assert service(second, "s3") is service(first, "s3")
    assert service(second, "s0") is not service(first, "s0")
    put("a.yaml", "".join(DEPLOY.format(name=f"d{i}", ns="default", replicas=2 + i, app=f"a{i}", port=8080 + (i == 2)) for i in range(4)))
    check()
    put("c.yaml", pod_yaml("bare", "app: a0", status="status:\n  podIP: 10.244.9.9").replace("containerPort: 8080", "containerPort: 9090"))
    third, _ = check()
    assert {a.ip for g in service(third, "s0").endpoints for a in g.addresses} >= {"10.244.9.9"}
    put("e.yaml", "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2}\n")
    check()
    del files["a.yaml"]
    check()
    put("b.yaml", svc_yaml("s1", "  selector:\n    app: nothing"))
    assert warnings(check()[0], "matches no Pods")
    config = Config(pod_cidr=("10.244.0.0/16", "fd00:10:244::/64"))
    check()


def test_many_files_read_in_worker_processes_give_the_same_objects(tmp_path: Path) -> None:
    """Worker processes (forked: in a process of its own, with no other thread) read what one would."""
    import subprocess
    import sys

    for i in range(12):
        write(tmp_path, f"f{i:02d}.yaml", svc_yaml(f"s{i}", SELECTOR_WEB) + pod_yaml(f"p{i}", status="status:\n  podIP: 10.244.0.%d" % (i + 1)))
    write(tmp_path, "broken.yaml", "a: [\n")
    script = f"""
from clusterdns.config.settings import Config
from clusterdns.derive.cluster import derive
from clusterdns.manifests.files import list_files
from clusterdns.objects import read
paths, _ = list_files({str(tmp_path)!r})
alone = read.read_files({str(tmp_path)!r}, paths)
read._parallel_workers = lambda root, rels: 2
together = read.read_files({str(tmp_path)!r}, paths)
assert together == alone, (together, alone)
assert [len(r.objects) for r in together] == [0] + [2] * 12 and together[0].problems
fresh, _ = derive([o for r in alone for o in r.objects], Config(), [p for r in alone for p in r.problems])
from tests.helpers.manifests import load_state
assert load_state({str(tmp_path)!r}, Config()) == fresh
print("same")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "same", done.stderr


def test_files_are_read_here_when_workers_would_not_pay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clusterdns.objects import read

    assert read._parallel_workers(tmp_path, ["a.yaml"] * 10) == 1  # few small files
    monkeypatch.setattr(read.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(read.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(read.threading, "active_count", lambda: 1)  # a thread an earlier test left would say "not forking"
    assert read._parallel_workers(tmp_path, ["a.yaml"] * read.PARALLEL_MIN_FILES) == 2
    monkeypatch.setattr(read.os, "getloadavg", lambda: (2.5, 0.0, 0.0))
    assert read._parallel_workers(tmp_path, ["a.yaml"] * read.PARALLEL_MIN_FILES) == 1  # the cores are busy


def test_selector_endpoints_come_in_slices_of_at_most_100(tmp_path: Path) -> None:
    """The EndpointSlice controller's --max-endpoints-per-slice (100): 150 Pods of one family and
    port list are two slices, 100 and 50; CoreDNS's transfer weighs SRV records per slice (xfr.go)."""
    deploy = (
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: big}\n"
        "spec:\n  replicas: 150\n  selector: {matchLabels: {app: big}}\n"
        "  template:\n    metadata: {labels: {app: big}}\n    spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}\n"
    )
    write(tmp_path, "big.yaml", svc_yaml("big", "  clusterIP: None\n  selector: {app: big}") + deploy)
    big = service(load(tmp_path, Config()), "big")
    assert [len(g.addresses) for g in big.endpoints] == [100, 50]


def test_a_mixed_endpoints_subset_is_one_slice_per_family(tmp_path: Path) -> None:
    """The mirroring controller copies an Endpoints subset into one slice per address family."""
    write(tmp_path, "ds.yaml", svc_yaml("ds", "  clusterIP: None") + textwrap.dedent("""
        ---
        apiVersion: v1
        kind: Endpoints
        metadata: {name: ds}
        subsets:
        - addresses: [{ip: 10.1.0.1}, {ip: "fd00::1"}, {ip: 10.1.0.2}]
          ports: [{name: http, port: 80}]
    """))
    ds = service(load(tmp_path, Config()), "ds")
    assert [[a.ip for a in g.addresses] for g in ds.endpoints] == [["10.1.0.1", "10.1.0.2"], ["fd00::1"]]
