#!/usr/bin/env python3
"""The long differential campaign for the C YAML reader (`make fuzz-yaml`).

Mutated manifests (the repository's own YAML files and tests/manifests/test_yaml_stream.py's
cases, with characters inserted, cut and spliced in) through `yaml_fast._c_stream`, which must
either leave a text to the Python reading (False) or give exactly what the Python reading
gives, types included. tests/manifests/test_yaml_stream.py runs a few hundred such texts;
this runs millions on every core, and saves each text that differs to tests/fuzz_corpus/yaml/,
which the tests replay from then on. (A crash ends the run: for memory errors, build the
extension with -fsanitize=address and run this against it.)

    python bench/fuzz_yaml.py                        # 1 million texts, every core
    python bench/fuzz_yaml.py --count 100000 --seed 7
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.manifests.test_yaml_stream import FAILURES, LEFT, PLAIN, agrees  # noqa: E402

ALPHABET = "\n -:#[]{}?&*!|>'\",%@`\\\t0aé~.+=<\ufeff\x00"


def seeds() -> list[str]:
    """The texts mutated: the repository's YAML (first 4 KB of each) and the case tables."""
    files = sorted(p for p in ROOT.glob("**/*.y*ml") if ".venv" not in p.parts and ".git" not in p.parts)
    return [p.read_text(errors="replace")[:4096] for p in files] + PLAIN + LEFT


def mutate(rng: random.Random, texts: list[str]) -> str:
    text = rng.choice(texts)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.5:
            text = text[:at] + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))) + text[at:]
        elif op < 0.8:
            text = text[:at] + text[at + rng.randint(1, 5) :]
        else:
            other = rng.choice(texts)
            start = rng.randrange(len(other) + 1)
            text = text[:at] + other[start : start + rng.randint(1, 40)] + text[at:]
    return text


def campaign(count: int, seed: int) -> tuple[int, int, list[str]]:
    """(texts run, texts the C reader built, texts that differ) for `count` mutations from `seed`."""
    rng, texts = random.Random(seed), seeds()
    built, differ = 0, []
    for _ in range(count):
        text = mutate(rng, texts)
        verdict = agrees(text)
        if verdict is None:
            differ.append(text)
        built += verdict is True
    return count, built, differ


def _job(job: tuple[int, int]) -> tuple[int, int, list[str]]:
    return campaign(*job)


def save(text: str) -> Path:
    path = FAILURES / f"{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="texts to run (default 1 million)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    per = -(-args.count // args.jobs)
    print(f"fuzz-yaml: {args.count:,} texts, seed {seed}, {args.jobs} processes", flush=True)
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        results = pool.map(_job, [(per, seed + i) for i in range(args.jobs)])
    run, built, differ = sum(r[0] for r in results), sum(r[1] for r in results), [t for r in results for t in r[2]]
    for text in differ:
        print(f"  differs: {save(text)}")
    print(f"fuzz-yaml: {run:,} texts in {time.perf_counter() - started:.0f} s, {built:,} built in C, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
