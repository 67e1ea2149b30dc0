"""clusterdns next to NSD and Knot in one run: dnsperf over loopback, UDP and TCP.

Each server is pinned to CPU 1 and dnsperf to CPU 0: every thread of every server process,
set after it has started, because Knot pins its UDP workers itself (worker i to CPU i, so
its one worker would share CPU 0 with dnsperf). NSD and Knot serve the
zone that `clusterdns export-zone` writes for the same generated cluster, so all three
answer the same records. Workloads: `mix` (every Service name + 10% NXDOMAIN names),
`nxdomain` (misses only) and, for clusterdns alone, `forwarded` (names outside the cluster
zone, answered by a local NSD upstream on CPU 0). Results: a markdown table and a PNG
chart under bench/results/, plus the raw JSON.

When dnsperf's core is the limit for every server (its CPU busy column near 1.0),
`--server-cpu-cap 0.5 --out bench/results/capped` holds each server to half its core, so
the q/s compare what each server itself costs per query.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN = HERE / "run"
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
import gen  # noqa: E402

PORTS = {"nsd": 15353, "knot": 25353, "clusterdns": 20053, "baseline": 20153, "upstream": 16353}  # below 32768: outside the ephemeral range dnsperf's sockets draw from
SERVER_CPU, CLIENT_CPU = "1", "0"


@dataclass
class Row:
    server: str
    transport: str
    workload: str
    qps: float
    avg_ms: float
    lost: int
    cpu_us_per_query: float
    client_busy: float = 0.0  # dnsperf's CPU time / wall time: near 1.0, the client is the limit
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio_nsd: float | None = None
    ratio_knot: float | None = None


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (NSD and --workers fork children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process tree, from /proc/PID/stat."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def dnsperf(port: int, queries: Path, secs: int, tcp: bool, extra: list[str] | None = None) -> tuple[str, float]:
    """dnsperf's output and the CPU seconds it used (taskset execs it: it is our child)."""
    cmd = ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-l", str(secs),
           "-c", "10", "-q", "100", "-t", "2", "-O", "suppress=timeouts"]
    if tcp:
        cmd += ["-m", "tcp"]
    cmd += extra or []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def parse_saturation(out: str) -> tuple[float, float, int]:
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))  # type: ignore[union-attr]
    avg = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000  # type: ignore[union-attr]
    return qps, avg, lost


