"""A short smoke run of `make bench`'s script: every server answers dnsperf, rows are written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

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
