"""JSON files read with msgspec (manifests/json_items.py) give what json.loads gives: the same
objects and problems for every file, with a Pod item decoded only in the fields DNS reads."""

from __future__ import annotations

import copy
import json
import random
import typing
from pathlib import Path
from typing import Any

import pytest

from clusterdns.errors import Problem
from clusterdns.manifests import json_items
from clusterdns.manifests.documents import Document, json_documents
from clusterdns.manifests.files import read_documents
from clusterdns.objects.convert import from_manifest, object_ref
from clusterdns.objects.read import read_objects

# A Pod as `kubectl get pods -o json` writes it (Kubernetes 1.30), dual-stack, named by a
# headless Service's subdomain.
KUBECTL_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "generateName": "web-",
        "labels": {"app": "web", "apps.kubernetes.io/pod-index": "0", "statefulset.kubernetes.io/pod-name": "web-0"},
        "name": "web-0",
        "namespace": "default",
        "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True, "kind": "StatefulSet", "name": "web", "uid": "u1"}],
        "resourceVersion": "1001",
        "uid": "u2",
    },
    "spec": {
        "containers": [
            {"image": "nginx", "name": "app", "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}],
             "resources": {}, "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "kube-api-access", "readOnly": True}]},
            {"image": "busybox", "name": "sidecar"},
        ],
        "hostname": "web-0",
        "nodeName": "node-1",
        "subdomain": "web",
        "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300}],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
    },
    "status": {
        "conditions": [
            {"lastProbeTime": None, "lastTransitionTime": "2024-05-01T10:00:05Z", "status": "True", "type": "Initialized"},
            {"lastProbeTime": None, "lastTransitionTime": "2024-05-01T10:00:05Z", "status": "True", "type": "Ready"},
        ],
        "containerStatuses": [{"name": "app", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T10:00:04Z"}}}],
        "hostIP": "172.16.0.1",
        "phase": "Running",
        "podIP": "10.244.0.5",
        "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00:10:244::5"}],
    },
}
KUBECTL_SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "targetPort": "http"}], "selector": {"app": "web"}},
}


def read_both(tmp_path: Path, text: str) -> tuple[tuple[list, list[Problem]], tuple[list, list[Problem]]]:
    """(objects, problems) of the file as read (msgspec), and as json.loads reads the same text."""
    (tmp_path / "pods.json").write_text(text)
    read = read_documents(tmp_path, "pods.json")
    problems: list[Problem] = []
    objects = read_objects(read.entries, problems)
    loads_problems: list[Problem] = []
    loads_objects = read_objects(json_documents("pods.json", text.removeprefix("\ufeff")), loads_problems)
    return (objects, problems), (loads_objects, loads_problems)


def as_list(items: list[Any], kind: str = "List", indent: int | None = 4) -> str:
    return json.dumps({"apiVersion": "v1", "items": items, "kind": kind, "metadata": {"resourceVersion": ""}}, indent=indent) + "\n"


# --- every key the converters read of a Pod is one json_items decodes -----------------------


class Recording(dict):  # type: ignore[type-arg]
    """A mapping that notes the path of every key read of it (and of the mappings in it).

    Being a dict subclass, it takes the converter's general path where the converter has a
    fast one for a plain dict (`type(x) is dict`: a port as kubectl writes it, a list entry);
    those read no key the general path does not, and the case tables below, which compare
    with json.loads's reading, run the fast ones."""

    def __init__(self, data: dict[str, Any], path: tuple[str, ...], seen: set[tuple[str, ...]]) -> None:
        super().__init__({k: _recording(v, (*path, k), seen) for k, v in data.items()})
        self.path, self.seen = path, seen


def _noting(read: Any, key_of: Any) -> Any:
    """`read` (a dict method), noting first the path it reads: its key's, or "*" (every key)."""
    def noting(self: Recording, *args: Any) -> Any:
        self.seen.add((*self.path, key_of(args)))
        return read(self, *args)
    return noting


for _name in ("get", "__getitem__", "__contains__"):  # one key: the first argument
    setattr(Recording, _name, _noting(getattr(dict, _name), lambda args: args[0]))
for _name in ("items", "keys", "values", "__iter__", "__len__"):  # the mapping read whole
    setattr(Recording, _name, _noting(getattr(dict, _name), lambda args: "*"))


def _recording(value: Any, path: tuple[str, ...], seen: set[tuple[str, ...]]) -> Any:
    if isinstance(value, dict):
        return Recording(value, path, seen)
    if isinstance(value, list):
        return [_recording(v, (*path, "[]"), seen) for v in value]
    return value


