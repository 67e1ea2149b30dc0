#!/usr/bin/env python3
"""The long fuzz campaign for the packet handler (`make fuzz`).

The engine and the property are tests/serve/test_fuzz.py's: mutated real queries (the seed corpus
in tests/fuzz_corpus/seeds plus every saved crash) through `Handler.respond` over UDP and
TCP from allowed and non-allowed clients, each reply checked with dnspython. CI runs
100,000 inputs; this runs millions, on every core, and saves each failing input in
tests/fuzz_corpus/crashes/, which tests/serve/test_fuzz.py replays from then on.

    python bench/fuzz.py                      # 10 million inputs, the mutator loop, all cores
    python bench/fuzz.py --count 1000000 --seed 7
    python bench/fuzz.py --engine atheris     # coverage-guided (libFuzzer), when atheris installs
    python bench/fuzz.py --write-seeds        # rebuild the seed corpus with dnspython
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.fuzz import CRASHES, PEERS, SEEDS, campaign, check, load, make_handler, save_crash, write_seeds  # noqa: E402


def _worker(job: tuple[int, int]) -> tuple[int, list[tuple[bytes, str]], float, float]:
    count, seed = job
    started = time.perf_counter()

    def progress(run: int, slowest: float) -> None:
        if run % 1_000_000 == 0:
            print(f"  seed {seed}: {run:,} inputs, {run / (time.perf_counter() - started):,.0f}/s", flush=True)

    run, failures, slowest = campaign(count, seed, stop_after=100, progress=progress)
    return run, [(f.wire, str(f)) for f in failures], slowest, time.perf_counter() - started


def mutate_campaign(count: int, seed: int, jobs: int) -> int:
    jobs = max(1, min(jobs, count))
    share = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
    print(f"fuzz: {count:,} inputs, seed {seed}, {jobs} process(es), {len(load(SEEDS))} seeds + {len(load(CRASHES))} saved crashes", flush=True)
    started = time.perf_counter()
    if jobs == 1:
        results = [_worker((count, seed))]
    else:
        with multiprocessing.Pool(jobs) as pool:
            results = pool.map(_worker, [(n, seed + i) for i, n in enumerate(share)])
    spent = time.perf_counter() - started
    total = sum(r[0] for r in results)
    failures = [f for r in results for f in r[1]]
    slowest = max(r[2] for r in results)
    for wire, text in failures:
        print(f"FAILURE saved as {save_crash(wire)}:\n{text}\n")
    print(f"fuzz: {total:,} inputs in {spent:.1f} s ({total / spent:,.0f}/s over {jobs} process(es)), "
          f"slowest input {slowest * 1000:.1f} ms, {len(failures)} failure(s)")
    return 1 if failures else 0


def atheris_campaign(count: int, seed: int, max_len: int) -> int:
    """Coverage-guided: libFuzzer mutates; the first input byte picks UDP/TCP and the client."""
    import logging

    try:
        import atheris
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install atheris (or use the default --engine mutate)", file=sys.stderr)
        return 2

    handler = make_handler()
    logging.getLogger("clusterdns").setLevel(logging.CRITICAL)
    logging.getLogger("clusterdns.query").setLevel(logging.CRITICAL)

    def one(data: bytes) -> None:
        if not data:
            return
        tcp, peer, wire = bool(data[0] & 1), PEERS[(data[0] >> 1) % len(PEERS)], data[1:]
        try:
            check(handler, wire, tcp, peer)
        except Exception:
            print(f"FAILURE ({'tcp' if tcp else 'udp'} from {peer}) saved as {save_crash(wire)}", flush=True)
            raise

    corpus = Path(tempfile.mkdtemp(prefix="clusterdns-fuzz-"))
    rng = random.Random(seed)
    for i, wire in enumerate(load(SEEDS) + load(CRASHES)):
        (corpus / f"{i:05d}").write_bytes(bytes([rng.randrange(256)]) + wire)
    print(f"fuzz (atheris): {count:,} runs, corpus {corpus}", flush=True)
    atheris.instrument_all()
    argv = [sys.argv[0], f"-runs={count}", f"-seed={seed}", f"-max_len={max_len}", "-print_final_stats=1", str(corpus)]
    try:
        atheris.Setup(argv, one)
        atheris.Fuzz()  # exits the process: libFuzzer prints "Done N runs in S second(s)"
    finally:
        shutil.rmtree(corpus, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000_000, help="inputs to run (default 10 million)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for the mutator loop (default: every core)")
    parser.add_argument("--engine", choices=("mutate", "atheris"), default="mutate", help="mutator loop, or atheris/libFuzzer")
    parser.add_argument("--max-len", type=int, default=4096, help="atheris: longest input")
    parser.add_argument("--write-seeds", action="store_true", help="rebuild tests/fuzz_corpus/seeds and stop")
    args = parser.parse_args()
    if args.write_seeds:
        for old in SEEDS.glob("*.bin"):
            old.unlink()
        print(f"wrote {write_seeds()} seeds to {SEEDS}")
        return 0
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    if args.engine == "atheris":
        return atheris_campaign(args.count, seed, args.max_len)
    return mutate_campaign(args.count, seed, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
