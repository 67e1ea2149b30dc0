"""What a user's mistake on the command line gets: one clear line and exit 2, never a traceback
(found by a walk through the README: a bad --listen port ended in a ConfigError traceback,
because argparse only turns a converter's ValueError into its own error)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from clusterdns.cli import build_parser, parse
from clusterdns.config.settings import settings
from tests.helpers.process import ROOT, clusterdns_argv

# (argv, what stderr says): the real CLI, as a user types it.
MISTAKES = [
    (["serve", "--listen", "127.0.0.1:99999"], "clusterdns serve: error: argument --listen: port out of range in '127.0.0.1:99999'"),
    (["check", "--service-cidr", "10.96.0.0/33"], "clusterdns check: error: argument --service-cidr: bad CIDR '10.96.0.0/33'"),
    (["records", "--health", "1.2.3.4:99999"], "clusterdns records: error: argument --health: port out of range"),
    (["export-zone", "--zone", ".."], "clusterdns export-zone: error: argument --zone: empty zone name"),
    # A zone no query could carry (RFC 1035 2.3.4): was taken, and served as a cluster domain with empty labels.
    (["check", "--zone", "a..b"], "argument --zone: zone 'a..b': not a valid domain name: an empty label"),
    (["check", "--external-zone", "x" * 64 + ".org"], "argument --external-zone: zone 'xxxx"),
    (["serve", "--stub-domain", "foo"], "argument --stub-domain: stub domain 'foo': expected ZONE=ADDR[,ADDR...]"),
    (["serve", "--rewrite", "x"], "argument --rewrite: rewrite: invalid rule type"),
    (["serve", "--ttl", "abc"], "clusterdns serve: error: argument --ttl: invalid int value: 'abc'"),
    # An option misspelled: the one meant, from the command's own options; no abbreviations.
    (["serve", "--upstrem", "none"], "clusterdns serve: error: unrecognized arguments: --upstrem none (did you mean --upstream?)"),
    (["check", "--", "zones", "--upstream", "none"], "clusterdns check: error: unrecognized arguments: --upstream none (options go before --)"),
    (["check", "--manifest", "zones"], "clusterdns check: error: unrecognized arguments: --manifest (did you mean --manifests?)"),  # zones: its DIR
    ([], "clusterdns: error: the following arguments are required: command\n(`clusterdns --help` lists the commands)"),
    # Numbers out of the range they mean (settings.py _check_numbers): -1 would spin a core.
    (["check", "zones", "--upstream", "none", "--poll-interval", "-1"], "clusterdns: --poll-interval -1: must be more than 0"),
    (["check", "zones", "--upstream", "none", "--rate-limit", "-5"], "clusterdns: --rate-limit -5: cannot be negative (0: off)"),
    (["check", "zones", "--upstream", "none", "--lameduck", "nan"], "clusterdns: --lameduck nan: must be a finite number"),
    # One address twice (localhost is 127.0.0.1): said as such, not as a port another process holds.
    (["check", "zones", "--upstream", "none", "--listen", "127.0.0.1:5364", "--listen", "localhost:5364"],
     "clusterdns: --listen 127.0.0.1:5364: the same address is given twice"),
    (["check", "zones", "--upstream", "none", "--upstream", "127.0.0.1:9"],
     "clusterdns: --upstream none (forward nothing) cannot go with addresses: 127.0.0.1:9"),
    # No directory named: the default, and where a directory is named.
    (["check", "--manifests", "README.md"], "clusterdns: README.md: manifests directory not found (it is a file: give the directory the manifests are in)"),
]


@pytest.mark.parametrize(("argv", "said"), MISTAKES, ids=[" ".join(a) or "nothing" for a, _ in MISTAKES])
def test_a_mistake_is_one_clear_line_and_exit_2(argv: list[str], said: str) -> None:
    run = subprocess.run(clusterdns_argv(*argv), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2 and said in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) <= 2, run.stderr  # no 47-line usage first


def test_no_value_of_any_flag_ends_in_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    """Every setting's flag, with values a converter may not expect: a value argparse takes or
    argparse's own error (SystemExit 2), nothing else."""
    parser = build_parser()
    tried = 0
    for _, _, spec in settings():
        if spec.switch:
            continue
        for value in ("%%bad%%", "-1", "1" * 30, "nan", "", "1.2.3.4:99999", "..", "a=b", "[::1]:0"):
            try:
                parse(parser, ["serve", f"{spec.flag}={value}"])
            except SystemExit as e:
                assert e.code == 2, (spec.flag, value)
                assert f"argument {spec.flag}" in capsys.readouterr().err, (spec.flag, value)
            tried += 1
    assert tried > 400


def test_no_directory_named_says_the_default_and_where_to_name_one(tmp_path: Path) -> None:
    """A Corefile without `manifests DIR` (or no --manifests) in a directory with no zones/."""
    corefile = tmp_path / "Corefile"
    corefile.write_text(".:5300 {\n    kubernetes cluster.local\n}\n")
    for argv in (["check"], ["check", "--corefile", str(corefile)]):
        # From a directory without zones/ (PYTHONPATH: this checkout's package, not one installed elsewhere).
        run = subprocess.run(clusterdns_argv(*argv), capture_output=True, text=True, timeout=30, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert run.returncode == 2, run.stderr
        assert run.stderr == ("clusterdns: zones: manifests directory not found (zones is the default: give --manifests DIR,"
                              " or `manifests DIR` in the Corefile's kubernetes block)\n"), run.stderr


def test_an_empty_directory_is_a_warning_not_silence(tmp_path: Path) -> None:
    run = subprocess.run(clusterdns_argv("check", str(tmp_path)), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 0
    assert run.stdout.splitlines() == [f"warning: {tmp_path}: no manifest files (.yaml, .yml, .json) here yet: the cluster is empty",
                                       f"{tmp_path}: 0 files, 0 services, 0 pods: 0 errors, 1 warnings"], run.stdout


def test_a_namespace_no_namespace_can_have_is_a_warning() -> None:
    """--namespaces (or a Corefile's `namespaces`) with a word no Namespace can be named: CoreDNS takes it
    silently and matches nothing; clusterdns takes it and says so, once."""
    run = subprocess.run(clusterdns_argv("check", "zones", "--upstream", "none", "--namespaces", "Bad_NS,default"),
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    said = "clusterdns: --namespaces 'Bad_NS': no namespace can be named so (a DNS-1123 label: a-z, 0-9 and '-'): it matches none"
    assert run.stderr.count(said) == 1 and "'default'" not in run.stderr, run.stderr
