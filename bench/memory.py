"""Where the memory of a loaded cluster goes: `tracemalloc` over one load, as `serve` keeps it.

Loads DIR the way `serve` does at start-up (Pipeline.refresh: the store's per-file objects,
derive's memo, the snapshot), files read in this process (the forked readers would hide where
objects are made), and prints what is still allocated afterwards: the top lines by file and by
line, each with its size, count, and bytes per Pod and per Service.

    .venv/bin/python bench/memory.py /tmp/envelope-deploy-10000 --pod-cidr 10.128.0.0/9
    .venv/bin/python bench/gen.py /tmp/c --services 10000 --replicas 15 --namespaces 10 && .venv/bin/python bench/memory.py /tmp/c
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import linecache
import re
import time
import tracemalloc
from pathlib import Path

from clusterdns.config.settings import Config
from clusterdns.objects import read
from clusterdns.pipeline import Pipeline

ROOT = str(Path(__file__).resolve().parent.parent) + "/"


def _rss_mb() -> float:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def _where(frame: tracemalloc.Frame | str) -> str:
    """file:line and, for a line, its code ("<string>": a generated __init__, named by its caller)."""
    if isinstance(frame, str):
        return re.sub(r"^.*/lib/python3\.\d+/", "", frame.replace(ROOT, ""))
    code = linecache.getline(frame.filename, frame.lineno).strip()
    return f"{_where(frame.filename)}:{frame.lineno}" + (f"  {code[:90]}" if code else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", type=Path)
    p.add_argument("--pod-cidr", default="10.128.0.0/9", help="room for every Pod (default: 10.128.0.0/9)")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    read._parallel_workers = lambda root, rels: 1  # type: ignore[assignment]  # attribute objects to the lines that make them
    config = dataclasses.replace(Config(), manifests=str(args.directory), pod_cidr=(args.pod_cidr,))
    before = _rss_mb()
    tracemalloc.start(2)  # a generated __init__ ("<string>") is shown with its caller
    started = time.perf_counter()
    pipeline = Pipeline(config.manifests, config)
    snap = pipeline.refresh(full=True).snapshot
    seconds = time.perf_counter() - started
    gc.collect()
    trace = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    state = snap.state
    pods, services = max(len(state.pods), 1), max(len(state.services), 1)
    print(f"{args.directory}: {len(state.services)} services, {len(state.pods)} pods, {snap.names()} names; load {seconds:.1f} s under tracemalloc")
    print(f"traced after load {current / 2**20:.0f} MB (peak {peak / 2**20:.0f} MB); RSS {before:.0f} -> {_rss_mb():.0f} MB "
          f"(tracemalloc's own bookkeeping included); per Pod {current / pods:.0f} B, per Service {current / services:.0f} B of all")
    for group in ("filename", "lineno"):
        stats = trace.statistics(group)
        total = sum(s.size for s in stats)
        print(f"\ntop {args.top} by {'file' if group == 'filename' else 'line'} ({total / 2**20:.0f} MB in all):")
        print(f"{'MB':>7} {'%':>5} {'blocks':>9} {'B/Pod':>7} {'B/Svc':>7}  where")
        for s in stats[: args.top]:
            frame = s.traceback[0]
            where = _where(frame) if group == "lineno" else _where(frame.filename)
            if group == "lineno" and frame.filename == "<string>":
                # A Traceback runs from the oldest frame to the most recent: [-2] is the caller.
                callers = [t for t in trace.statistics("traceback") if t.traceback[-1] == frame and len(t.traceback) > 1]
                where += " from " + ", ".join(f"{_where(t.traceback[-2])} ({t.size / 2**20:.1f} MB)" for t in callers[:2])
            print(f"{s.size / 2**20:7.1f} {100 * s.size / total:5.1f} {s.count:9d} {s.size / pods:7.0f} {s.size / services:7.0f}  {where}")
    del pipeline, snap


if __name__ == "__main__":
    main()
