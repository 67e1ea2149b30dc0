"""objects/convert.py (from_manifest) and objects/kinds.py: documents in, validated slim objects out."""

from __future__ import annotations

import pytest

from clusterdns.errors import ManifestError, Problem
from clusterdns.manifests.documents import Document
from clusterdns.objects import kinds as k8s
from clusterdns.objects.convert import from_manifest


def documents(entries: list[Document | Problem]) -> list[Document]:
    return [e for e in entries if isinstance(e, Document)]


def convert(data: dict, file: str = "m.yaml", line: int = 1) -> object:
    return from_manifest(Document(file, "0", line, data))


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
    assert len(problem.message) < 200  # a long value is quoted cut short
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


TEMPLATE = {"metadata": {"labels": {"app": "s"}}}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        # A StatefulSet's Pods take <name>-<ordinal> as their hostname, a DNS-1123 label.
        ({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "dotted.sts"}, "spec": {"template": TEMPLATE}}, "metadata.name"),
        # An endpoint port's name is a DNS-1123 label (discovery validatePorts): the SRV label _<name>.
        ({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "x"}},
          "addressType": "IPv4", "ports": [{"name": "Weird.Name", "port": 80}], "endpoints": []}, "ports[0].name"),
        ({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "x"},
          "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"name": "a.b", "port": 80}]}]}, "subsets[0].ports[0].name"),
    ],
    ids=["statefulset-dotted-name", "slice-port-name", "endpoints-port-name"],
)
def test_names_that_would_make_invalid_dns_labels_are_errors(data: dict, field: str) -> None:
    with pytest.raises(ManifestError) as info:
        convert(data)
    assert info.value.problem.field == field


def test_a_dotted_deployment_name_is_still_a_subdomain() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web.v2"}, "spec": {"template": TEMPLATE}}
    assert isinstance(convert(deployment), k8s.Deployment)


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


def test_endpoint_addresses_the_api_server_refuses_are_left_out_with_a_warning() -> None:
    """ValidateEndpointIP refuses the unspecified, loopback, link-local and link-local multicast
    ranges, and an EndpointSlice's addresses must be of its addressType's family."""
    problems: list[Problem] = []
    data = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "x"}},
            "addressType": "IPv4", "endpoints": [{"addresses": [a]} for a in ("fd00::1", "127.0.0.1", "0.0.0.0", "169.254.1.1", "224.0.0.1", "10.1.0.5")]}
    slice_ = from_manifest(Document("m.yaml", "0", 1, data), problems)
    assert isinstance(slice_, k8s.EndpointSlice) and [a.ip for a in slice_.endpoints] == ["10.1.0.5"]
    assert [p.field for p in problems] == [f"endpoints[{i}].addresses[0]" for i in range(5)] and all("left out" in p.message for p in problems)
    problems.clear()
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "x"},
                 "subsets": [{"addresses": [{"ip": "::1"}, {"ip": "10.2.0.1"}], "ports": [{"port": 80}]}]}
    found = from_manifest(Document("m.yaml", "0", 1, endpoints), problems)
    assert isinstance(found, k8s.Endpoints) and [a.ip for a in found.subsets[0].addresses] == ["10.2.0.1"]
    assert [p.field for p in problems] == ["subsets[0].addresses[0].ip"]


def test_a_manifest_without_a_kind_is_a_warning_other_yaml_is_skipped_quietly() -> None:
    problems: list[Problem] = []
    typo = {"apiVersion": "v1", "knd": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    assert from_manifest(Document("m.yaml", "2", 9, typo), problems) is None
    assert [(p.level, p.field, p.file, p.doc, p.line) for p in problems] == [("warning", "kind", "m.yaml", "2", 9)]
    problems.clear()
    compose = {"services": {"dns": {"image": "clusterdns"}}}  # a docker-compose.yml beside the manifests
    assert from_manifest(Document("docker-compose.yml", "0", 1, compose), problems) is None and problems == []


@pytest.mark.parametrize(
    "api_version, kind, warned",
    [
        ("v2", "Service", "'v2': Kubernetes never served Service in that version; read as v1"),
        ("apps/v2", "Deployment", "'apps/v2': Kubernetes never served Deployment in that version; read as apps/v1"),
        ("extensions/v1", "Deployment", "'extensions/v1': Kubernetes never served Deployment in that version; read as apps/v1"),
        ("apps/v1beta1", "DaemonSet", "'apps/v1beta1': Kubernetes never served DaemonSet in that version; read as apps/v1"),  # apps/v1beta1/register.go
        ("apps/v1beta1", "ReplicaSet", "'apps/v1beta1': Kubernetes never served ReplicaSet in that version; read as apps/v1"),
        ("extensions/v1beta1", "StatefulSet", "'extensions/v1beta1': Kubernetes never served StatefulSet in that version; read as apps/v1"),
        ("discovery.k8s.io/v2", "EndpointSlice", "'discovery.k8s.io/v2': Kubernetes never served EndpointSlice in that version; read as discovery.k8s.io/v1"),
        ("v1", "Service", None),
        ("apps/v1beta1", "StatefulSet", None),
        ("apps/v1beta2", "DaemonSet", None),
        ("extensions/v1beta1", "Deployment", None),
        ("discovery.k8s.io/v1beta1", "EndpointSlice", None),
        ("discovery.k8s.io/v1alpha1", "EndpointSlice", None),
    ],
)
def test_an_api_version_kubernetes_never_served_is_a_warning(api_version: str, kind: str, warned: str | None) -> None:
    """kubectl refuses it ("no matches for kind Service in version v2"): the object is read as the served version, with a warning."""
    workload = {"spec": {"selector": {"matchLabels": {"app": "s"}}, "template": TEMPLATE}}
    bodies = {
        "Service": {"spec": {"ports": [{"port": 80}]}},
        "Deployment": workload, "DaemonSet": workload, "ReplicaSet": workload,
        "StatefulSet": {"spec": {**workload["spec"], "serviceName": "web"}},
        "EndpointSlice": {"addressType": "IPv4", "endpoints": [], "metadata": {"name": "s", "labels": {"kubernetes.io/service-name": "web"}}},
    }
    data = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "web"}, **bodies[kind]}
    problems: list[Problem] = []
    assert from_manifest(Document("m.yaml", "0", 3, data), problems) is not None
    assert [(p.field, p.message) for p in problems] == ([("apiVersion", warned)] if warned else [])


