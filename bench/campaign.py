"""What the manifest fuzz campaigns share (`make fuzz-yaml`, `make fuzz-manifests`): a seeded
campaign run in chunks on every core, and each text that fails saved where the tests replay it.

Chunk k of a campaign is made from (seed, k) alone, so a seed gives the same texts on any
number of processes. Each process writes the text it is reading to a scratch file first: a
process that dies (a crash in C) ends the run with the texts then being read saved; a chunk
that raises, with the text it raised on.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

CHUNK = 10_000  # texts per chunk

# (texts to run, seed, chunk index, the scratch file each text is written to first) ->
# (texts run, texts counted, e.g. built in C, texts that failed)
ChunkRun = Callable[[int, int, int, Path], tuple[int, int, list[str]]]


def parse_args(description: str, default_count: int) -> tuple[int, int, int]:
    """(texts, seed, processes) from the command line; the seed from the clock when not given."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--count", type=int, default=default_count, help=f"texts to run (default {default_count:,})")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    args = parser.parse_args()
    if args.count < 1 or args.jobs < 1:
        parser.error("--count and --jobs must be at least 1")
    return args.count, args.seed if args.seed is not None else int(time.time()), args.jobs


def save(folder: Path, text: str, suffix: str) -> Path:
    """The text, saved under its hash (lone surrogates kept, as the readers saw them)."""
    data = text.encode("utf-8", "surrogatepass")
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class ChunkRaised(Exception):
    """A chunk raised: the text it was reading, and what it raised."""


def _chunk(job: tuple[ChunkRun, int, int, int, str, str]) -> tuple[int, int, list[str]]:
    run, count, seed, chunk, scratch, suffix = job
    reading = Path(scratch) / f"{os.getpid()}{suffix}"
    try:
        result = run(count, seed, chunk, reading)
    except Exception as e:  # noqa: BLE001 - the text, not the other processes' (they finish theirs)
        raise ChunkRaised(reading.read_text(encoding="utf-8", errors="surrogatepass"), repr(e)) from None
    reading.unlink(missing_ok=True)  # done: only the texts of a process that died stay
    return result


def run_campaign(name: str, run: ChunkRun, count: int, seed: int, jobs: int, folder: Path, suffix: str) -> tuple[int, int, list[str], float] | None:
    """(texts run, texts counted, texts that failed, seconds) of every chunk of the campaign, each
    failure saved to `folder` and printed. None when a process died or a chunk raised (the
    texts being read then are saved and printed instead)."""
    print(f"{name}: {count:,} texts, seed {seed}, {jobs} processes", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        chunks = [(run, min(CHUNK, count - start), seed, k, scratch, suffix) for k, start in enumerate(range(0, count, CHUNK))]
        try:
            with ProcessPoolExecutor(jobs) as pool:
                results = list(pool.map(_chunk, chunks))
        except ChunkRaised as e:
            print(f"  a chunk raised {e.args[1]} reading: {save(folder, e.args[0], suffix)}")
            return None
        except BrokenProcessPool:  # a process died: one of the texts still being read did it
            for text in sorted(Path(scratch).glob(f"*{suffix}")):
                print(f"  a process died reading: {save(folder, text.read_text(encoding='utf-8', errors='surrogatepass'), suffix)}")
            return None
    failed = [text for r in results for text in r[2]]
    for text in failed:
        print(f"  failed: {save(folder, text, suffix)}")
    return sum(r[0] for r in results), sum(r[1] for r in results), failed, time.perf_counter() - started


def main(name: str, doc: str, run: ChunkRun, default_count: int, folder: Path, suffix: str, counted: str, failed: str) -> int:
    """A campaign's command: its options, its run, and a last line with the texts `counted`
    (said as e.g. "built in C") and those that `failed` (e.g. "differ"). Exit 1 when any
    failed, 2 when a process died."""
    count, seed, jobs = parse_args(doc.splitlines()[0], default_count)
    result = run_campaign(name, run, count, seed, jobs, folder, suffix)
    if result is None:
        return 2
    done, good, bad, seconds = result
    print(f"{name}: {done:,} texts in {seconds:.0f} s, {good:,} {counted}, {len(bad)} {failed}")
    return 1 if bad else 0
