"""A short smoke run of `make bench`'s script: every server answers dnsperf, rows are written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.process import ROOT

NEEDED = ("dnsperf", "nsd", "taskset")


@pytest.mark.skipif(any(shutil.which(t) is None for t in NEEDED), reason="dnsperf/nsd not installed (make tools)")
def test_bench_smoke(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--services", "50", "--secs", "1", "--latency-secs", "1",
         "--rate", "2000", "--rounds", "2", "--servers", "nsd,clusterdns", "--out", str(tmp_path / "results"), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert len(saved["rounds"]) == 2
    ours = {(r["transport"], r["workload"]): r for r in saved["medians"] if r["server"] == "clusterdns"}
    assert set(ours) == {(t, w) for t in ("udp", "tcp") for w in ("mix", "nxdomain", "forwarded")}
    # Issue 16: every run prints the forwarded-hit to in-zone CPU ratio, per round's median.
    assert "clusterdns server CPU per forwarded cache hit / per in-zone answer, udp: " in proc.stdout, proc.stdout[-2000:]
    assert all(r["qps"] > 100 and r["lost"] == 0 for r in ours.values()), ours
    assert ours[("udp", "mix")]["ratio_nsd"] is not None and ours[("udp", "mix")]["ratio_knot"] is None  # no Knot in this run
    assert 0 < ours[("udp", "mix")]["client_busy"] <= 1.5
    assert "| clusterdns | udp | mix |" in (tmp_path / "results" / "latest.md").read_text()


def test_scale_smoke(tmp_path) -> None:
    """bench/scale.py (the README's load/memory/reload table) on 100 Services, both layouts."""
    out = tmp_path / "scale.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--sizes", "100", "--repeat", "1", "--output", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith(("| deploy", "| pods"))]
    assert [r[1].strip() for r in rows] == ["deploy", "pods"]
    for r in rows:
        load, rss, reload_ms = float(r[5]), float(r[6]), float(r[7])
        assert 0 < load < 30 and 10 < rss < 300 and 0 < reload_ms < 10_000, r
    assert len(list((tmp_path / "work").rglob("part*.yaml"))) == 2  # 100 Services per file, one file per layout


def _bench_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_script", ROOT / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_script"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


SELF_PINNING = """
import os, threading, time
pinned = threading.Event()
def worker():
    os.sched_setaffinity(0, {0})  # as Knot's UDP workers do: worker i to CPU i
    pinned.set()
    time.sleep(60)
threading.Thread(target=worker, daemon=True).start()
pinned.wait()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None, reason="needs 2 CPUs and taskset")
def test_bench_pins_threads_that_moved_themselves() -> None:
    bench = _bench_module()
    proc = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", SELF_PINNING], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"  # the thread has set its own affinity
        with pytest.raises(SystemExit, match="not on CPUs"):
            bench.check_pinned(proc.pid, {1}, "self-pinning server")
        bench.pin(proc.pid, {1})
        bench.check_pinned(proc.pid, {1}, "self-pinning server")
        assert all(os.sched_getaffinity(t) == {1} for t in bench.tasks(proc.pid))
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]


@pytest.mark.skipif(any(shutil.which(t) is None for t in NEEDED), reason="dnsperf/nsd not installed (make tools)")
def test_bench_with_the_server_held_to_half_a_core(tmp_path) -> None:
    try:
        _bench_module().CpuCap(0.5).remove()
    except SystemExit as e:
        pytest.skip(f"no CPU-quota cgroup here: {e}")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--services", "50", "--secs", "1", "--latency-secs", "1", "--rate", "2000",
         "--servers", "clusterdns", "--server-cpu-cap", "0.5", "--out", str(tmp_path / "results"), "--run-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    saved = json.loads((tmp_path / "results" / "latest.json").read_text())
    ours = {(r["transport"], r["workload"]): r for r in saved["medians"]}
    assert ours[("udp", "mix")]["qps"] > 100 and ours[("udp", "mix")]["lost"] == 0
    # The cap holds: the server used at most about half of each second it was measured.
    assert ours[("udp", "mix")]["cpu_us_per_query"] * ours[("udp", "mix")]["qps"] / 1e6 < 0.65
    assert "capped at 50% of it" in (tmp_path / "results" / "latest.md").read_text()
    assert not any(Path(d, "clusterdns-bench").exists() for d in ("/sys/fs/cgroup", "/sys/fs/cgroup/cpu")), "the cgroup is removed afterwards"


def test_scale_smoke_with_workers(tmp_path) -> None:
    """bench/scale.py --workers 2: the reload figure waits until both processes answer the change."""
    out = tmp_path / "scale.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--sizes", "100", "--repeat", "1", "--layouts", "deploy", "--workers", "2",
         "--output", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    assert "with --workers 2" in text
    row = next(line.split("|") for line in text.splitlines() if line.startswith("| deploy"))
    assert 0 < float(row[5]) < 30 and 0 < float(row[7]) < 10_000, row


def test_scale_envelope_smoke(tmp_path) -> None:
    """bench/scale.py --envelope (issue 16) at 300 Services (3 files): the three layouts, each row beside its targets,
    with the edits that add a line."""
    out = tmp_path / "envelope.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--envelope", "--services", "300", "--edits", "1", "--output", str(out),
         "--workdir", str(tmp_path / "work"), "--repeat", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| deploy") or line.startswith("| pods-")]
    assert [r[1].strip() for r in rows] == ["deploy", "pods-yaml", "pods-json"]
    for r in rows:
        assert 0 < float(r[3].split()[0]) < 30 and 10 < float(r[5].split()[0]) < 300 and 0 < float(r[7].split()[0]) < 10_000, r
        assert 0 < float(r[9]) < 10_000, r  # the edits that add a line (parts 1 and 2)
    assert "(CSafeLoader)" in rows[1][4] and "(json.loads)" in rows[2][4]
    read = rows[2][4].split("; ")[1].strip()  # clusterdns's own JSON reading alone, beside json.loads
    assert read.endswith(" (clusterdns's reading, msgspec)") and 0 < float(read.split()[0]) < 30, rows[2][4]
    assert "4,500 Pods" in out.read_text() and (tmp_path / "work" / "envelope-pods-json-300" / "part00000.json").exists()
    loads = [line for line in out.read_text().splitlines() if line.startswith("- deploy: loads ")]
    assert len(loads) == 1 and len(loads[0].split(": loads ")[1].split(", ")) == 2, loads  # --repeat 2: the median of two starts


def test_fuzz_yaml_smoke() -> None:
    """bench/fuzz_yaml.py (make fuzz-yaml) at 2,000 texts: every one agrees, and some are built in C."""
    sys.path.insert(0, str(ROOT / "bench"))
    import fuzz_yaml

    from clusterdns.manifests import yaml_fast

    run, built, differ = fuzz_yaml.campaign(2000, 20261207)
    assert run == 2000 and differ == []
    assert built > 100 or yaml_fast._yamlstream is None
