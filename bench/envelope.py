"""`bench/scale.py --envelope`: the Kubernetes scalability envelope in three layouts, beside issue 16's targets.

10,000 Services and 150,000 Pods (15 per Service), 10 namespaces, 100 Services per file,
served with `--pod-cidr 10.128.0.0/9` (room for every Pod, clear of the default
--service-cidr 10.96.0.0/12). Layouts:

- deploy:    Services + Deployments (bench/gen.py): the Pods are derived;
- pods-yaml: Services + every Pod as a YAML manifest (scale.py's `pods` layout);
- pods-json: every object as `kubectl get services,pods -A -o json` writes it: one `kind: List`
             per file, 4-space indents, the fields kubectl prints (managedFields left out, as
             kubectl does by default), clusterIP and podIP written.

For each: load s (process start to the first answer), RSS MB after the load (VmRSS, with the
peak VmHWM beside it), one-file edit ms (a Service's port changed in part k, k = 0..19, to the
SRV answer showing it; median and max of the edits; the watcher's 50 ms debounce included),
RSS after the edits; then, beside the targets, edits that add a line (a second port on part k's
first Service, k = 20..24: every later document or List item moves); for pods-yaml also how long PyYAML's C loader (CSafeLoader) alone takes
to parse the same files, and for pods-json json.loads alone and clusterdns's own JSON reading alone
(msgspec, one core: the floor under that load), in the same run.

    .venv/bin/python bench/scale.py --envelope                 # or: make scale-envelope
    .venv/bin/python bench/scale.py --envelope --services 1000 --edits 5 --layouts deploy
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.rdatatype
import gen  # bench/gen.py (scale.py puts bench/ on sys.path)
import scale
import yaml

SERVICES, REPLICAS, NAMESPACES, PER_FILE = 10_000, 15, 10, 100
POD_CIDR = "10.128.0.0/9"
LAYOUTS = ("deploy", "pods-yaml", "pods-json")
EDITS = 20
LINE_EDITS = 5  # then edits that add a line, moving what follows in the file (not part of the targets)
# Issue 16's targets: load; RSS (CoreDNS's (Pods + Services) / 1000 + 54 MB); edit; RSS after the edits / after the load.
LOAD_S, PARSER_RATIO, RSS_MB, EDIT_MS, GROWTH = 2.0, 1.5, 214.0, 150.0, 1.10
SERVICE_IPS = int(ipaddress.ip_address("10.96.4.0"))  # explicit clusterIPs of the JSON layout, inside 10.96.0.0/12


def _json_template(obj: dict) -> str:
    """`obj` as kubectl prints a List item (4-space indents, 8 deep), as a str.format template:
    "@key@" in a string becomes {key}."""
    text = json.dumps(obj, indent=4).replace("{", "{{").replace("}", "}}")
    text = re.sub(r"@(\w+)@", r"{\1}", text)
    return "\n".join("        " + line for line in text.splitlines())


KUBECTL_SERVICE = _json_template({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"creationTimestamp": "2024-05-01T10:00:00Z", "name": "@name@", "namespace": "@ns@", "resourceVersion": "@rv@", "uid": "@uid@"},
    "spec": {"clusterIP": "@ip@", "clusterIPs": ["@ip@"], "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], "selector": {"app": "@app@"},
             "sessionAffinity": "None", "type": "ClusterIP"},
    "status": {"loadBalancer": {}},
})
_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
KUBECTL_POD = _json_template({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"creationTimestamp": "2024-05-01T10:00:00Z", "generateName": "@rs@-", "labels": {"app": "@app@", "pod-template-hash": "@hash@"},
                 "name": "@name@", "namespace": "@ns@",
                 "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True, "kind": "ReplicaSet", "name": "@rs@", "uid": "@rsuid@"}],
                 "resourceVersion": "@rv@", "uid": "@uid@"},
    "spec": {
        "containers": [{"image": "nginx", "imagePullPolicy": "Always", "name": "app", "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "volumeMounts": [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": "@vol@", "readOnly": True}]}],
        "dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "nodeName": "@node@", "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
        "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {}, "serviceAccount": "default", "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [{"effect": "NoExecute", "key": f"node.kubernetes.io/{t}", "operator": "Exists", "tolerationSeconds": 300} for t in ("not-ready", "unreachable")],
        "volumes": [{"name": "@vol@", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]}}],
    },
    "status": {
        "conditions": [{"lastProbeTime": None, "lastTransitionTime": "2024-05-01T10:00:05Z", "status": "True", "type": c} for c in _CONDITIONS],
        "containerStatuses": [{"containerID": "containerd://@cid@", "image": "docker.io/library/nginx:latest", "imageID": "docker.io/library/nginx@sha256:@cid@",
                               "lastState": {}, "name": "app", "ready": True, "restartCount": 0, "started": True,
                               "state": {"running": {"startedAt": "2024-05-01T10:00:04Z"}}}],
        "hostIP": "@host@", "hostIPs": [{"ip": "@host@"}], "phase": "Running", "podIP": "@ip@", "podIPs": [{"ip": "@ip@"}], "qosClass": "BestEffort",
        "startTime": "2024-05-01T10:00:00Z",
    },
})
LIST_HEAD = '{\n    "apiVersion": "v1",\n    "items": [\n'
LIST_TAIL = '\n    ],\n    "kind": "List",\n    "metadata": {\n        "resourceVersion": ""\n    }\n}\n'


def _pod_ip(n: int) -> str:
    return f"10.{244 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"  # as scale.generate_pods writes them


def generate_json(out: Path, services: int, replicas: int, per_file: int, namespaces: int) -> None:
    """The pods-json layout: part00000.json, ...: Lists of `per_file` Services, each followed by its Pods."""
    out.mkdir(parents=True, exist_ok=True)
    items: list[str] = []
    for i in range(services):
        ns, app = f"ns{i % namespaces}", f"app{i}"
        h = f"{((i + 1) * 2654435761) & 0xFFFFFFFFFF:010x}"  # the pod-template-hash
        items.append(KUBECTL_SERVICE.format(name=f"svc{i}", ns=ns, rv=1000 + i, uid=f"5e{i:030x}", ip=ipaddress.ip_address(SERVICE_IPS + i), app=app))
        for r in range(replicas):
            n = i * replicas + r + 1
            items.append(KUBECTL_POD.format(
                rs=f"{app}-{h}", app=app, hash=h, name=f"{app}-{h}-{r:05x}", ns=ns, rsuid=f"{i:032x}", rv=200000 + n, uid=f"{n:032x}",
                vol=f"kube-api-access-{n % 99991:05x}", node=f"node-{n % 5000}", cid=f"{n:064x}", host=f"172.16.{(n % 5000) >> 8}.{n % 256}", ip=_pod_ip(n)))
        if (i + 1) % per_file == 0 or i + 1 == services:
            (out / f"part{i // per_file:05d}.json").write_text(LIST_HEAD + ",\n".join(items) + LIST_TAIL)
            items = []


def generate(layout: str, out: Path, services: int) -> None:
    if layout == "deploy":
        gen.generate(out, services, REPLICAS, PER_FILE, NAMESPACES)
    elif layout == "pods-yaml":
        scale.generate_pods(out, services, REPLICAS, PER_FILE, NAMESPACES)
    else:
        generate_json(out, services, REPLICAS, PER_FILE, NAMESPACES)


def parse_alone(directory: Path, layout: str) -> float | None:
    """Seconds PyYAML's C loader (pods-yaml) or json.loads (pods-json) alone takes for the files, in this process."""
    if layout == "deploy":
        return None
    paths = sorted(directory.glob("part*"))
    gc.collect()
    started = time.perf_counter()
    for path in paths:
        text = path.read_text()
        if layout == "pods-yaml":
            for _ in yaml.load_all(text, Loader=yaml.CSafeLoader):
                pass
        else:
            json.loads(text)
    return time.perf_counter() - started