def test_ip_families_that_disagree_with_the_cluster_ips_are_an_error() -> None:
    """ValidateServiceClusterIPsRelatedFields: ipFamilies[i] is the family of clusterIPs[i]."""
    spec = {"clusterIP": "10.96.0.12", "ipFamilies": ["IPv6"], "ports": [{"port": 80}]}
    with pytest.raises(ManifestError) as info:
        convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec})
    assert info.value.problem.field == "spec.ipFamilies[0]"
    both = {"clusterIPs": ["fd00::12", "10.96.0.12"], "ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]}
    assert isinstance(convert({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": both}), k8s.Service)


@pytest.mark.parametrize(("target", "read", "message"), [
    ("000080", 80, ""),  # a quoted number with leading zeros is still the number (as before a review)
    ("123456", None, "'123456' is out of range 1-65535"),  # the number written, not a stand-in
    ("9" * 4400, None, "'" + "9" * 59 + "... (4,400 characters) is out of range 1-65535"),  # found by make fuzz-manifests: int() raised
])
def test_a_quoted_target_port_is_its_number(target: str, read: int | None, message: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"ports": [{"port": 80, "targetPort": target}]}}
    if read is not None:
        assert convert(doc, "svc.yaml", 7).ports[0].target_port == read
        return
    with pytest.raises(ManifestError) as info:
        convert(doc, "svc.yaml", 7)
    assert info.value.problem.message == message


# (apiVersion, kind, the kind meant or None: skipped quietly). kubectl refuses a kind its group
# does not serve ("no matches for kind"); one of ours misspelled is named, other kinds are not.
MISSPELLED = [
    ("v1", "service", "Service"),
    ("v1", "Servce", "Service"),
    (None, "Pods", None),  # no apiVersion: not even a close spelling (kubectl wants the apiVersion first)
    ("apps/v1", "deployment", "Deployment"),
    ("apps/v1", "Statefulset", "StatefulSet"),
    ("discovery.k8s.io/v1", "EndpointSlices", "EndpointSlice"),
    ("v1", "ConfigMap", None),  # a real kind of the core group
    ("v1", "ServiceAccount", None),
    ("apps/v1", "ControllerRevision", None),
    ("serving.knative.dev/v1", "Service", None),  # a CRD's own kind
    ("example.com/v1", "service", None),
    ("v1", "Widget", None),  # nothing of ours it could be
    ("apps/v1", "DeploymentList", None),  # a typed list whose items are no list
    ("v1", "EndpointsList", None),
    (None, "APIService", None),  # no apiVersion: the group is a guess, only another letter case counts
    (None, "service", "Service"),
    ("v1", "Deployment", "apiVersion apps/v1"),  # one of ours in another group: where it is served
    ("discovery.k8s.io/v1", "Endpoints", "apiVersion v1"),
]


@pytest.mark.parametrize(("api_version", "kind", "meant"), MISSPELLED)
def test_a_misspelled_kind_is_a_warning_that_names_the_kind_meant(api_version: str | None, kind: str, meant: str | None) -> None:
    data = {"kind": kind, "metadata": {"name": "x"}} | ({"apiVersion": api_version} if api_version else {})
    problems: list[Problem] = []
    assert from_manifest(Document("m.yaml", "0", 3, data), problems) is None
    if meant is None:
        assert problems == []
    else:
        (p,) = problems
        assert (p.level, p.field, p.line) == ("warning", "kind", 3)
        hint = f"it is served in {meant}" if meant.startswith("apiVersion ") else f"did you mean {meant}?"
        assert p.message.startswith(f"'{kind}' is no kind of the ") and f"; {hint} The document is skipped" in p.message, p.message
