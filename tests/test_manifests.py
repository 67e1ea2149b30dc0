"""manifests.py and objects.py: files and documents in, validated slim objects out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clusterdns.objects import kinds as k8s
from clusterdns.objects.convert import from_manifest
from clusterdns.errors import ManifestError, Problem
from clusterdns.manifests.documents import Document
from clusterdns.manifests.files import list_files, read_file
from tests.helpers.manifests import read_directory
from tests.helpers.process import UNIT_FIXTURE

FIXTURE = UNIT_FIXTURE

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  ports:
  - port: 80
"""


def write(root: Path, relpath: str, text: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def documents(entries: list[Document | Problem]) -> list[Document]:
    return [e for e in entries if isinstance(e, Document)]


def problems(entries: list[Document | Problem]) -> list[Problem]:
    return [e for e in entries if isinstance(e, Problem)]


def convert(data: dict, file: str = "m.yaml", line: int = 1) -> object:
    return from_manifest(Document(file, "0", line, data))


# --- files and documents ---------------------------------------------------------------


def test_multi_document_file_gives_index_and_first_content_line(tmp_path: Path) -> None:
    write(
        tmp_path,
        "multi.yaml",
        "# header comment\n---\n" + SERVICE.format(name="a") + "---\n---\n# about b\n" + SERVICE.format(name="b"),
    )
    docs = documents(read_directory(tmp_path))
    assert [(d.doc, d.line, d.data["metadata"]["name"]) for d in docs] == [("0", 3, "a"), ("2", 13, "b")]
    assert all(d.file == "multi.yaml" for d in docs)


def test_list_items_are_expanded_with_item_ids_and_the_lists_line(tmp_path: Path) -> None:
    items = "".join(f"- apiVersion: v1\n  kind: Service\n  metadata: {{name: s{i}}}\n" for i in range(3))
    write(tmp_path, "list.yaml", SERVICE.format(name="first") + "---\n# dump\napiVersion: v1\nkind: List\nitems:\n" + items)
    docs = documents(read_directory(tmp_path))
    assert [(d.doc, d.line) for d in docs] == [("0", 1), ("1/0", 10), ("1/1", 10), ("1/2", 10)]
    assert [d.data["metadata"]["name"] for d in docs[1:]] == ["s0", "s1", "s2"]


def test_typed_api_list_items_get_their_kind(tmp_path: Path) -> None:
    write(tmp_path, "svc.json", json.dumps({"apiVersion": "v1", "kind": "ServiceList", "items": [{"metadata": {"name": "x"}}]}))
    (doc,) = documents(read_directory(tmp_path))
    assert (doc.doc, doc.data["kind"], doc.data["apiVersion"]) == ("0/0", "Service", "v1")


def test_json_file_is_one_document(tmp_path: Path) -> None:
    write(tmp_path, "a.json", json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, indent=2))
    (doc,) = read_directory(tmp_path)
    assert isinstance(doc, Document)
    assert (doc.file, doc.doc, doc.data["metadata"]["name"]) == ("a.json", "0", "shop")


def test_broken_json_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", '{\n  "kind": "Service",\n  "metadata": {,}\n}\n')
    (problem,) = read_directory(tmp_path)
    assert isinstance(problem, Problem)
    assert (problem.level, problem.file, problem.line) == ("error", "bad.json", 3)


def test_broken_file_next_to_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "a-good.yaml", SERVICE.format(name="a"))
    write(tmp_path, "b-bad.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [oops\n")
    write(tmp_path, "c-good.yaml", SERVICE.format(name="c"))
    entries = read_directory(tmp_path)
    assert [d.data["metadata"]["name"] for d in documents(entries)] == ["a", "c"]
    (problem,) = problems(entries)
    assert (problem.level, problem.file, problem.doc) == ("error", "b-bad.yaml", "0")
    assert problem.line in (4, 5)  # the flow sequence opened on line 4 is never closed
    assert "invalid YAML" in problem.message


