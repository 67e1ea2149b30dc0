#!/usr/bin/env python3
"""The long differential campaign for the C YAML reader (`make fuzz-yaml`).

Mutated manifests (the repository's tracked YAML files and tests/manifests/test_yaml_stream.py's
cases, with characters inserted, cut and spliced in) through `yaml_fast._c_stream`, which must
either leave a text to the Python reading (False) or give exactly what the Python reading
gives, types included. tests/manifests/test_yaml_stream.py runs a few hundred such texts;
this runs millions on every core, and saves each text that differs to tests/fuzz_corpus/yaml/,
which the tests replay from then on. The texts are made in chunks of 10,000, chunk k from
the seed and k, so a seed gives the same texts on any number of processes. A process that
dies (a crash in C) ends the run, with the text it was reading saved there too
(bench/campaign.py).

    python bench/fuzz_yaml.py                        # 1 million texts, every core
    python bench/fuzz_yaml.py --count 100000 --seed 7
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from campaign import main as campaign_main  # noqa: E402

from tests.manifests.test_yaml_stream import FAILURES, LEFT, PLAIN, agrees  # noqa: E402

ALPHABET = "\n -:#[]{}?&*!|>'\",%@`\\\t0aé~.+=<\ufeff\x00"


def seeds() -> list[str]:
    """The texts mutated: the repository's tracked YAML (first 4 KB of each; not the saved
    failures, so that a seed gives the same texts tomorrow) and the case tables."""
    try:
        listed = subprocess.run(["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a checkout: every YAML file there
        listed = [str(p.relative_to(ROOT)) for p in ROOT.glob("**/*.y*ml") if ".venv" not in p.parts]
    files = sorted(ROOT / f for f in listed if not f.startswith("tests/fuzz_corpus/"))
    return [p.read_text(errors="replace")[:4096] for p in files if p.is_file()] + PLAIN + LEFT


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


def campaign(count: int, seed: int, chunk: int = 0, reading: Path | None = None) -> tuple[int, int, list[str]]:
    """(texts run, texts the C reader built, texts that differ) for `count` texts of chunk
    `chunk` of the campaign `seed`; each text is first written to `reading`, if given."""
    rng, texts = random.Random(f"{seed}/{chunk}"), seeds()
    built, differ = 0, []
    for _ in range(count):
        text = mutate(rng, texts)
        if reading is not None:
            reading.write_bytes(text.encode("utf-8", "surrogatepass"))
        verdict = agrees(text)
        if verdict is None:
            differ.append(text)
        built += verdict is True
    return count, built, differ


if __name__ == "__main__":
    sys.exit(campaign_main("fuzz-yaml", __doc__, campaign, 1_000_000, FAILURES, ".yaml", "built in C", "differ"))
