"""bench/fuzz_manifests.py (`make fuzz-manifests`): the texts it once failed on read now, and a
short campaign finds nothing (the long one runs 100,000 texts and more)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.helpers.process import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import fuzz_manifests  # noqa: E402


@pytest.mark.parametrize("path", sorted(fuzz_manifests.CORPUS.glob("*.txt")), ids=lambda p: p.name)
def test_texts_that_once_failed_read_now(tmp_path: Path, path: Path) -> None:
    """Each: the text read before it, then it, through one pipeline, answered and compared
    with a fresh load (fuzz_manifests.check). The first two: a 4,301-digit targetPort (int()
    raised) and an externalName label of 70 octets on the wire."""
    fuzz_manifests.replay(path.read_bytes().decode("utf-8", "surrogatepass"), tmp_path)


def test_the_corpus_holds_what_the_fixes_were_found_with() -> None:
    """The two texts the replay above reads first: the 4,301-digit targetPort and the 70-octet label."""
    texts = {p.name: p.read_text(encoding="utf-8", errors="surrogatepass") for p in fuzz_manifests.CORPUS.glob("*.txt")}
    assert '"targetPort": ' + "1" * 4301 in texts["8d36f349dfd58eeb.txt"]
    assert "x" * 70 in texts["40b9e1d67cf4b756.txt"]


def test_a_short_campaign_finds_nothing() -> None:
    """1,500 texts, 500 read with each of fuzz_manifests.SETTINGS: a smoke run of the tool (the
    bugs it found are caught by the corpus replays above, not by this many texts)."""
    run, clean, failed = fuzz_manifests.campaign(1500, 20261207)
    assert run == 1500 and failed == []
    assert 30 < clean < 1500  # some texts read without a problem, most find one


def test_a_saved_failure_replays_with_its_settings(tmp_path: Path) -> None:
    """A record names its settings (not their place in a list); one without is the default."""
    text = fuzz_manifests.THEN + "kind: Namespace\napiVersion: v1\nmetadata: {name: default}\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert fuzz_manifests.replay('.yaml .yaml {"pods": "disabled"}\n' + text, tmp_path / "a").pods == "disabled"
    assert fuzz_manifests.replay(".yaml .yaml\n" + text, tmp_path / "b").pods == "insecure"
