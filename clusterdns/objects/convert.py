"""A manifest document into its slim object: the converter for each (group, kind)."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from typing import Any

from clusterdns.errors import Problem, shown
from clusterdns.manifests.documents import Document
from clusterdns.model import Source
from clusterdns.objects import pods, services
from clusterdns.objects.fields import DNS1123_LABEL, DNS1123_SUBDOMAIN, Reader, Reading, api_group, metadata
from clusterdns.objects.kinds import KubeObject, Namespace, Node, ObjectRef


def object_ref(doc: Document) -> ObjectRef | None:
    """The namespace reference of any namespaced document (None when it names no namespace)."""
    meta = doc.data.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    if not isinstance(namespace, str) or not DNS1123_LABEL.fullmatch(namespace):
        return None
    return ObjectRef(str(doc.data.get("kind", "")), namespace, str(meta.get("name", "")), Source(doc.file, doc.doc, doc.line))  # type: ignore[union-attr]


def _namespace(r: Reader, data: dict[str, Any]) -> Namespace:
    _, name, _ = metadata(r, data, False, DNS1123_LABEL, "namespace name (DNS-1123 label)")
    return Namespace(name, r.source)


def _node(r: Reader, data: dict[str, Any]) -> Node:
    _, name, _ = metadata(r, data, False, DNS1123_SUBDOMAIN, "node name (DNS-1123 subdomain)")
    return Node(name, r.source)


_APPS_GROUPS = ("apps", "extensions")  # extensions/v1beta1 served workloads before apps/v1


_CONVERTERS: dict[tuple[str, str], Callable[[Reader, dict[str, Any]], KubeObject | None]] = {
    ("", "Namespace"): _namespace,
    ("", "Node"): _node,
    ("", "Service"): services.service,
    ("", "Endpoints"): services.endpoints,
    ("", "Pod"): pods.pod,
    ("discovery.k8s.io", "EndpointSlice"): services.endpoint_slice,
    **{(g, "Deployment"): pods.deployment for g in _APPS_GROUPS},
    **{(g, "ReplicaSet"): pods.replica_set for g in _APPS_GROUPS},
    **{(g, "StatefulSet"): pods.stateful_set for g in _APPS_GROUPS},
    **{(g, "DaemonSet"): pods.daemon_set for g in _APPS_GROUPS},
}


_DEFAULT_GROUP = {kind: group for group, kind in _CONVERTERS if group != "extensions"}

# The versions the API server has served each kind in (apps/v1beta1 and v1beta2 and
# extensions/v1beta1 until 1.16, discovery.k8s.io/v1beta1 until 1.25; the register.go of each
# k8s.io/api group version): kubectl refuses another ("no matches for kind ... in version ...").
# Such an object is read as the version served now, with a warning.
_SERVED: dict[tuple[str, str], tuple[str, ...]] = {
    **{("", kind): ("v1",) for kind in ("Namespace", "Node", "Service", "Endpoints", "Pod")},
    ("discovery.k8s.io", "EndpointSlice"): ("v1", "v1beta1", "v1alpha1"),
    ("apps", "Deployment"): ("v1", "v1beta2", "v1beta1"),
    ("apps", "StatefulSet"): ("v1", "v1beta2", "v1beta1"),
    ("apps", "ReplicaSet"): ("v1", "v1beta2"),
    ("apps", "DaemonSet"): ("v1", "v1beta2"),
    **{("extensions", kind): ("v1beta1",) for kind in ("Deployment", "ReplicaSet", "DaemonSet")},
}


def _never_served(r: Reader, api_version: Any, group: str, kind: str) -> None:
    """A warning when `api_version` is a version Kubernetes never served `kind` in."""
    if not isinstance(api_version, str) or api_version.rpartition("/")[2] in _SERVED.get((group, kind), ()):
        return
    r.warn("apiVersion", f"{shown(api_version)}: Kubernetes never served {kind} in that version; read as {_served_in(kind)}")


def _served_in(kind: str) -> str:
    """The apiVersion that serves one of our kinds now: v1, apps/v1, discovery.k8s.io/v1."""
    return f"{_DEFAULT_GROUP[kind]}/v1" if _DEFAULT_GROUP[kind] else "v1"


# The kinds each built-in group we read serves besides ours (k8s.io/api register.go): skipped
# quietly. Another kind in these groups is one kubectl refuses; when it is one of ours misspelled
# (`kind: service`, `Servce`), the warning names it instead of the document vanishing.
_OTHER_KINDS = {
    "": {"Binding", "ComponentStatus", "ConfigMap", "Event", "LimitRange", "PersistentVolume", "PersistentVolumeClaim", "PodTemplate",
         "ReplicationController", "ResourceQuota", "Secret", "ServiceAccount", "Eviction", "Scale", "Status"},
    "apps": {"ControllerRevision", "Scale"},
    "extensions": {"Ingress", "NetworkPolicy", "PodSecurityPolicy", "Scale"},
    "discovery.k8s.io": set(),
}
_OUR_KINDS = sorted({kind for _, kind in _CONVERTERS})


@functools.lru_cache(maxsize=256)
def _misspelled(group: str, kind: str, versioned: bool) -> str | None:
    """The kind of ours `kind` is a misspelling of (or is, in another group), in a built-in group;
    None otherwise. A typed list (`DeploymentList` whose items are no list) is none; without an
    apiVersion the group is a guess, so only a kind of ours in other letter case counts
    (`APIService` is not a misspelled Service)."""
    if group not in _OTHER_KINDS or kind in _OTHER_KINDS[group] or kind.endswith("List"):
        return None
    same = [ours for ours in _OUR_KINDS if ours.lower() == kind.lower()]
    close = same or (difflib.get_close_matches(kind, _OUR_KINDS, n=1, cutoff=0.8) if versioned else [])
    return close[0] if close else None


def from_manifest(doc: Document, problems: list[Problem] | None = None, reading: Reading | None = None) -> KubeObject | None:
    """The slim object for a manifest document; None for kinds DNS does not read.

    Raises ManifestError (file, document, line, kind, name, field) when a field DNS needs
    is missing or invalid. Warnings about usable-but-odd objects go to `problems`.
    """
    kind = doc.data.get("kind")
    if not isinstance(kind, str) or not kind:
        # A manifest (it has apiVersion or metadata) without a kind is a mistake kubectl refuses
        # ("kind not set"); other YAML beside the manifests (a compose file) is skipped quietly.
        if problems is not None and ("apiVersion" in doc.data or "metadata" in doc.data):
            problems.append(Problem("warning", "no kind (a string): the document is skipped", file=doc.file, doc=doc.doc, line=doc.line, field="kind"))
        return None
    group = api_group(doc.data.get("apiVersion"))
    if group is None:  # apiVersion missing: assume the kind's usual group
        group = _DEFAULT_GROUP.get(kind, "")
    converter = _CONVERTERS.get((group, kind))
    if converter is None:  # another kind, or a CRD that reuses a name (Knative's Service)
        meant = _misspelled(group, kind, "apiVersion" in doc.data)
        if meant is not None and problems is not None:
            # One of ours in another group (apiVersion v1 on a Deployment), or misspelled in its own.
            hint = f"it is served in apiVersion {_served_in(meant)}" if meant == kind else f"did you mean {meant}?"
            problems.append(Problem("warning", f"{shown(kind)} is no kind of the {group or 'core'} API (kubectl refuses it: no matches for kind);"
                                    f" {hint} The document is skipped", file=doc.file, doc=doc.doc, line=doc.line, field="kind"))
        return None
    r = Reader(doc, kind, problems, reading or Reading())
    obj = converter(r, doc.data)
    if obj is not None:  # (an ignored one, an FQDN EndpointSlice, has said so)
        _never_served(r, doc.data.get("apiVersion"), group, kind)
    return obj
