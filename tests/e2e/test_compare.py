"""`clusterdns compare`: two real servers, the same questions, a readable diff and an exit code.

The dump fixture (tests/clusters/kubectl-dump-compare/) is `kubectl get ... -A -o yaml` of a kind
cluster, served with kubeadm's CoreDNS values (--pods insecure --ttl 30), as docs/compare.md
tells a user to do before comparing with the cluster's own CoreDNS.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusterdns import cli
from clusterdns.tools import compare, questions
from tests.helpers.process import CASES, ROOT, UNIT_FIXTURE, Server, closed_port, clusterdns_argv

DUMP = ROOT / "tests" / "clusters" / "kubectl-dump-compare"
KUBEADM = ["--zone", "cluster.local", "--zone", "in-addr.arpa", "--zone", "ip6.arpa", "--pods", "insecure", "--ttl", "30"]
UNIT = UNIT_FIXTURE
UNIT_FLAGS = ["--zone", "cluster.local", "--pods", "disabled", "--ttl", "5", "--fallthrough", "none"]


def start(manifests: Path, *flags: str) -> Server:
    return Server(clusterdns_argv("serve", "--manifests", str(manifests), "--listen", "127.0.0.1:0", "--upstream", "none", *flags))


def address(server: Server) -> str:
    return f"{server.host}:{server.port}"


@pytest.fixture(scope="module")
def changed_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dump with web's ClusterIP moved by one address, as after a re-create."""
    copy = tmp_path_factory.mktemp("changed") / "dump"
    shutil.copytree(DUMP, copy)
    text = (copy / "dump.yaml").read_text()
    assert text.count("10.96.44.12") == 2
    (copy / "dump.yaml").write_text(text.replace("10.96.44.12", "10.96.44.13"))
    return copy


