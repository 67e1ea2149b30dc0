"""Scale check for issue 4: load time, peak RSS and reload latency of `clusterdns serve`.

For each size (Services; 5 replicas each, so 5x as many Pods) this generates a cluster
with bench/gen.py, starts the real CLI in a fresh process, and measures:

- load s:    from spawning `python -m clusterdns serve` to the first answer for
             svc0.ns0.svc.cluster.local (dnspython UDP queries every ~10 ms);
- RSS MB:    the server's peak resident set (VmHWM in /proc/PID/status) after the load
             and one reload;
- reload ms: from rewriting one part file (svc0's port 80 -> 81) to the SRV answer for
             _http._tcp.svc0.ns0.svc.cluster.local showing port 81 (the watcher's
             50 ms debounce included).

Each size runs `--repeat` times (fresh server each time); the table shows medians. Two
layouts: `deploy` (Services + Deployments: the Pods are derived, as bench/gen.py writes
them) and `pods` (Services + every Pod written out as a manifest, with labels and a
status.podIP). Linear growth shows as a flat per-1k-Services column.

    .venv/bin/python bench/scale.py                      # 1k, 2.5k, 5k, 10k; both layouts
    .venv/bin/python bench/scale.py --sizes 1000 --repeat 1 --layouts deploy
    .venv/bin/python bench/scale.py --src /tmp/other-checkout   # the same runs for another tree
    .venv/bin/python bench/scale.py --envelope           # 10k Services + 150k Pods, three layouts (bench/envelope.py)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import gen  # noqa: E402  (bench/gen.py: the same generator as the throughput bench)

from clusterdns.manifests.watch import DEBOUNCE  # noqa: E402
from clusterdns.serve.sockets import bind_pair  # noqa: E402

REPLICAS = 5
PER_FILE = 100
NAMESPACES = 10
PROBE = "svc0.ns0.svc.cluster.local"
SRV_PROBE = "_http._tcp.svc0.ns0.svc.cluster.local"
LOAD_TIMEOUT = 120.0
RELOAD_TIMEOUT = 30.0
DEBOUNCE_MS = round(DEBOUNCE * 1000)  # the watcher's quiet time before a reload starts

POD = """apiVersion: v1
kind: Pod
metadata:
  name: app{i}-{r}
  namespace: {ns}
  labels:
    app: app{i}
spec:
  containers:
  - name: app
    image: nginx
    ports:
    - containerPort: 8080
status:
  phase: Running
  podIP: {ip}
"""


def generate_pods(out: Path, services: int, replicas: int, per_file: int, namespaces: int) -> None:
    """The `pods` layout: gen.SERVICE documents, each followed by its Pods as manifests."""
    groups = []
    for i in range(services):
        ns = f"ns{i % namespaces}"
        group = [gen.SERVICE.format(i=i, ns=ns)]
        for r in range(replicas):
            n = i * replicas + r + 1  # 10.244.0.1, ... (inside the default --pod-cidr 10.244.0.0/16 up to 65534 Pods)
            ip = f"10.{244 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
            group.append(POD.format(i=i, r=r, ns=ns, ip=ip))
        groups.append(group)
    gen.write_parts(out, groups, per_file)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the server binds both)."""
    udp, tcp = bind_pair("127.0.0.1", 0)
    port: int = udp.getsockname()[1]
    udp.close()
    tcp.close()
    return port


def extra_flags(src: Path) -> list[str]:
    """Turn off the HTTP endpoints where `serve` has them: their fixed ports would clash between runs."""
    usage = subprocess.run([sys.executable, "-m", "clusterdns", "serve", "--help"], cwd=src, capture_output=True, text=True).stdout
    return [arg for flag in ("--health", "--ready", "--metrics") if flag in usage for arg in (flag, "none")]


def query(name: str, rdtype: int, port: int, timeout: float = 0.2) -> dns.message.Message | None:
    try:
        return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=timeout)
    except (dns.exception.Timeout, dns.query.BadResponse, OSError):
        # BadResponse: a late reply to an earlier probe whose ephemeral port a new socket reused.
        return None