def latency_percentiles(port: int, queries: Path, tcp: bool, rate: int, secs: int) -> tuple[float, float]:
    """p50/p99 at a fixed rate, from dnsperf -v's per-query lines."""
    out = dnsperf(port, queries, secs, tcp, ["-Q", str(rate), "-v"])[0]
    lat = sorted(float(m.group(1)) for m in re.finditer(r"^> \S+ \S+ \S+ ([\d.]+)$", out, re.M))
    if not lat:
        return float("nan"), float("nan")
    return lat[len(lat) // 2] * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


def tasks(pid: int) -> list[int]:
    """Every thread of a process tree."""
    out = []
    for p in process_tree(pid):
        try:
            out += [int(t) for t in os.listdir(f"/proc/{p}/task")]
        except FileNotFoundError:
            pass
    return out


def pin(pid: int, cpus: set[int]) -> None:
    """Put every thread of the server on `cpus`, whatever affinity it chose for itself."""
    for tid in tasks(pid):
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # the thread ended meanwhile
            pass


def check_pinned(pid: int, cpus: set[int], name: str) -> None:
    """Fail the run if a server thread left `cpus` (one that moved itself would share the client's core)."""
    stray = {}
    for tid in tasks(pid):
        try:
            allowed = os.sched_getaffinity(tid)
        except OSError:  # the thread ended meanwhile
            continue
        if not allowed <= cpus:
            stray[tid] = allowed
    if stray:
        raise SystemExit(f"{name}: threads {stray} are not on CPUs {sorted(cpus)}: the measurement is not one server core")


class CpuCap:
    """A cgroup holding the measured server to a fraction of its CPU (--server-cpu-cap).

    When dnsperf's core is the ceiling for every server, capping the server makes the
    server the limit again, so q/s compares the servers' own cost per query. The CFS quota
    is given per 10 ms period (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us); needs root.
    """

    PERIOD_US = 10_000

    def __init__(self, fraction: float) -> None:
        self.dir: Path | None = None
        try:
            self._make(max(1000, int(self.PERIOD_US * fraction)))
        except OSError as e:
            self.remove()
            raise SystemExit(f"--server-cpu-cap: cannot make a cgroup with a CPU quota ({e}); it needs root and a cpu "
                             "controller this process may use (on cgroup v2, enabled for the root's children)") from None

    def _make(self, quota: int) -> None:
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.exists() and "cpu" in v2.read_text().split():
            # Left enabled afterwards: it only lets child cgroups use the cpu controller.
            Path("/sys/fs/cgroup/cgroup.subtree_control").write_text("+cpu")
            self.dir = Path("/sys/fs/cgroup/clusterdns-bench")
            self.dir.mkdir(exist_ok=True)
            (self.dir / "cpu.max").write_text(f"{quota} {self.PERIOD_US}")
        elif Path("/sys/fs/cgroup/cpu").is_dir():
            self.dir = Path("/sys/fs/cgroup/cpu/clusterdns-bench")
            self.dir.mkdir(exist_ok=True)
            (self.dir / "cpu.cfs_period_us").write_text(str(self.PERIOD_US))
            (self.dir / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            raise OSError("no cgroup cpu controller (v2 or v1)")

    def add(self, pid: int) -> None:
        assert self.dir is not None
        for p in process_tree(pid):
            (self.dir / "cgroup.procs").write_text(str(p))  # the whole process, every thread

    def remove(self) -> None:
        """Delete the cgroup once the servers in it have exited (up to 10 s)."""
        if self.dir is None or not self.dir.exists():
            return
        end = time.monotonic() + 10
        while (self.dir / "cgroup.procs").read_text().strip() and time.monotonic() < end:
            time.sleep(0.1)
        try:
            self.dir.rmdir()
        except OSError as e:
            print(f"warning: could not remove {self.dir}: {e}", file=sys.stderr)


class Servers:
    """Start/stop NSD, Knot, the upstream and clusterdns; each pinned to one CPU."""

    def __init__(self, zone_file: Path, manifests: Path, cap: CpuCap | None = None, baseline: Path | None = None,
                 baseline_args: tuple[str, ...] = ()) -> None:
        self.zone_file, self.manifests = zone_file, manifests
        self.baseline = baseline  # another checkout of clusterdns, measured as "baseline" (--baseline)
        self.baseline_args = baseline_args  # extra serve flags for it (--baseline-args)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.cpus: dict[str, set[int]] = {}  # where each server's threads must stay
        self.cap = cap  # for the measured servers, not the upstream

    def start(self, name: str, workers: int = 1) -> int:
        if name == "nsd":
            cmd = self._nsd("nsd", PORTS["nsd"], "cluster.local", self.zone_file, workers)
        elif name == "upstream":
            cmd = self._nsd("upstream", PORTS["upstream"], "example.test", RUN / "example.test.zone", 1)
        elif name == "knot":
            cmd = self._knot(workers)
        else:  # clusterdns, or the baseline checkout's clusterdns (first on its PYTHONPATH)
            cmd = [str(ROOT / ".venv/bin/python"), "-m", "clusterdns", "serve", "--manifests", str(self.manifests),
                   "--listen", f"127.0.0.1:{PORTS[name]}", "--upstream", f"127.0.0.1:{PORTS['upstream']}",
                   "--quiet", "--watch", "off", "--workers", str(workers), *(self.baseline_args if name == "baseline" else ())]
        env = {**os.environ, "PYTHONPATH": str(self.baseline)} if name == "baseline" and self.baseline else None
        cpus = "0,1" if workers > 1 else SERVER_CPU if name != "upstream" else CLIENT_CPU
        self.cpus[name] = {int(c) for c in cpus.split(",")}
        proc = subprocess.Popen(["taskset", "-c", cpus, *cmd], stdout=subprocess.DEVNULL, stderr=open(RUN / f"{name}.log", "ab"),
                                start_new_session=True, env=env, cwd=self.baseline if env else None)
        self.procs[name] = proc
        wait_port(PORTS[name if name in PORTS else "clusterdns"])
        time.sleep(0.5)
        pin(proc.pid, self.cpus[name])
        if self.cap is not None and name != "upstream":
            self.cap.add(proc.pid)
        return proc.pid

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    @staticmethod
    def _nsd(name: str, port: int, zone: str, zone_file: Path, workers: int) -> list[str]:
        # Debian's NSD rate-limits responses by default (rrl-ratelimit 200 per source):
        # switched off, or it drops most of a loopback benchmark.
        conf = RUN / f"{name}.conf"
        conf.write_text(f"""server:
    ip-address: 127.0.0.1
    port: {port}
    server-count: {workers}
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "{RUN}"
    database: ""
    pidfile: "{RUN}/{name}.pid"
    xfrdfile: "{RUN}/{name}-xfrd.state"
    zonelistfile: "{RUN}/{name}-zone.list"
    logfile: "{RUN}/{name}.log"
    verbosity: 0
    hide-version: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{zone_file}"
""")
        return ["nsd", "-d", "-c", str(conf)]

    def _knot(self, workers: int) -> list[str]:
        (RUN / "knot").mkdir(exist_ok=True)
        conf = RUN / "knot.conf"
        conf.write_text(f"""server:
    rundir: "{RUN}/knot"
    listen: 127.0.0.1@{PORTS['knot']}
    udp-workers: {workers}
    tcp-workers: {workers}
    background-workers: 1
log:
  - target: "{RUN}/knot.log"
    any: warning
database:
    storage: "{RUN}/knot"
template:
  - id: default
    storage: "{RUN}"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: cluster.local
    file: "{self.zone_file}"
""")
        return ["knotd", "-c", str(conf)]


def prepare(services: int) -> tuple[Path, Path, dict[str, Path]]:
    shutil.rmtree(RUN, ignore_errors=True)
    RUN.mkdir(parents=True)
    manifests = RUN / "cluster"
    names = gen.generate(manifests, services, 0, 100, 1)
    queries = {"mix": RUN / "mix.txt", "nxdomain": RUN / "nxdomain.txt", "forwarded": RUN / "forwarded.txt"}
    gen.query_file(queries["mix"], names, 0.1)
    queries["nxdomain"].write_text("".join(f"missing{i}.default.svc.cluster.local A\n" for i in range(1000)))
    queries["forwarded"].write_text("".join(f"host{i}.example.test A\n" for i in range(1000)))
    (RUN / "example.test.zone").write_text(
        "$ORIGIN example.test.\n@ 300 IN SOA ns.example.test. admin.example.test. 1 7200 1800 86400 300\n@ 300 IN NS ns.example.test.\n"
        "ns 300 IN A 127.0.0.1\n" + "".join(f"host{i} 300 IN A 192.0.2.{i % 250 + 1}\n" for i in range(1000)))
    zone_file = RUN / "cluster.local.zone"
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "clusterdns", "export-zone", "--manifests", str(manifests),
                    "--ns-address", "127.0.0.1", "-o", str(zone_file)], check=True, stderr=subprocess.DEVNULL)
    return manifests, zone_file, queries