def test_parse_error_in_one_document_keeps_the_others(tmp_path: Path) -> None:
    text = (
        SERVICE.format(name="a")
        + "---\n"
        + SERVICE.format(name="b")
        + "---\nkind: Service\n  bad: indent\n---\n"
        + SERVICE.format(name="d")
    )
    write(tmp_path, "m.yaml", text)
    entries = read_directory(tmp_path)
    assert [(d.doc, d.data["metadata"]["name"]) for d in documents(entries)] == [("0", "a"), ("1", "b"), ("3", "d")]
    (problem,) = problems(entries)
    assert (problem.file, problem.doc, problem.line) == ("m.yaml", "2", 18)  # "  bad: indent"


def test_empty_documents_and_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "comments.yaml", "# nothing here\n---\n---\n")
    assert read_directory(tmp_path) == []


def test_non_mapping_document_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "list.yaml", "- a\n- b\n")
    (problem,) = read_directory(tmp_path)
    assert isinstance(problem, Problem)
    assert problem.file == "list.yaml" and "not a mapping" in problem.message


def test_recursive_sorted_and_filtered(tmp_path: Path) -> None:
    for rel in [
        "b.yaml",
        "a/z.yml",
        "a/b/c.json",
        "a.yaml",
        ".hidden.yaml",
        ".git/config.yaml",
        "x.yaml~",
        "notes.txt",
        "a/.swp.yaml",
        "deep/.d/x.yaml",
    ]:
        write(tmp_path, rel, json.dumps({"kind": "X", "metadata": {"name": "n"}}))
    files = [d.file for d in documents(read_directory(tmp_path))]
    assert files == ["a.yaml", "a/b/c.json", "a/z.yml", "b.yaml"]


def test_which_files_count(tmp_path: Path) -> None:
    """.yaml, .yml and .json in any case; not hidden names, backups or other suffixes."""
    for rel in ("a/b.yaml", "c.JSON", "d.yml", "..data/a.yaml", "a.yaml~", ".a.yaml", "a.txt", ".git/x.yaml"):
        write(tmp_path, rel, "{}")
    assert list_files(tmp_path) == (["a/b.yaml", "c.JSON", "d.yml"], [])


def test_configmap_mount_layout_reads_each_file_once(tmp_path: Path) -> None:
    # What kubelet writes for a ConfigMap volume: a timestamped dir, `..data` pointing at
    # it, and top-level symlinks through `..data`.
    write(tmp_path, "..2024_01_01_00_00_00.123/a.yaml", SERVICE.format(name="a"))
    os.symlink("..2024_01_01_00_00_00.123", tmp_path / "..data")
    os.symlink("..data/a.yaml", tmp_path / "a.yaml")
    entries = read_directory(tmp_path)
    assert [(d.file, d.data["metadata"]["name"]) for d in documents(entries)] == [("a.yaml", "a")]
    assert problems(entries) == []


def test_symlinked_directories_are_followed_and_loops_end(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "svc.yaml", SERVICE.format(name="linked"))
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked")
    os.symlink(root, root / "loop")  # root/loop -> root
    docs = documents(read_directory(root))
    assert [d.file for d in docs] == ["linked/svc.yaml"]


def test_dangling_symlink_is_a_warning(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", SERVICE.format(name="ok"))
    os.symlink("missing.yaml", tmp_path / "gone.yaml")
    entries = read_directory(tmp_path)
    assert len(documents(entries)) == 1
    (problem,) = problems(entries)
    assert (problem.level, problem.file) == ("warning", "gone.yaml")


def test_read_file_for_incremental_reloads(tmp_path: Path) -> None:
    write(tmp_path, "sub/one.yaml", SERVICE.format(name="one") + "---\n" + SERVICE.format(name="two"))
    docs = documents(read_file(tmp_path, "sub/one.yaml"))
    assert [(d.file, d.doc) for d in docs] == [("sub/one.yaml", "0"), ("sub/one.yaml", "1")]
    (missing,) = read_file(tmp_path, "nope.yaml")
    assert isinstance(missing, Problem) and missing.file == "nope.yaml"


def test_missing_directory_is_a_problem(tmp_path: Path) -> None:
    (problem,) = read_directory(tmp_path / "nope")
    assert isinstance(problem, Problem) and problem.level == "error"


def test_bom_is_accepted_and_binary_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + SERVICE.format(name="bom").encode())
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    entries = read_directory(tmp_path)
    assert [d.data["metadata"]["name"] for d in documents(entries)] == ["bom"]
    assert [p.file for p in problems(entries)] == ["bin.yaml"]