@pytest.fixture(scope="module")
def servers(changed_dump: Path) -> Iterator[dict[str, Server]]:
    started = {
        "a": start(DUMP, *KUBEADM),
        "b": start(DUMP, *KUBEADM),
        "changed": start(changed_dump, *KUBEADM),
        "unit-a": start(UNIT, *UNIT_FLAGS),
        "unit-b": start(UNIT, *UNIT_FLAGS),
    }
    yield started
    for server in started.values():
        server.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["compare", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_same_dump_is_equal(servers: dict[str, Server], capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--self", address(servers["a"]), "--against", address(servers["b"]), "--manifests", str(DUMP), *KUBEADM)
    assert code == 0, out
    assert " 0 differ" in out
    questions = int(out.split(" questions from ")[0].rsplit("\n", 1)[-1])
    assert questions > 100  # names x types, PTRs and the negative probes


def test_changed_copy_differs_and_names_the_name(servers: dict[str, Server], capsys: pytest.CaptureFixture[str]) -> None:
    for transport in ([], ["--tcp"]):
        code, out = run(capsys, "--self", address(servers["a"]), "--against", address(servers["changed"]), "--manifests", str(DUMP), *KUBEADM, *transport)
        assert code == 1, out
        assert "\nweb.shop.svc.cluster.local. A\n" in out
        assert "    - web.shop.svc.cluster.local. in a 10.96.44.12" in out
        assert "    + web.shop.svc.cluster.local. in a 10.96.44.13" in out
        assert "\n12.44.96.10.in-addr.arpa. PTR\n" in out  # the old address's PTR is gone
        assert "\ndb.shop.svc.cluster.local. A" not in out  # what did not change is not shown


def test_ttl_sensitive(servers: dict[str, Server], capsys: pytest.CaptureFixture[str]) -> None:
    """The unit fixture served with TTL 5 and with TTL 30: equal unless TTLs count."""
    other = start(UNIT, *UNIT_FLAGS[:-4], "--ttl", "30", "--fallthrough", "none")
    try:
        base = ["--self", address(servers["unit-a"]), "--against", address(other), "--cases", str(CASES / "coredns-unit.yaml")]
        code, out = run(capsys, *base)
        assert code == 0, out
        code, out = run(capsys, *base, "--ttl-sensitive")
        assert code == 1
        assert "    - svc1.testns.svc.cluster.local. 5 in a 10.0.0.1" in out
        assert "    + svc1.testns.svc.cluster.local. 30 in a 10.0.0.1" in out
    finally:
        other.stop()


def test_cases_file_and_profiles(servers: dict[str, Server], capsys: pytest.CaptureFixture[str]) -> None:
    cases = str(CASES / "coredns-unit.yaml")
    pair = ["--self", address(servers["unit-a"]), "--against", address(servers["unit-b"])]
    code, out = run(capsys, *pair, "--cases", cases)
    assert code == 0, out
    # Another profile's questions against the same pair: still equal (both run the default flags).
    code, out = run(capsys, *pair, "--cases", cases, "--profile", "unit-axfr", "--tcp")
    assert code == 0 and "zone-transfer cases skipped" in out, out
    # The unit fixture's questions asked of the dump: plenty differ.
    code, out = run(capsys, "--self", address(servers["unit-a"]), "--against", address(servers["a"]), "--cases", cases)
    assert code == 1 and "\nsvc1.testns.svc.cluster.local. A\n" in out and "  rcode: NOERROR | NXDOMAIN" in out


def test_positive_only_compares_answers(servers: dict[str, Server], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--self", address(servers["a"]), "--against", address(servers["changed"]), "--manifests", str(DUMP), *KUBEADM, "--positive-only"]
    code, out = run(capsys, *base)
    assert code == 1 and "web.shop.svc.cluster.local. A" in out and "authority:" not in out and "additional:" not in out


def test_network_and_usage_errors(servers: dict[str, Server], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dead = closed_port()[1]
    code, out = run(capsys, "--against", f"127.0.0.1:{dead}", "--self", address(servers["a"]), "--manifests", str(DUMP), "--timeout", "0.2")
    assert code == 2 and "against 127.0.0.1:" in out and "no answer over UDP" in out
    code, out = run(capsys, "--against", f"127.0.0.1:{dead}", "--self", address(servers["a"]), "--manifests", str(DUMP), "--tcp")
    assert code == 2 and "TCP" in out
    code, out = run(capsys, "--against", address(servers["a"]))
    assert code == 2 and "--cases FILE or --manifests DIR" in out
    code, out = run(capsys, "--against", address(servers["a"]), "--cases", "x.yaml", "--manifests", str(DUMP))
    assert code == 2 and "not both" in out
    code, out = run(capsys, "--against", address(servers["a"]), "--cases", str(CASES / "coredns-unit.yaml"), "--profile", "nope")
    assert code == 2 and "--profile nope" in out
    code, out = run(capsys, "--against", address(servers["a"]), "--manifests", "/nonexistent/dir")
    assert code == 2 and "manifests directory not found" in out
    bad_value = tmp_path / "cases.yaml"  # a value PyYAML cannot make: a traceback before
    bad_value.write_text("cases:\n- qname: a\n  qtype: !!timestamp abc\n")
    code, out = run(capsys, "--against", address(servers["a"]), "--cases", str(bad_value))
    assert code == 2 and f"--cases {bad_value}: " in out and "'abc' is not a valid timestamp" in out
    with pytest.raises(SystemExit) as e:
        cli.main(["compare", "--manifests", str(DUMP)])  # --against is required (argparse exits 2)
    assert e.value.code == 2


def test_report_goes_to_the_given_stream(servers: dict[str, Server]) -> None:
    out = io.StringIO()
    mine = compare.Asker("self", (servers["a"].host, servers["a"].port))
    theirs = compare.Asker("against", (servers["changed"].host, servers["changed"].port), tcp_only=True)
    try:
        n = compare.compare([questions.AskedQuestion("web.shop.svc.cluster.local.", "A"), questions.AskedQuestion("db.shop.svc.cluster.local.", "A")],
                            mine, theirs, compare.Options(), out, verbose=True)
    finally:
        mine.close()
        theirs.close()
    assert n == 1
    assert "= db.shop.svc.cluster.local. A NOERROR" in out.getvalue()


def test_the_questions_of_a_corefile_are_those_of_its_manifests_and_zones(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """compare --corefile (the Corefile a team runs): its kubernetes block's manifests and zones make
    the questions, as --manifests with the same --zone flags does; before, compare took no --corefile."""
    corefile = tmp_path / "Corefile"
    corefile.write_text(f".:53 {{\n    kubernetes cluster.local in-addr.arpa {{\n        manifests {DUMP}\n        pods disabled\n    }}\n}}\n")
    code, from_corefile = run(capsys, "--against", "127.0.0.1:9", "--corefile", str(corefile), "--list")
    assert code == 0 and "cluster.local. SOA" in from_corefile, from_corefile
    code, from_flags = run(capsys, "--against", "127.0.0.1:9", "--manifests", str(DUMP), "--zone", "cluster.local", "--zone", "in-addr.arpa",
                           "--pods", "disabled", "--fallthrough", "none", "--list")  # (no `fallthrough` in the block)
    assert code == 0 and from_corefile.splitlines() == from_flags.splitlines()
    assert from_flags != run(capsys, "--against", "127.0.0.1:9", "--manifests", str(DUMP), "--list")[1]  # the Corefile's settings count