def measure(servers: Servers, name: str, queries: dict[str, Path], secs: int, latency_secs: int, workers: int, rate: int) -> list[Row]:
    rows = []
    pid = servers.start(name, workers)
    port = PORTS[name]
    workloads = ["mix", "nxdomain"] + (["forwarded"] if name in ("clusterdns", "baseline") else [])
    try:
        for transport in ("udp", "tcp"):
            tcp = transport == "tcp"
            for workload in workloads:
                dnsperf(port, queries[workload], 2, tcp)  # warm-up (fills answer caches)
                before = cpu_seconds(pid)
                out, client = dnsperf(port, queries[workload], secs, tcp)
                qps, avg, lost = parse_saturation(out)
                used = cpu_seconds(pid) - before
                p50 = p99 = None
                if workload == "mix":
                    p50, p99 = latency_percentiles(port, queries[workload], tcp, rate, latency_secs)
                check_pinned(pid, servers.cpus[name], name)
                label = name if workers == 1 else f"{name} ({workers} workers)"
                rows.append(Row(label, transport, workload, qps, avg, lost, used / max(qps * secs, 1) * 1e6, client / secs, p50, p99))
                print(f"  {label:28} {transport} {workload:9} {qps:9.0f} q/s  lost {lost}  dnsperf busy {client / secs:.2f}  "
                      f"p99@{rate} {f'{p99:.3f} ms' if p99 is not None else '-'}", flush=True)
    finally:
        servers.stop(name)
    return rows


