"""manifests/files.py and manifests/documents.py: files in, documents out, with their file, index and line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clusterdns.errors import Problem
from clusterdns.manifests.documents import Document
from clusterdns.manifests.files import list_files, read_file
from clusterdns.objects.convert import from_manifest
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


def test_other_kinds_and_crds_are_ignored() -> None:
    assert convert({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}) is None
    assert convert({"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "x"}}) is None
    assert convert({"metadata": {"name": "no-kind"}}) is None