def srv_port(port: int) -> int | None:
    reply = query(SRV_PROBE, dns.rdatatype.SRV, port)
    if reply is None:
        return None
    for rrset in reply.answer:
        for rr in rrset:
            if rr.rdtype == dns.rdatatype.SRV:
                return int(rr.port)
    return None


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def every_process_shows(port: int, want: int, workers: int) -> bool:
    """One query sees SRV port `want`; with --workers, 8 per worker in a row, each from a new
    source port (each process reloads on its own, and SO_REUSEPORT spreads the queries)."""
    return all(srv_port(port) == want for _ in range(1 if workers == 1 else 8 * workers))


def measure(directory: Path, extra: list[str], src: Path, workers: int = 1) -> dict[str, float]:
    """One fresh server on `directory`: load s, peak RSS MB (first process), reload ms
    (until every process answers the change). Rewrites part00000.yaml."""
    port = free_port()
    cmd = [sys.executable, "-m", "clusterdns", "serve", "--manifests", str(directory), "--listen", f"127.0.0.1:{port}", "--upstream", "none", "--quiet"]
    cmd += extra + (["--workers", str(workers)] if workers > 1 else [])
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}): {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            # Until the server binds (after its first load) a query waits out its timeout:
            # keep it short, so the time is known to within ~10 ms.
            reply = query(PROBE, dns.rdatatype.A, port, timeout=0.005)
            if reply is not None and reply.answer:
                break
            if time.perf_counter() - started > LOAD_TIMEOUT:
                raise RuntimeError("no answer before the load timeout")
            time.sleep(0.005)
        load = time.perf_counter() - started
        rss_load = peak_rss_mb(proc.pid)
        assert srv_port(port) == 80, "svc0's SRV answer should show port 80 before the change"
        time.sleep(1.0)  # let the watcher settle (its first poke after start-up)
        part = directory / "part00000.yaml"
        text = part.read_text()
        changed = text.replace("    port: 80\n", "    port: 81\n", 1)  # svc0 is the first document
        started = time.perf_counter()
        part.write_text(changed)
        while not every_process_shows(port, 81, workers):
            if time.perf_counter() - started > RELOAD_TIMEOUT:
                raise RuntimeError("the change did not show before the reload timeout")
            time.sleep(0.005)
        reload_ms = (time.perf_counter() - started) * 1000
        part.write_text(text)  # back as generated, for the next run
        return {"load": load, "rss": max(rss_load, peak_rss_mb(proc.pid)), "rss_load": rss_load, "reload": reload_ms}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(sizes: list[int], layouts: list[str], repeat: int, workdir: Path, src: Path = ROOT, workers: int = 1) -> list[dict[str, float | int | str]]:
    rows: list[dict[str, float | int | str]] = []
    extra = extra_flags(src)
    for layout in layouts:
        for services in sizes:
            directory = workdir / f"{layout}-{services}"
            if directory.exists():
                shutil.rmtree(directory)
            if layout == "deploy":
                gen.generate(directory, services, REPLICAS, PER_FILE, NAMESPACES)
            else:
                generate_pods(directory, services, REPLICAS, PER_FILE, NAMESPACES)
            runs = []
            for _ in range(repeat):
                runs.append(measure(directory, extra, src, workers))
                time.sleep(0.5)
            row = {"layout": layout, "services": services, "pods": services * REPLICAS,
                   "files": len(list(directory.glob("*.yaml"))), "mb": sum(f.stat().st_size for f in directory.glob("*.yaml")) / 1e6}
            for key in ("load", "rss", "reload"):
                row[key] = statistics.median(r[key] for r in runs)
            row["all"] = "; ".join(f"{r['load']:.2f}s {r['rss']:.0f}MB {r['reload']:.0f}ms" for r in runs)
            rows.append(row)
            print(f"{layout:6} {services:>6} services {services * REPLICAS:>6} pods: load {row['load']:.2f} s, "
                  f"RSS {row['rss']:.0f} MB, reload {row['reload']:.0f} ms   ({row['all']})", flush=True)
    return rows


def table(rows: list[dict[str, float | int | str]]) -> str:
    lines = [
        "| layout | services | pods | files (MB) | load s | RSS MB | reload ms | load s per 1k svc | RSS MB per 1k svc (marginal) | reload ms - debounce, per 1k svc |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    previous: dict[str, dict[str, float | int | str]] = {}
    for row in rows:
        k = float(row["services"]) / 1000
        prev = previous.get(str(row["layout"]))
        marginal = "" if prev is None else f"{(float(row['rss']) - float(prev['rss'])) / (k - float(prev['services']) / 1000):.1f}"
        lines.append(
            f"| {row['layout']} | {row['services']} | {row['pods']} | {row['files']} ({float(row['mb']):.1f}) | {float(row['load']):.2f} "
            f"| {float(row['rss']):.0f} | {float(row['reload']):.0f} | {float(row['load']) / k:.3f} | {marginal} | {(float(row['reload']) - DEBOUNCE_MS) / k:.0f} |"
        )
        previous[str(row["layout"])] = row
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500, 5000, 10000], help="Service counts")
    p.add_argument("--layouts", nargs="+", choices=["deploy", "pods"], default=["deploy", "pods"])
    p.add_argument("--repeat", type=int, default=3, help="fresh servers per size, or per --envelope layout (the median load is shown)")
    p.add_argument("--workdir", type=Path, help="where to generate the clusters (default: a temporary directory)")
    p.add_argument("--output", type=Path, help="the table (default: bench/results/scale.md, with --envelope envelope.md)")
    p.add_argument("--src", type=Path, default=ROOT, help="run `python -m clusterdns` from this directory (before/after comparisons)")
    p.add_argument("--workers", type=int, default=1, help="serve with --workers N; reload ms then waits for every process")
    envelope = p.add_argument_group("--envelope", "the Kubernetes envelope in three layouts, beside issue 16's targets (bench/envelope.py)")
    envelope.add_argument("--envelope", action="store_true", help="10,000 Services + 150,000 Pods: deploy, pods-yaml, pods-json")
    envelope.add_argument("--services", type=int, default=10_000, help="Services (15 Pods each)")
    envelope.add_argument("--edits", type=int, default=20, help="one-file edits, each to another file")
    envelope.add_argument("--envelope-layouts", nargs="+", choices=["deploy", "pods-yaml", "pods-json"], default=["deploy", "pods-yaml", "pods-json"])
    args = p.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="clusterdns-scale-"))
    if args.envelope:
        import envelope  # bench/envelope.py

        try:
            envelope.run(args.services, args.envelope_layouts, args.edits, workdir, args.src, args.output or HERE / "results" / "envelope.md", args.repeat)
        finally:
            if args.workdir is None:
                shutil.rmtree(workdir, ignore_errors=True)
        return
    args.output = args.output or HERE / "results" / "scale.md"
    try:
        rows = run(args.sizes, args.layouts, args.repeat, workdir, args.src, args.workers)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    text = table(rows)
    print()
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# clusterdns scale: load, memory, reload\n\n`bench/scale.py` on {os.cpu_count()} cores, median of {args.repeat} fresh servers"
        f"{f' with --workers {args.workers} (RSS: the first process)' if args.workers > 1 else ''}; "
        f"{REPLICAS} Pods per Service, {PER_FILE} Services per file, {NAMESPACES} namespaces. Issue 4 asks for 10,000 Services + "
        "50,000 Pods in under 2 s and 300 MB, a one-file change visible in under 300 ms, and linear growth.\n\n"
        "- load s: process start to the first answer; RSS MB: peak (VmHWM) after load and one reload; "
        "reload ms: file rewritten to the new SRV port answered (includes the watcher's 50 ms debounce).\n"
        "- `deploy`: Services + Deployments (Pods derived); `pods`: Services + every Pod written out.\n\n"
    )
    args.output.write_text(header + text + "\n\nRuns (load, RSS, reload):\n\n" + "\n".join(f"- {r['layout']} {r['services']}: {r['all']}" for r in rows) + "\n")
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