def add_ratios(rows: list[Row]) -> None:
    """Each row's q/s over NSD's and Knot's for the same transport and workload, in one round."""
    for reference, field in (("nsd", "ratio_nsd"), ("knot", "ratio_knot")):
        base = {(r.transport, r.workload): r.qps for r in rows if r.server == reference}
        for r in rows:
            b = base.get((r.transport, r.workload))
            setattr(r, field, r.qps / b if b else None)


def medians(rounds: list[list[Row]]) -> list[Row]:
    """One row per (server, transport, workload): the median of each figure over the rounds
    (ratios are taken within a round first: the VM drifts between rounds)."""
    out = []
    for first in rounds[0]:
        same = [r for rows in rounds for r in rows if (r.server, r.transport, r.workload) == (first.server, first.transport, first.workload)]

        def med(field: str) -> float | None:
            values = [getattr(r, field) for r in same if getattr(r, field) is not None]
            return statistics.median(values) if values else None

        out.append(Row(first.server, first.transport, first.workload, med("qps"), med("avg_ms"), max(r.lost for r in same),  # type: ignore[arg-type]
                       med("cpu_us_per_query"), med("client_busy"), med("p50_ms"), med("p99_ms"), med("ratio_nsd"), med("ratio_knot")))  # type: ignore[arg-type]
    return out


def per_round(rounds: list[list[Row]], figure: str, mine: tuple[str, str], other: tuple[str, str]) -> dict[str, float]:
    """Per transport, the median over rounds of `figure` for (server, workload) `mine` over
    `other`, each ratio taken within one round (the VM drifts between rounds)."""
    out = {}
    for transport in ("udp", "tcp"):
        ratios = []
        for rows in rounds:
            found = {(r.server, r.workload): getattr(r, figure) for r in rows if r.transport == transport}
            a, b = found.get(mine), found.get(other)
            if a and b:
                ratios.append(a / b)
        if ratios:
            out[transport] = statistics.median(ratios)
    return out


def summary(rounds: list[list[Row]]) -> str:
    """The ratios issue 16 asks of every run: server CPU per forwarded cache hit over per
    in-zone answer, and, with --baseline, this checkout's q/s over the baseline's."""
    lines = []
    for server in ("clusterdns", "baseline"):
        for transport, ratio in per_round(rounds, "cpu_us_per_query", (server, "forwarded"), (server, "mix")).items():
            lines.append(f"{server} server CPU per forwarded cache hit / per in-zone answer, {transport}: {ratio:.2f}")
    for workload in ("mix", "nxdomain", "forwarded"):
        for transport, ratio in per_round(rounds, "qps", ("clusterdns", workload), ("baseline", workload)).items():
            lines.append(f"clusterdns/baseline q/s {transport} {workload}: {ratio:.2f}")
    return "\n".join(lines) + "\n" if lines else ""