def test_fixture_documents_all_parse() -> None:
    entries = read_directory(FIXTURE)
    assert problems(entries) == []
    assert {d.file for d in documents(entries)} == {"endpointslices.yaml", "namespaces.yaml", "pods.yaml", "services.yaml"}
    assert len(documents(entries)) == 6 + 5 + 1 + 10


# YAML that manifests hold, and YAML they rarely do: read_file must give what PyYAML's
# safe loader gives for each document (manifests.py builds plain documents from libyaml's
# events itself, and reads a file with one loader when it can).
TRICKY_YAML = [
    "a: 1\nb: yes\nc: 'yes'\nd: 0o17\ne: 017\nf: 0x1F\ng: 1_000\nh: 1:30\ni: 1.5e3\nj: .inf\nk: ~\nl: null\nm: True\nn: NO\n",
    "t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\nb: !!binary aGVsbG8=\nf: !!float 1\ns: !!str 2024-01-01\ni: 0b1010\nz: 0\no: 08\n",
    "ports:\n- {name: http, port: 80, targetPort: 8080}\n- name: dns\n  port: 53\n  protocol: UDP\nlabels: {'true': true, '1': 1}\n",
    "a: &m {x: 1, y: [1, 2]}\nb: *m\nc: &s [a, b]\nd: *s\ne: &v val\n*v : from-alias\n",
    "f: &r [*r]\ng: &q {h: *q}\n",
    "base: &b {x: 1}\nd:\n  <<: *b\n  z: 3\n",
    "a: &x 1\nb: &x 2\n",
    "a: *nowhere\n",
    "? [1, 2]\n: v\n",
    "a: !foo bar\n",
    "c: !!set {x, y}\nd: !!omap [{a: 1}]\n",
    "a: !!map {x: 1}\nb: !!seq [1]\nc: ! {x: 1}\nd: ! [1]\n",
    "e: !!str {x: 1}\n",
    "1: one\n~: nul\ntrue: t\n1.5: f\n2020-01-01: d\n",
    "--- &a hello\n",
    "just a string\n",
    "- 1\n- [2, {3: 4}]\n",
    "a: [1, 2\n",
    "a: |\n  line\n   more\nb: >-\n  folded\n  text\n",
    "",
    "# only a comment\n",
    "=: 1\n",
]


