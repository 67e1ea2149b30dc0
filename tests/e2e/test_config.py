"""`clusterdns serve --config FILE` (or CLUSTERDNS_CONFIG): every setting from a YAML file,
below flags and CLUSTERDNS_* variables, above the defaults."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from clusterdns.config.settings import SERVING_ONLY, settings
from clusterdns.errors import ConfigError
from tests.helpers.cases import FIXTURE
from tests.helpers.process import ROOT, Server, clusterdns_argv, config_of


def write(tmp_path: Path, text: str, name: str = "clusterdns.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ttl: 30\nlistn: 127.0.0.1:53\n")
    with pytest.raises(ConfigError) as e:
        config_of("--config", str(path))
    assert str(e.value).startswith(f"{path}: unknown setting 'listn' (did you mean 'listen'?)")
    run = subprocess.run(clusterdns_argv("serve", "--config", str(path)), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2
    assert f"clusterdns: {path}: unknown setting 'listn'" in run.stderr


def test_config_file_in_a_running_server(tmp_path: Path) -> None:
    """The real CLI: the file via CLUSTERDNS_CONFIG sets the manifests, listen address and TTL;
    CLUSTERDNS_TTL beats the file's ttl, and the --ttl flag beats both."""
    path = write(tmp_path, f"manifests: {FIXTURE}\nlisten: 127.0.0.1:0\nttl: 30\nupstream: none\nzones: cluster.local\n")
    env = {"CLUSTERDNS_CONFIG": str(path)}
    for argv, extra_env, ttl in (([], {}, 30), ([], {"CLUSTERDNS_TTL": "19"}, 19), (["--ttl", "12"], {"CLUSTERDNS_TTL": "19"}, 12)):
        server = Server(clusterdns_argv("serve", *argv), env={**env, **extra_env})
        try:
            msg = server.query("svc1.testns.svc.cluster.local", "A")
            assert [rrset.ttl for rrset in msg.answer] == [ttl], msg.to_text()
        finally:
            server.stop()


def test_serve_help_shows_every_default() -> None:
    """README: `clusterdns serve --help` lists every setting with its default."""
    run = subprocess.run(clusterdns_argv("serve", "--help"), capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "COLUMNS": "400"})
    lines: dict[str, str] = {}
    flag = ""
    for line in run.stdout.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            lines[flag] = line
        elif flag:
            lines[flag] += " " + line.strip()
    for name, default, s in settings():
        if not s.switch and default not in ((), None, ""):
            assert "default" in lines[s.flag], lines[s.flag]
    assert "(default: 127.0.0.1:5353)" in lines["--listen"] and "(default: auto)" in lines["--watch"]


def _listed_flags(command: str) -> set[str]:
    run = subprocess.run(clusterdns_argv(command, "--help"), capture_output=True, text=True, timeout=30, cwd=ROOT, env={**os.environ, "COLUMNS": "400"})
    assert run.returncode == 0, run.stderr
    return {line.split()[0].rstrip(",") for line in run.stdout.split("options:", 1)[1].splitlines() if line.startswith("  -")}


@pytest.mark.parametrize("command", ["check", "records", "export-zone", "compare"])
def test_offline_help_lists_what_shapes_the_records_and_takes_the_rest(command: str) -> None:
    """The offline commands list the settings that shape the snapshot, not serve's listening, forwarding
    and caching ones (273 lines of check --help before, most of them about a server it never starts);
    those are still taken, so one command line works for serve and check."""
    listed = _listed_flags(command)
    by_name = {name: s.flag for name, _, s in settings()}
    shaping = {"--manifests", "--zone", "--ttl", "--pods", "--service-cidr", "--external-zone", "--config", "--corefile"}
    assert shaping <= listed, shaping - listed
    assert not {by_name[name] for name in SERVING_ONLY} & listed
    run = subprocess.run(clusterdns_argv(command, "--help"), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert "only change how it listens, answers or forwards are taken too" in " ".join(run.stdout.split())
    assert "(watched)" not in run.stdout


def test_no_serving_only_setting_is_read_on_the_way_to_the_snapshot() -> None:
    """SERVING_ONLY (hidden from the offline commands' help) holds no setting the stages from the
    manifests to the snapshot, or the offline tools, read: else `check --help` would hide one that
    changes what it prints."""
    stages = [ROOT / "clusterdns" / d for d in ("derive", "snapshot", "objects", "manifests", "tools")]
    files = [p for d in stages for p in d.rglob("*.py")] + [ROOT / "clusterdns" / f for f in ("pipeline.py", "resolver.py", "hosts.py", "external.py", "records.py")]
    read = {m for f in files for m in re.findall(r"\b\w*config\w*\.(\w+)", f.read_text())}
    assert read >= {"manifests", "pods", "ttl", "service_cidr"}  # the pattern finds what they read
    assert read & SERVING_ONLY == set()
    assert SERVING_ONLY <= {name for name, _, _ in settings()}
