"""A problem that repeats is logged once with its count (issue 16): no warning storms; `check` lists every one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from clusterdns.errors import Problem, Repeated, shown, summarize
from tests.helpers.process import QUIET_HTTP, ROOT, Server, clusterdns_argv

SERVICES, REPLICAS = 2000, 10  # 20,000 Pods from Deployments
SMALL_CIDR = "10.244.0.0/24"  # 254 addresses
NO_IP = "the Pod has no IP"


def _gen():
    spec = importlib.util.spec_from_file_location("bench_gen", ROOT / "bench" / "gen.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Path:
    """20,000 Pods (bench/gen.py's Deployments) for a Pod CIDR of 254 addresses."""
    out = tmp_path_factory.mktemp("crowded")
    _gen().generate(out, SERVICES, REPLICAS, 100, 10)
    return out


def test_serve_says_a_full_pod_cidr_once(crowded: Path) -> None:
    server = Server(clusterdns_argv("serve", "--manifests", str(crowded), "--listen", "127.0.0.1:0", "--upstream", "none",
                                    "--pod-cidr", SMALL_CIDR, "--watch", "off"))
    try:
        assert server.wait_for_output(r"serving DNS on")
    finally:
        server.stop()
    warnings = [line for line in server.lines if "warning" in line]
    assert len(warnings) <= 3, server.output[:3000]
    [summary] = [line for line in warnings if NO_IP in line]
    missing = SERVICES * REPLICAS - 254
    assert f"warning: {missing} Pods: " in summary and f"--pod-cidr {SMALL_CIDR} (254 addresses) is full" in summary, summary
    assert "use a larger --pod-cidr" in summary and "(first: part00000.yaml:" in summary, summary


def test_check_lists_every_pod_and_quiet_keeps_the_summary(crowded: Path) -> None:
    env = {**os.environ, **QUIET_HTTP}
    check = subprocess.run(clusterdns_argv("check", str(crowded), "--pod-cidr", SMALL_CIDR), capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0, check.stderr[-2000:]
    listed = [line for line in check.stdout.splitlines() if line.endswith(NO_IP + "; use a larger --pod-cidr")]
    assert len(listed) == SERVICES * REPLICAS - 254
    assert len({line.split(": ")[2] for line in listed}) == len(listed), "one line per Pod"
    export = subprocess.run(clusterdns_argv("export-zone", "--manifests", str(crowded), "--pod-cidr", SMALL_CIDR, "--quiet", "-o", os.devnull),
                            capture_output=True, text=True, env=env, timeout=120)
    assert export.returncode == 0, export.stderr[-2000:]
    assert [line for line in export.stderr.splitlines() if "warning" in line] == [
        line for line in export.stderr.splitlines() if f"warning: {SERVICES * REPLICAS - 254} Pods: " in line
    ] != [], export.stderr[:3000]


def _p(message: str, i: int, field: str = "spec.selector", kind: str = "Service") -> Problem:
    return Problem("warning", message, file=f"f{i % 2}.yaml", doc=str(i), line=i + 1, kind=kind, name=f"default/s{i}", field=field)


def test_a_class_is_what_stays_when_the_values_are_left_out() -> None:
    selectors = [_p(f"selector app=a{i} matches no Pods", i) for i in range(5)]
    ports = [_p("a Service with several ports must name each one", i, f"spec.ports[{i}].name") for i in range(4)]
    few = [_p("defined twice", i, "", "Pod") for i in range(3)]  # FIRST or fewer: each on its own line
    out = summarize([few[0], *selectors, few[1], *ports, few[2]])
    assert [type(x) for x in out] == [Problem, Repeated, Problem, Repeated, Problem]
    assert [out[0], out[2], out[4]] == few
    line = str(out[1])
    assert line.startswith("warning: 5 Services: field spec.selector: selector app=a0 matches no Pods (and alike) (first: f0.yaml:1 default/s0, ")
    assert "f0.yaml:3 default/s2" in line and "2 more: `clusterdns check` lists every one" in line
    assert str(out[3]).startswith("warning: 4 Services: field spec.ports[*].name: a Service with several ports must name each one (first: ")
    two_classes = selectors[:2] + [_p(f"clusterIP 10.0.0.{i} is outside --service-cidr", i) for i in range(2)]
    assert summarize(two_classes) == two_classes
    # A long value cut short (errors.shown) is of the class of the short ones (found in review).
    names = [_p(f"{shown(n)} is not a valid DNS name", i) for i, n in enumerate(["a_b", "c_d", "x_" * 60, "y_" * 70])]
    assert [type(x) for x in summarize(names)] == [Repeated]
