"""Mutated Corefiles (the stock ones and docs/corefile.md's, with arguments replaced, added and
cut, lines repeated and dropped) give settings or a ConfigError naming the problem, never
another exception: a review found `cache ²`, `ttl` of 5,000 digits and a duration past Go's
int64 ending in tracebacks."""

from __future__ import annotations

import random

import pytest

from clusterdns.config.corefile import corefile_values
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from tests.config.test_corefile import doc_blocks
from tests.helpers.process import ROOT

# The stock kubeadm and k3s Corefiles, and docs/corefile.md's (test_corefile.py checks that those load).
SEEDS = [p.read_text() for p in sorted((ROOT / "tests" / "cases" / "corefiles").glob("*.Corefile"))] + [
    block for block in doc_blocks("") if "{" in block and not block.startswith("clusterdns:")
]
# What a number argument is replaced with most often: the review's tracebacks came from these.
NUMBERISH = ["²", "1" * 5000, "9" * 400 + "s", "3000000h", "-1", "0", "1e9", "101%"]
ODD = ["²", "1" * 30, "1" * 5000, "-1", "0", "{", "}", "1e9", "9" * 400 + "s", "300000h", ":", "::", ".", "*", '"', "{$X}", "\\", "#",
       "é", "tls://x", "dns://.:99999", "[::1]:53", "10.0.0.1:0", "10.0.0.1:65536", "5", "-", "in-addr.arpa", "10.0.0.0/33",
       "a" * 70 + ".local", "fallthrough", "ttl", "pods", "verified", "success", "denial", "100", "10%", "101%", "1m", "0s", "{}", "..", "_"]  # fmt: skip


def mutated(rng: random.Random) -> str:
    lines = rng.choice(SEEDS).split("\n")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        words = lines[i].split(" ")
        op = rng.randrange(5)
        numbers = [j for j, word in enumerate(words) if word[:1].isdigit()]
        if op == 0 and numbers:  # a number argument (ttl 30, cache 30, 5s): something number-like
            words[rng.choice(numbers)] = rng.choice(NUMBERISH)
        elif op == 0:
            words[rng.randrange(len(words))] = rng.choice(ODD)
        elif op == 1:
            words.insert(rng.randrange(len(words) + 1), rng.choice(ODD))
        elif op == 2 and len(words) > 1:
            del words[rng.randrange(len(words))]
        elif op == 3:
            words = [rng.choice(rng.choice(SEEDS).split("\n"))]  # a line of another Corefile
        else:
            words = []
        lines[i] = " ".join(words)
    return "\n".join(lines)


def test_the_seeds_load() -> None:
    assert len(SEEDS) == 2 + 4
    for text in SEEDS:
        Config(**corefile_values(text, "Corefile", {})[0])


def test_a_config_error_cuts_a_long_quoted_value_and_keeps_paths_whole() -> None:
    path = "/etc/coredns/" + "x" * 88 + ".Corefile"
    error = ConfigError(f'{path}:3: plugin "{"1" * 500}" is unknown; it\'s not one of CoreDNS\'s plugins that clusterdns knows, nor any other one')
    assert str(error) == f'{path}:3: plugin "{"1" * 60}..." (500 characters) is unknown; it\'s not one of CoreDNS\'s plugins that clusterdns knows, nor any other one'


@pytest.mark.parametrize("seed", range(4))
def test_a_mutated_corefile_gives_settings_or_a_config_error(seed: int, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # an `import` of a relative glob finds nothing here
    rng = random.Random(seed)
    accepted = 0
    for _ in range(1000):
        text = mutated(rng)
        try:
            Config(**corefile_values(text, "Corefile", {})[0])
            accepted += 1
        except ConfigError as e:
            # One message, a long value in it cut short; an import's pattern is echoed whole, as Caddy's parser words it.
            assert 0 < len(str(e)) < 400 or str(e).partition(": ")[2].startswith("File to import not found: "), text
    assert 10 < accepted < 1000  # some mutations are still Corefiles, most are not
