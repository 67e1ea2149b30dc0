"""A re-read keeps the documents that did not change (manifests/files.py read_documents):
whatever the edit, the store then holds what a fresh read of the file gives."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from clusterdns.config.settings import Config
from clusterdns.objects import read
from clusterdns.objects.store import ManifestStore


def service(name: str, port: int) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  clusterIP: None\n  ports:\n  - port: {port}\n"


def warned(name: str) -> str:  # a warning, not an error: the file still reads
    return service(name, 80) + "status:\n  loadBalancer:\n    ingress:\n    - {}\n"


def listed(name: str) -> str:
    items = "".join(f"- kind: Service\n  apiVersion: v1\n  metadata: {{name: {name}-{i}}}\n  spec: {{clusterIP: None}}\n" for i in range(2))
    return f"apiVersion: v1\nkind: List\nitems:\n{items}"


DOCUMENTS = [
    lambda rng: service(f"s{rng.randrange(50)}", rng.randrange(1, 1000)),
    lambda rng: service(f"s{rng.randrange(50)}", 80) + "# a trailing comment\n" * rng.randrange(3),
    lambda rng: warned(f"w{rng.randrange(50)}"),
    lambda rng: listed(f"l{rng.randrange(50)}"),
    lambda rng: "# only a comment\n",
    lambda rng: "",
    lambda rng: f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: ns{rng.randrange(3)}\n",
    lambda rng: "- not\n- a mapping\n",  # an error: the file serves its last good version
    lambda rng: "key: [unclosed\n",  # invalid YAML
]


def text_of(documents: list[str]) -> str:
    return "".join("---\n" + d for d in documents)


def edit(rng: random.Random, documents: list[str]) -> None:
    """One edit as a person or a tool makes it: a document changed, added or removed."""
    what = rng.randrange(4)
    new = rng.choice(DOCUMENTS)(rng)
    if what == 0 or not documents:
        documents.insert(rng.randrange(len(documents) + 1), new)
    elif what == 1:
        del documents[rng.randrange(len(documents))]
    else:
        documents[rng.randrange(len(documents))] = new


@pytest.mark.parametrize("seed", range(40))
def test_a_reread_holds_what_a_fresh_read_gives(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    documents = [rng.choice(DOCUMENTS[:4])(rng) for _ in range(rng.randrange(1, 12))]
    path = tmp_path / "all.yaml"
    path.write_text(text_of(documents))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    for _ in range(15):
        edit(rng, documents)
        path.write_text(text_of(documents))
        change = store.refresh()
        assert change.modified == ["all.yaml"]
        fresh = ManifestStore(tmp_path, Config())
        fresh.refresh()
        if fresh.files["all.yaml"].good:
            assert store.objects() == fresh.objects()
            assert store.problems() == fresh.problems()
        else:  # the last good version serves: what the previous good read held
            assert not store.files["all.yaml"].good
            assert [p for p in store.problems() if "last good" not in p.message] == fresh.problems()


def test_a_reread_parses_only_the_changed_documents(tmp_path: Path) -> None:
    documents = [service(f"s{i}", 80) for i in range(5)]
    path = tmp_path / "all.yaml"
    path.write_text(text_of(documents))
    first = read.read_files(tmp_path, ["all.yaml"])[0]
    documents[3] = service("s3", 81)
    path.write_text(text_of(documents))
    again = read.read_files(tmp_path, ["all.yaml"], previous=[first])[0]
    assert [a is b for a, b in zip(again.objects, first.objects, strict=True)] == [True, True, True, False, True]
    assert again.objects[3].ports[0].port == 81
    assert again == read.read_files(tmp_path, ["all.yaml"])[0]


def json_item(rng: random.Random) -> dict:
    name = f"s{rng.randrange(50)}"
    item: dict = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"clusterIP": "None", "ports": [{"port": rng.randrange(1, 999)}]}}
    what = rng.randrange(6)
    if what == 0:
        item["status"] = {"loadBalancer": {"ingress": [{}]}}  # a warning
    elif what == 1:
        del item["kind"]  # a typed List's item: the kind comes from the List
    elif what == 2:
        item = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": f"ns{rng.randrange(3)}"}}
    elif what == 3:
        item["spec"]["ports"] = "not a list"  # an error: the file serves its last good version
    return item


def json_text(rng: random.Random, kind: str, items: list[dict]) -> str:
    """As kubectl (4 spaces), jq (2) or a minifier writes it."""
    indent = rng.choice((4, 4, 2, None))
    return json.dumps({"apiVersion": "v1", "items": items, "kind": kind, "metadata": {"resourceVersion": ""}}, indent=indent) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_a_reread_of_a_json_list_holds_what_a_fresh_read_gives(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    items = [json_item(rng) for _ in range(rng.randrange(1, 12))]
    kind = "List"
    path = tmp_path / "all.json"
    path.write_text(json_text(rng, kind, items))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    for _ in range(15):
        what = rng.randrange(10)
        if what < 6 and items:
            items[rng.randrange(len(items))] = json_item(rng)
        elif what == 6 and items:
            del items[rng.randrange(len(items))]
        elif what == 7:
            items.insert(rng.randrange(len(items) + 1), json_item(rng))
        elif what == 8:
            kind = rng.choice(("List", "ServiceList"))
        text = json_text(rng, kind, items)
        path.write_text(text if rng.randrange(12) else text[: len(text) // 2])  # sometimes cut short: invalid JSON
        store.refresh()
        fresh = ManifestStore(tmp_path, Config())
        fresh.refresh()
        if fresh.files["all.json"].good:
            assert store.objects() == fresh.objects()
            assert store.problems() == fresh.problems()
        else:
            assert [p for p in store.problems() if "last good" not in p.message] == fresh.problems()


def test_a_reread_of_a_json_list_parses_only_the_changed_items(tmp_path: Path) -> None:
    items = [json.loads(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s{i}"}, "spec": {"clusterIP": "None"}})) for i in range(5)]
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4))
    first = read.read_files(tmp_path, ["all.json"])[0]
    items[3]["spec"]["ports"] = [{"port": 81}]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=4))
    again = read.read_files(tmp_path, ["all.json"], previous=[first])[0]
    assert [a is b for a, b in zip(again.objects, first.objects, strict=True)] == [True, True, True, False, True]
    assert again == read.read_files(tmp_path, ["all.json"])[0]


def test_a_nested_items_list_is_not_taken_for_the_lists_items(tmp_path: Path) -> None:
    """Found in review: a List whose own items are written inline, holding a pretty-printed
    nested "items" (a configMap volume's) of as many entries, was split at the nested one."""
    def text(path: str) -> str:
        return ('{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p0"},\n'
                ' "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "configMap": {"name": "cm",\n'
                '  "items": [\n   {\n    "key": "a",\n    "path": "a"\n   },\n   {\n    "key": "b",\n    "path": "' + path + '"\n   }\n'
                '  ]}}]}, "status": {"podIP": "10.244.0.5"}},\n'
                ' {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}]}\n')

    path = tmp_path / "list.json"
    path.write_text(text("b"))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    path.write_text(text("b2"))
    store.refresh()
    fresh = ManifestStore(tmp_path, Config())
    fresh.refresh()
    assert [type(o).__name__ for o in store.objects()] == ["Pod", "Service"]
    assert store.objects() == fresh.objects()


@pytest.mark.parametrize("change", ["blank lines before the List", "the List's apiVersion"])
def test_a_reread_after_the_lists_own_line_or_apiversion_changed_holds_what_a_fresh_read_gives(tmp_path: Path, change: str) -> None:
    """Found in review: the items the same, but what they are read with changed. Their
    Sources' line is the List's (so blank lines above move it), and a typed List's items
    take its apiVersion (v2 never existed for a Service: a warning on each)."""
    items = [{"metadata": {"name": f"s{i}"}, "spec": {"clusterIP": "None", "ports": [{"port": 80 + i}]}} for i in range(3)]
    path = tmp_path / "services.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "ServiceList", "items": items}, indent=4))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    if change == "blank lines before the List":
        path.write_text("\n\n\n" + path.read_text())
    else:
        path.write_text(json.dumps({"apiVersion": "v2", "kind": "ServiceList", "items": items}, indent=4))
    store.refresh()
    fresh = ManifestStore(tmp_path, Config())
    fresh.refresh()
    assert store.objects() == fresh.objects() and store.problems() == fresh.problems()
    assert {o.source.line for o in fresh.objects()} == {4 if change == "blank lines before the List" else 1}
    assert len(fresh.problems()) == (3 if change == "the List's apiVersion" else 0)