@pytest.mark.parametrize("text", TRICKY_YAML)
def test_documents_read_as_pyyaml_reads_them(tmp_path: Path, text: str) -> None:
    import yaml

    def pyyaml(doc: str) -> object:
        try:
            return yaml.load(doc, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as e:
            return type(e)

    among = "x: 1\n" + ("" if text.startswith("---") else "---\n") + text + "---\ny: 2\n"
    for name, content in (("alone.yaml", text), ("among.yaml", among)):
        write(tmp_path, name, content)
        entries = read_file(tmp_path, name)
        got = {e.doc: (e.data if isinstance(e, Document) else "problem") for e in entries if e.doc in ("0", "1")}
        if name == "among.yaml":
            assert documents(entries)[0].data == {"x": 1} and documents(entries)[-1].data == {"y": 2}
            doc = "1"
        else:
            doc = "0"
        expected = pyyaml(text)
        if isinstance(expected, type):
            assert got.get(doc) == "problem"
        elif isinstance(expected, dict):
            assert repr(got.get(doc)) == repr(expected)  # repr: recursive data, and 1 vs True
        elif expected is not None:
            assert got.get(doc) == "problem"  # not a mapping
        else:
            assert doc not in got


def test_a_files_documents_keep_their_lines_and_errors_when_read_together(tmp_path: Path) -> None:
    text = "".join(f"---\n# doc {i}\n" + SERVICE.format(name=f"s{i}") for i in range(5)) + "---\na: [\n---\nb: 1\n"
    write(tmp_path, "many.yaml", text)
    entries = read_file(tmp_path, "many.yaml")
    assert [(d.doc, d.line) for d in documents(entries)] == [("0", 3), ("1", 12), ("2", 21), ("3", 30), ("4", 39), ("6", 49)]
    assert [(p.doc, p.line) for p in problems(entries)] == [("5", 47)]


def test_a_one_document_dump_gives_each_item_with_the_lists_line(tmp_path: Path) -> None:
    """A `kubectl get -o json/yaml` dump is one document: its first line is found without
    splitting all of it, and its YAML is built from events, not from a tree of nodes."""
    import yaml

    items = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}", "labels": {"app": f"a{i}"}}} for i in range(3000)]
    write(tmp_path, "dump.json", "\n\n" + json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4))
    write(tmp_path, "dump.yaml", "# kubectl get svc -o yaml\n" + yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    for name, line in (("dump.json", 3), ("dump.yaml", 2)):
        docs = documents(read_file(tmp_path, name))
        assert len(docs) == 3000 and docs[-1].doc == "0/2999" and docs[-1].line == line
        assert docs[1234].data == items[1234]


# --- objects -----------------------------------------------------------------------------


def test_service_defaults() -> None:
    svc = convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert isinstance(svc, k8s.Service)
    assert (svc.namespace, svc.type, svc.headless, svc.selector, svc.cluster_ips) == ("default", "ClusterIP", False, None, ())
    (port,) = svc.ports
    assert (port.name, port.protocol, port.port, port.target_port) == ("", "TCP", 80, None)


def test_service_fields() -> None:
    svc = convert(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db", "namespace": "shop", "annotations": {k8s.TOLERATE_UNREADY: "true"}},
            "spec": {
                "clusterIP": "None",
                "selector": {"app": "db", "version": 2, "on": True},
                "ports": [
                    {"name": "pg", "port": 5432, "targetPort": "pg-port", "protocol": "tcp"},
                    {"name": "m", "port": 9000, "targetPort": "9001"},
                ],
            },
        }
    )
    assert isinstance(svc, k8s.Service)
    assert svc.headless and svc.cluster_ips == () and svc.publish_not_ready
    assert svc.selector == (("app", "db"), ("on", "true"), ("version", "2"))
    assert [(p.protocol, p.target_port) for p in svc.ports] == [("TCP", "pg-port"), ("TCP", 9001)]


def test_empty_selector_is_no_selector() -> None:
    svc = convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"selector": {}, "ports": [{"port": 1}]}})
    assert isinstance(svc, k8s.Service) and svc.selector is None


def test_cluster_ips_are_canonical() -> None:
    spec = {
        "clusterIP": "10.0.0.3",
        "clusterIPs": ["10.0.0.3", "FD00:0:0::0003"],
        "ipFamilyPolicy": "RequireDualStack",
        "ports": [{"port": 1}],
    }
    svc = convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "d"}, "spec": spec})
    assert isinstance(svc, k8s.Service)
    assert svc.cluster_ips == ("10.0.0.3", "fd00::3") and svc.ip_family_policy == "RequireDualStack"