def table(rows: list[Row], rate: int) -> str:
    head = (f"| server | transport | workload | q/s | ratio to NSD | ratio to Knot | avg ms (saturated) | lost | server CPU µs/query "
            f"| dnsperf CPU busy | p50 ms @{rate // 1000}k q/s | p99 ms @{rate // 1000}k q/s |")
    lines = [head, "|" + "---|" * 12]

    def num(v: float | None, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    for r in rows:
        lines.append(f"| {r.server} | {r.transport} | {r.workload} | {r.qps:,.0f} | {num(r.ratio_nsd, '.2f')} | {num(r.ratio_knot, '.2f')} "
                     f"| {r.avg_ms:.3f} | {r.lost} | {r.cpu_us_per_query:.1f} | {r.client_busy:.2f} | {num(r.p50_ms, '.3f')} | {num(r.p99_ms, '.3f')} |")
    return "\n".join(lines) + "\n"


def chart(rows: list[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no chart")
        return
    keys = [(r.transport, r.workload) for r in rows if r.server == "nsd"]
    servers = list(dict.fromkeys(r.server for r in rows))
    fig, ax = plt.subplots(figsize=(10, 5))
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        values = [next((r.qps / 1000 for r in rows if r.server == server and (r.transport, r.workload) == k), 0) for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=server)
    ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(keys))], [f"{t}\n{w}" for t, w in keys])
    ax.set_ylabel("thousand queries per second")
    ax.set_title("clusterdns vs NSD vs Knot, one server core, dnsperf on the other")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    global RUN
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--secs", type=int, default=10, help="seconds per saturation run")
    p.add_argument("--latency-secs", type=int, default=5)
    p.add_argument("--rate", type=int, default=20000, help="fixed rate for the latency runs")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="repeat everything; the table shows medians")
    p.add_argument("--servers", default="nsd,knot,clusterdns")
    p.add_argument("--out", type=Path, default=RESULTS, help="where the table, JSON and chart go")
    p.add_argument("--run-dir", type=Path, default=RUN, help="scratch space: cluster, zone files, configs, logs")
    p.add_argument("--server-cpu-cap", type=float, default=None, metavar="FRACTION",
                   help="hold each measured server to this fraction of its CPU (cgroup CFS quota; root)")
    p.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                   help="also measure the clusterdns of another checkout (a git worktree, its extension built) as 'baseline'")
    p.add_argument("--baseline-args", default="", metavar="FLAGS",
                   help="extra serve flags for the baseline (e.g. --baseline . --baseline-args='--loadbalance none': one setting's cost)")
    args = p.parse_args()
    RUN = args.run_dir.resolve()
    manifests, zone_file, queries = prepare(args.services)
    cap = CpuCap(args.server_cpu_cap) if args.server_cpu_cap else None
    servers = Servers(zone_file, manifests, cap, args.baseline.resolve() if args.baseline else None, tuple(args.baseline_args.split()))
    names = args.servers.split(",") + (["baseline"] if args.baseline else [])
    rounds: list[list[Row]] = []
    try:
        servers.start("upstream")
        for n in range(args.rounds):
            rows: list[Row] = []
            for name in names:
                print(f"round {n + 1}/{args.rounds}, {name}:", flush=True)
                rows += measure(servers, name, queries, args.secs, args.latency_secs, 1, args.rate)
            if args.workers > 1:
                rows += measure(servers, "clusterdns", queries, args.secs, args.latency_secs, args.workers, args.rate)
            add_ratios(rows)
            rounds.append(rows)
    finally:
        servers.stop_all()
        if cap is not None:
            cap.remove()
    rows = medians(rounds)
    results = args.out
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d")
    text = table(rows, args.rate) + "\n" + summary(rounds)
    header = (f"# clusterdns benchmark {stamp}\n\n{args.services} Services; dnsperf -c 10 -q 100, {args.secs} s per run; "
              f"servers on CPU {SERVER_CPU}{f' (capped at {args.server_cpu_cap:.0%} of it)' if cap else ''}, dnsperf on CPU {CLIENT_CPU}; "
              f"median of {args.rounds} round(s).\n\n")
    (results / "latest.md").write_text(header + text)
    (results / "latest.json").write_text(json.dumps({"medians": [asdict(r) for r in rows],
                                                    "rounds": [[asdict(r) for r in rs] for rs in rounds]}, indent=1))
    chart(rows, results / "latest.png")
    print()
    print(text)
    for r in rows:
        if r.server == "clusterdns" and r.ratio_nsd:
            print(f"clusterdns/NSD {r.transport} {r.workload}: {r.ratio_nsd:.2f}" + (f", /Knot {r.ratio_knot:.2f}" if r.ratio_knot else ""))


if __name__ == "__main__":
    main()