def decoded(annotation: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The key paths a json_items TypedDict decodes: ("spec", "containers", "[]", "ports", "*") for
    every path under a field of type Any."""
    if annotation is Any:
        return {(*path, "*")}
    if typing.get_origin(annotation) is list:
        return {path} | decoded(typing.get_args(annotation)[0], (*path, "[]"))
    paths = {path} if path else set()
    for key, value in typing.get_type_hints(annotation).items():
        paths |= decoded(value, (*path, key))
    return paths


def read_by_converters(pod: dict[str, Any]) -> set[tuple[str, ...]]:
    seen: set[tuple[str, ...]] = set()
    doc = Document("pods.json", "0/0", 1, Recording(pod, (), seen))
    from_manifest(doc, [])
    object_ref(doc)
    return seen


def covered(path: tuple[str, ...], paths: set[tuple[str, ...]]) -> bool:
    return path in paths or any(path[:i] + ("*",) in paths for i in range(len(path) + 1))


def test_the_pod_fields_decoded_are_every_field_the_converters_read() -> None:
    """A field the Pod converter reads but json_items skips would read as missing: the recorded
    reads of varied Pods (each optional field present, and each of the odd forms the converter
    takes) must all be decoded."""
    pods = [KUBECTL_POD]
    variant = copy.deepcopy(KUBECTL_POD)
    variant["metadata"]["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    variant["status"]["podIPs"] = ["10.244.0.5"]  # a bare string entry
    variant["spec"]["containers"][0]["ports"][0]["protocol"] = "tcp"  # read by the field's own check
    pods.append(variant)
    no_ready = copy.deepcopy(KUBECTL_POD)
    no_ready["status"]["conditions"] = [{"type": "Initialized", "status": "True"}]
    pods.append(no_ready)
    paths = decoded(json_items._Pod)
    for pod in pods:
        seen = read_by_converters(pod)
        assert ("spec", "hostname") in seen  # the recording sees the converter's reads
        assert [p for p in seen if not covered(p, paths)] == []


def test_the_recording_catches_a_field_not_decoded() -> None:
    """The check above can fail: a read of spec.hostNetwork, which json_items does not decode."""
    seen = read_by_converters(KUBECTL_POD) | {("spec", "hostNetwork")}
    assert [p for p in seen if not covered(p, decoded(json_items._Pod))] == [("spec", "hostNetwork")]


# --- the same objects and problems as json.loads --------------------------------------------


CASES = [
    ("a kubectl List", as_list([KUBECTL_SERVICE, KUBECTL_POD])),
    ("a typed List: items without kind", as_list([{k: v for k, v in KUBECTL_POD.items() if k != "kind"}], kind="PodList")),
    ("minified", as_list([KUBECTL_POD, KUBECTL_SERVICE], indent=None)),
    ("one Pod, not a List", json.dumps(KUBECTL_POD, indent=2)),
    ("a BOM", "\ufeff" + as_list([KUBECTL_POD])),
    ("blank lines before", "\n\r\n \n" + as_list([KUBECTL_POD])),
    ("NaN, which json.loads takes", as_list([KUBECTL_POD]).replace('"restartCount": 0', '"restartCount": NaN')),
    ("a lone surrogate escape", as_list([KUBECTL_POD]).replace('"nginx"', '"\\ud800"')),
    ("cut short", as_list([KUBECTL_POD])[:-40]),
    ("spec a list", as_list([{**KUBECTL_POD, "spec": []}])),
    ("status null", as_list([{**KUBECTL_POD, "status": None}])),
    ("a condition not a mapping", as_list([{**KUBECTL_POD, "status": {"conditions": ["Ready"]}}])),
    ("containers null", as_list([{**KUBECTL_POD, "spec": {"containers": None}}])),
    ("an item not a mapping", as_list([5, KUBECTL_POD])),
    ("items not a list", json.dumps({"apiVersion": "v1", "kind": "List", "items": {"a": KUBECTL_POD}})),
    ("a List of no items", as_list([])),
    ("not a List", json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "items": [KUBECTL_POD]})),
    ("kind not a string", json.dumps({"apiVersion": "v1", "kind": ["List"], "items": [KUBECTL_POD]})),
    ("apiVersion a mapping", json.dumps({"apiVersion": {"v": 1}, "kind": "PodList", "items": [{k: v for k, v in KUBECTL_POD.items() if k != "kind"}]})),
    ("a Pod of another group", as_list([{**KUBECTL_POD, "apiVersion": "example.com/v1"}])),
    ("a huge integer", as_list([KUBECTL_POD]).replace('"containerPort": 8080', '"containerPort": 123456789012345678901234567890')),
    ("a float port", as_list([KUBECTL_POD]).replace('"containerPort": 8080', '"containerPort": 8080.0')),
    ("a boolean label", as_list([KUBECTL_POD]).replace('"app": "web"', '"app": true')),
    ("duplicate keys", as_list([KUBECTL_POD]).replace('"podIP": "10.244.0.5"', '"podIP": "10.244.0.9", "podIP": "10.244.0.5"')),
    ("nested deep", as_list([KUBECTL_POD]).replace('"defaultMode": 420', '"defaultMode": ' + "[" * 5000 + "]" * 5000)),
    # Past Python's 4,300 digits for one integer (found in review: json.loads raised, and the
    # whole directory's read stopped): read as its text, as in YAML.
    ("a 4,301-digit integer, in a field DNS does not read", as_list([KUBECTL_POD]).replace('"defaultMode": 420', '"defaultMode": ' + "1" * 4301)),
    ("a 4,301-digit integer, in a port", as_list([KUBECTL_POD]).replace('"containerPort": 8080', '"containerPort": ' + "8" * 4301)),
    ("a 4,301-digit integer, in a Service", as_list([KUBECTL_SERVICE, KUBECTL_POD]).replace('"port": 80', '"port": -' + "8" * 4301)),
    ("a 4,301-digit integer, not a List", json.dumps(KUBECTL_POD).replace('"defaultMode": 420', '"defaultMode": ' + "1" * 4301)),
]


@pytest.mark.parametrize("text", [text for _, text in CASES], ids=[name for name, _ in CASES])
def test_read_as_json_loads_reads_it(tmp_path: Path, text: str) -> None:
    mine, theirs = read_both(tmp_path, text)
    assert mine == theirs


def test_a_kubectl_pod_is_read_whole(tmp_path: Path) -> None:
    """What the check above compares reads: the Pod's own fields, not only its name."""
    (objects, problems), _ = read_both(tmp_path, as_list([KUBECTL_SERVICE, KUBECTL_POD]))
    pod = objects[1]
    assert problems == []
    assert (pod.name, pod.hostname, pod.subdomain, pod.node_name, pod.ips, pod.ready, pod.owners) == (
        "web-0", "web-0", "web", "node-1", ("10.244.0.5", "fd00:10:244::5"), True, (("StatefulSet", "web"),))
    assert [(p.name, p.port, p.protocol) for p in pod.ports] == [("http", 8080, "TCP"), ("", 53, "UDP")]


def test_an_integer_past_the_digit_limit_stops_nothing(tmp_path: Path) -> None:
    text = as_list([KUBECTL_SERVICE, KUBECTL_POD]).replace('"containerPort": 8080', '"containerPort": ' + "8" * 4301)
    (objects, problems), _ = read_both(tmp_path, text.replace('"defaultMode": 420', '"defaultMode": ' + "1" * 4301))
    assert [type(o).__name__ for o in objects] == ["Service"]  # the Pod is dropped for its port, no more
    assert [(p.level, p.field) for p in problems] == [("error", "spec.containers[0].ports[0].containerPort")]
    assert problems[0].message == "'" + "8" * 59 + "... (4,301 characters) is out of range 1-65535"


def test_a_pod_item_is_decoded_in_the_fields_dns_reads_only(tmp_path: Path) -> None:
    """The reading compared above is msgspec's (a List's keys; a Pod without its volumes), not json.loads's."""
    (tmp_path / "pods.json").write_text(as_list([KUBECTL_SERVICE, KUBECTL_POD]))
    read = read_documents(tmp_path, "pods.json")
    service, pod = (entry.data for entry in read.entries if isinstance(entry, Document))
    assert len(read.keys) == 3 and service == KUBECTL_SERVICE
    assert "volumes" not in pod["spec"] and "containerStatuses" not in pod["status"] and pod["spec"]["hostname"] == "web-0"


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """`value` with one field replaced, removed or added, somewhere in it."""
    odd = [None, 0, -1, 70000, 8080, 1.5, True, "", "x", "10.244.0.7", "fd00::7", "Ready", "True", "TCP", "UDP", "tcp", "http", [], {}, ["10.244.0.8"], {"ip": "10.244.0.9"}]
    if isinstance(value, dict) and value and (depth < 2 or rng.random() < 0.7):
        key = rng.choice(sorted(value))
        what = rng.randrange(4)
        out = dict(value)
        if what == 0:
            del out[key]
        elif what == 1:
            out[key] = rng.choice(odd)
        elif what == 2:
            out[rng.choice(["deletionTimestamp", "hostname", "subdomain", "podIP", "ports", "name", "type", "status"])] = rng.choice(odd)
        else:
            out[key] = mutate(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value:
        i = rng.randrange(len(value))
        return value[:i] + [mutate(rng, value[i], depth + 1)] + value[i + 1 :]
    return rng.choice(odd)


@pytest.mark.parametrize("seed", range(300))
def test_mutated_pods_read_as_json_loads_reads_them(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    pods = [copy.deepcopy(KUBECTL_POD) for _ in range(3)]
    for _ in range(rng.randrange(1, 6)):
        i = rng.randrange(len(pods))
        pods[i] = mutate(rng, pods[i])
    kind = rng.choice(["List", "PodList"])
    if kind == "PodList":
        pods = [{k: v for k, v in p.items() if k != "kind"} if isinstance(p, dict) and rng.random() < 0.5 else p for p in pods]
    mine, theirs = read_both(tmp_path, as_list([KUBECTL_SERVICE, *pods], kind=kind, indent=rng.choice([4, 2, None])))
    assert mine == theirs