def test_external_name_is_lower_cased_without_trailing_dot() -> None:
    svc = convert(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "e"},
            "spec": {"type": "ExternalName", "externalName": "API.Example.COM."},
        }
    )
    assert isinstance(svc, k8s.Service) and svc.external_name == "api.example.com" and svc.cluster_ips == ()


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"ports": [{"name": "http"}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 80}, {"name": "x", "port": "80"}]}, "spec.ports[1].port"),
        ({"ports": [{"port": 70000}]}, "spec.ports[0].port"),
        ({"ports": [{"port": 80, "protocol": "ICMP"}]}, "spec.ports[0].protocol"),
        ({"ports": [{"port": 80, "targetPort": 0}]}, "spec.ports[0].targetPort"),
        ({"clusterIP": "10.0.0.300"}, "spec.clusterIP"),
        ({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"]}, "spec.clusterIPs[0]"),
        ({"type": "ExternalName"}, "spec.externalName"),
        ({"type": "Magic"}, "spec.type"),
        ({"ipFamilies": ["IPv5"]}, "spec.ipFamilies[0]"),
        ({"ports": "80"}, "spec.ports"),
    ],
)
def test_service_errors_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ManifestError) as info:
        convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}, "svc.yaml", 7)
    problem = info.value.problem
    assert (problem.level, problem.field, problem.file, problem.line, problem.kind, problem.name) == (
        "error",
        field,
        "svc.yaml",
        7,
        "Service",
        "shop/web",
    )


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({}, "metadata.name"),
        ({"name": "Web Server"}, "metadata.name"),
        ({"name": "1abc"}, "metadata.name"),
        ({"name": "ok", "namespace": "Bad_NS"}, "metadata.namespace"),
    ],
)
def test_invalid_names_are_errors(metadata: dict, field: str) -> None:
    with pytest.raises(ManifestError) as info:
        convert({"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {}})
    assert info.value.problem.field == field


def test_other_kinds_and_crds_are_ignored() -> None:
    assert convert({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}) is None
    assert convert({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "x"}}) is None
    assert convert({"metadata": {"name": "no-kind"}}) is None


def test_missing_api_version_is_accepted() -> None:
    assert isinstance(convert({"kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 1}]}}), k8s.Service)
    assert isinstance(
        convert({"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}),
        k8s.Deployment,
    )


def test_endpoint_slice() -> None:
    data = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abc", "namespace": "shop", "labels": {k8s.SERVICE_NAME_LABEL: "web"}},
        "addressType": "IPv6",
        "ports": [{"name": "http", "port": 8080}, {"name": "any"}],
        "endpoints": [
            {"addresses": ["FD00::0A"], "hostname": "web-0", "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "web-0"}},
            {"addresses": ["fd00::b"], "conditions": {"ready": False, "serving": True, "terminating": True}},
        ],
    }
    found: list[Problem] = []
    s = from_manifest(Document("s.yaml", "0", 1, data), found)
    assert isinstance(s, k8s.EndpointSlice)
    assert (s.service_name, s.address_type) == ("web", "IPv6")
    assert [(p.name, p.protocol, p.port) for p in s.ports] == [("http", "TCP", 8080)]
    assert [w.field for w in found] == ["ports[1].port"]  # a port without a number is dropped
    first, second = s.endpoints
    assert (first.ip, first.hostname, first.ready, first.pod_name, first.pod_namespace, first.node_name) == (
        "fd00::a",
        "web-0",
        True,
        "web-0",
        "shop",
        "n1",
    )
    assert (second.ready, second.serving, second.terminating) == (False, True, True)


def test_endpoint_slice_v1beta1_topology() -> None:
    data = {
        "apiVersion": "discovery.k8s.io/v1beta1",
        "kind": "EndpointSlice",
        "metadata": {"name": "s", "labels": {k8s.SERVICE_NAME_LABEL: "web"}},
        "endpoints": [{"addresses": ["10.1.2.3"], "topology": {"kubernetes.io/hostname": "node-a"}}],
    }
    s = convert(data)
    assert isinstance(s, k8s.EndpointSlice) and s.endpoints[0].node_name == "node-a" and s.ports == ()


def test_endpoints_subsets() -> None:
    data = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "ext"},
        "subsets": [
            {"addresses": [{"ip": "192.0.2.1", "hostname": "a"}], "notReadyAddresses": [{"ip": "192.0.2.2"}], "ports": [{"port": 80}]}
        ],
    }
    e = convert(data)
    assert isinstance(e, k8s.Endpoints)
    (subset,) = e.subsets
    assert [(a.ip, a.hostname, a.ready) for a in subset.addresses] == [("192.0.2.1", "a", True), ("192.0.2.2", "", False)]


def test_seed_placeholder_endpoints_are_errors() -> None:
    # From seed post 000: the author left the placeholders in.
    data = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "Service Name"},
        "subsets": [{"addresses": [{"ip": "Pod IP Address"}]}],
    }
    with pytest.raises(ManifestError) as info:
        convert(data)
    assert info.value.problem.field == "metadata.name"
    data["metadata"] = {"name": "svc"}
    with pytest.raises(ManifestError) as info:
        convert(data)
    assert info.value.problem.field == "subsets[0].addresses[0].ip"


def test_pod_status() -> None:
    data = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "labels": {"app": "x"},
            "deletionTimestamp": "2024-01-01T00:00:00Z",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": True}],
        },
        "spec": {
            "hostname": "h",
            "subdomain": "s",
            "nodeName": "n",
            "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.1.0.5",
            "podIPs": [{"ip": "fd00::5"}, {"ip": "10.1.0.5"}],
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    }
    pod = convert(data)
    assert isinstance(pod, k8s.Pod)
    assert pod.ips == ("10.1.0.5", "fd00::5")
    assert (pod.ready, pod.terminating, pod.hostname, pod.subdomain, pod.node_name) == (False, True, "h", "s", "n")
    assert pod.ports == (k8s.ContainerPort("http", 8080, "TCP"),)
    assert pod.owners == (("ReplicaSet", "rs"),)


def test_status_less_pod_is_running_and_ready() -> None:
    pod = convert({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})
    assert isinstance(pod, k8s.Pod) and pod.ready and pod.phase == "Running" and pod.ips == ()


def test_pod_hostname_must_be_a_label() -> None:
    with pytest.raises(ManifestError) as info:
        convert({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostname": "a.b"}})
    assert info.value.problem.field == "spec.hostname"


def test_container_port_is_required() -> None:
    spec = {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "ports": [{"name": "http"}]}]}}}
    with pytest.raises(ManifestError) as info:
        convert({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec})
    assert info.value.problem.field == "spec.template.spec.containers[0].ports[0].containerPort"