# clusterdns's own JSON reading (manifests/json_items.py json_file: msgspec splits a List and decodes
# only the fields DNS reads of each Pod), on one core in the `src` checkout: the floor under the
# pods-json load, which then still makes the objects, derives and builds the snapshot.
_READ_ALONE = """
import pathlib, sys, time
from clusterdns.manifests.json_items import json_file
paths = sorted(pathlib.Path(sys.argv[1]).glob("part*"))
started = time.perf_counter()
for path in paths:
    json_file(path.name, path.read_bytes(), ())
print(time.perf_counter() - started)
"""


def read_alone(directory: Path, src: Path) -> float | None:
    """Seconds clusterdns's JSON reading alone takes for the files, on one core (None before src had it)."""
    done = subprocess.run([sys.executable, "-c", _READ_ALONE, str(directory)], cwd=src, capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def _edit(path: Path, to: int) -> None:
    """The first Service port in the file (the file's first Service's) set to `to`."""
    text = path.read_text()
    if path.suffix == ".json":
        new = re.sub(r'"port": \d+,', f'"port": {to},', text, count=1)
    else:
        new = re.sub(r"\n    port: \d+\n", f"\n    port: {to}\n", text, count=1)
    assert new != text, path
    path.write_text(new)


def _add_port(path: Path, to: int) -> None:
    """A second port, `extra` `to`, on the file's first Service: a line or two more, which moves
    every document (or List item) after it."""
    text = path.read_text()
    if path.suffix == ".json":
        found = re.search(r'\n( *)"ports": \[\n', text)
        assert found, path
        entry = f'{found.group(1)}    {{"name": "extra", "port": {to}, "protocol": "TCP", "targetPort": {to}}},\n'
        new = text[: found.end()] + entry + text[found.end() :]
    else:
        new = re.sub(r"\n  ports:\n", f"\n  ports:\n  - name: extra\n    port: {to}\n", text, count=1)
    assert new != text, path
    path.write_text(new)


def measure(directory: Path, extra: list[str], src: Path, edits: int, load_only: bool = False) -> dict[str, float]:
    """One fresh server: load s, RSS after the load, edit ms (median, max), RSS after `edits` edits
    (`load_only`: the load s alone)."""
    port = scale.free_port()
    cmd = [sys.executable, "-m", "clusterdns", "serve", "--manifests", str(directory), "--listen", f"127.0.0.1:{port}", "--upstream", "none",
           "--quiet", "--pod-cidr", POD_CIDR, *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    files = sorted(directory.glob("part*"))
    originals = {f: f.read_bytes() for f in files[: edits + LINE_EDITS]}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            reply = scale.query(scale.PROBE, dns.rdatatype.A, port, timeout=0.005)
            if reply is not None and reply.answer:
                break
            if time.perf_counter() - started > scale.LOAD_TIMEOUT:
                raise RuntimeError("no answer before the load timeout")
            time.sleep(0.005)
        load = time.perf_counter() - started
        if load_only:
            return {"load": load}
        time.sleep(1.0)  # the watcher's first poke after start-up
        row = {"load": load, "rss": rss_mb(proc.pid), "peak": rss_mb(proc.pid, "VmHWM")}
        latencies = [_timed_edit(files, k, port, _edit, 81, "http") for k in range(min(edits, len(files)))]
        time.sleep(1.0)
        row |= {"edit": statistics.median(latencies), "edit_max": max(latencies), "rss_edits": rss_mb(proc.pid), "edits": len(latencies)}
        # Then edits that add lines, to other files.
        added = [_timed_edit(files, k, port, _add_port, 9000, "extra") for k in range(min(edits, len(files)), min(edits + LINE_EDITS, len(files)))]
        row["line_edit"] = statistics.median(added) if added else float("nan")
        return row
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for f, data in originals.items():
            f.write_bytes(data)


def _timed_edit(files: list[Path], k: int, port: int, edit: Callable[..., None], to: int, port_name: str) -> float:
    """ms from `edit` of part k (its first Service's port `port_name` set to, or added as, `to`)
    to the SRV answer that shows it."""
    svc = k * PER_FILE  # the first Service of part k
    name = f"_{port_name}._tcp.svc{svc}.ns{svc % NAMESPACES}.svc.cluster.local"
    edit(files[k], to)
    edited = time.perf_counter()
    while _srv_port(name, port) != to:
        if time.perf_counter() - edited > scale.RELOAD_TIMEOUT:
            raise RuntimeError(f"edit of {files[k].name}: the change did not show before the reload timeout")
        time.sleep(0.002)
    return (time.perf_counter() - edited) * 1000


def _srv_port(name: str, port: int) -> int | None:
    reply = scale.query(name, dns.rdatatype.SRV, port)
    for rrset in reply.answer if reply is not None else ():
        for rr in rrset:
            if rr.rdtype == dns.rdatatype.SRV:
                return int(rr.port)
    return None


def _mark(ok: bool) -> str:
    return "ok" if ok else "**over**"


def table(rows: list[dict]) -> str:
    lines = [
        f"| layout | files (MB) | load s (target) | parser alone s | RSS MB after load (≤ {RSS_MB:.0f}) | peak MB | edit ms median / max (≤ {EDIT_MS:.0f}) "
        f"| RSS MB after edits (≤ {GROWTH:.0%} of load) | a line added: edit ms median | load average |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        # Where PyYAML's C loader alone needs longer than LOAD_S, at most PARSER_RATIO times that (pods-yaml only).
        limit = max(LOAD_S, PARSER_RATIO * r["parser"]) if r["layout"] == "pods-yaml" else LOAD_S
        target = f"≤ {LOAD_S:.0f}" if limit == LOAD_S else f"≤ {PARSER_RATIO}× parser = {limit:.2f}"
        parser = "" if r["parser"] is None else f"{r['parser']:.2f}" + (" (json.loads)" if r["layout"] == "pods-json" else " (CSafeLoader)")
        if r.get("read") is not None:
            parser += f"; {r['read']:.2f} (clusterdns's reading, msgspec)"
        growth = r["rss_edits"] / r["rss"]
        lines.append(
            f"| {r['layout']} | {r['files']} ({r['mb']:.0f}) | {r['load']:.2f} ({target}: {_mark(r['load'] <= limit)}) | {parser} "
            f"| {r['rss']:.0f} ({_mark(r['rss'] <= RSS_MB)}) | {r['peak']:.0f} | {r['edit']:.0f} / {r['edit_max']:.0f} ({_mark(r['edit'] <= EDIT_MS)}) "
            f"| {r['rss_edits']:.0f} after {r['edits']} = {growth:.0%} ({_mark(growth <= GROWTH)}) | {r['line_edit']:.0f} | {r['loadavg']:.2f} |"
        )
    return "\n".join(lines)


def run(services: int, layouts: list[str], edits: int, workdir: Path, src: Path, output: Path, repeat: int = 3) -> None:
    """Each layout: one server measured in full, and `repeat` - 1 more for the load alone (the load
    shown is the median of `repeat`: one start on this shared VM moves by 10-25%)."""
    extra = scale.extra_flags(src)
    rows = []
    for layout in layouts:
        directory = workdir / f"envelope-{layout}-{services}"
        if not directory.exists():
            generate(layout, directory, services)
        files = sorted(directory.glob("part*"))
        parser = parse_alone(directory, layout)
        row = {"layout": layout, "files": len(files), "mb": sum(f.stat().st_size for f in files) / 1e6, "parser": parser}
        row["read"] = read_alone(directory, src) if layout == "pods-json" else None
        row["loadavg"] = os.getloadavg()[0]  # other work on the machine (at or above the core count, serve reads on one core)
        row |= measure(directory, extra, src, edits)
        row["loads"] = [row["load"]] + [measure(directory, extra, src, edits, load_only=True)["load"] for _ in range(repeat - 1)]
        row["load"] = statistics.median(row["loads"])
        rows.append(row)
        print(f"{layout:9}: load {row['load']:.2f} s (median of {', '.join(f'{x:.2f}' for x in row['loads'])})" + (f" (parser alone {parser:.2f} s)" if parser is not None else "")
              + (f" (clusterdns's reading alone {row['read']:.2f} s)" if row["read"] is not None else "")
              + f", RSS {row['rss']:.0f} MB (peak {row['peak']:.0f}), edit {row['edit']:.0f} ms median / {row['edit_max']:.0f} max, "
              f"RSS after {row['edits']} edits {row['rss_edits']:.0f} MB, a line added {row['line_edit']:.0f} ms; load average {row['loadavg']:.2f}", flush=True)
    text = table(rows)
    print()
    print(text)
    header = (
        f"# clusterdns at the Kubernetes envelope\n\n`bench/scale.py --envelope` on {os.cpu_count()} cores: {services:,} Services, "
        f"{services * REPLICAS:,} Pods ({REPLICAS} per Service), {NAMESPACES} namespaces, {PER_FILE} Services per file, "
        f"`--pod-cidr {POD_CIDR}`. Targets (issue 16): load ≤ {LOAD_S:.0f} s (pods-yaml: ≤ {PARSER_RATIO}× PyYAML's C loader alone on the same files), "
        f"RSS ≤ {RSS_MB:.0f} MB, a one-file edit answered within {EDIT_MS:.0f} ms, RSS after {edits} edits ≤ {GROWTH:.0%} of the first load. "
        "Load average: the machine's 1-minute figure as the server started (at or above the core count, the first load reads on one core).\n\n"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    loads = "".join(f"\n- {r['layout']}: loads {', '.join(f'{x:.2f}' for x in r['loads'])} s" for r in rows)
    output.write_text(header + text + "\n\nEach load is the median of fresh servers' (the first also measured the edits):\n" + loads + "\n")
    print(f"\nwritten to {output}")