def test_workload_selector_and_replicas() -> None:
    template = {"metadata": {"labels": {"app": "web", "tier": "front"}}, "spec": {"containers": [{"name": "c"}]}}
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]}
    d = convert(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"selector": selector, "template": template}}
    )
    assert isinstance(d, k8s.Deployment) and d.replicas == 1
    assert d.selector.matches({"app": "web", "tier": "back"}) and not d.selector.matches({"app": "web", "tier": "db"})
    assert d.template.labels == (("app", "web"), ("tier", "front")) and len(d.template.digest) == 64
    with pytest.raises(ManifestError) as info:
        convert(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": template},
            }
        )
    assert info.value.problem.field == "spec.selector"


def test_label_selector_operators() -> None:
    sel = k8s.LabelSelector((), (("a", "Exists", ()), ("b", "DoesNotExist", ()), ("c", "NotIn", ("x",))))
    assert sel.matches({"a": "1"}) and sel.matches({"a": "1", "c": "y"})
    assert not sel.matches({}) and not sel.matches({"a": "1", "b": "2"}) and not sel.matches({"a": "1", "c": "x"})


def test_stateful_set_fields() -> None:
    spec = {
        "serviceName": "db",
        "replicas": 3,
        "ordinals": {"start": 5},
        "selector": {"matchLabels": {"app": "db"}},
        "template": {
            "metadata": {"labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 5432, "name": "pg"}]}]},
        },
    }
    sts = convert({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"}, "spec": spec})
    assert isinstance(sts, k8s.StatefulSet)
    assert (sts.service_name, sts.replicas, sts.ordinals_start, sts.template.ports[0].name) == ("db", 3, 5, "pg")
