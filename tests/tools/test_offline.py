"""`clusterdns check`, `records` and `records --explain`, run as a user would."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import digout
from tests.helpers.process import ROOT, clusterdns_argv

PROBLEMS = ROOT / "tests" / "clusters" / "problems"
ZONES = ROOT / "zones"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(clusterdns_argv(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize(
    "expected",
    [
        "error: broken.yaml:4 (document 0): invalid YAML",
        "error: missing-port.yaml:1 (document 0): Service default/noport: field spec.ports[0].port: required",
        "Service default/twice: defined twice: dup-a.yaml:1 and dup-b.yaml:1; the later one is used",
        "Service default/lonely: field spec.selector: selector app=nothing-has-this matches no Pods",
        "field spec.ports[0].targetPort: targetPort 'web-port' is not a container port of any selected Pod",
        "clusterIP 192.168.50.5 is outside --service-cidr 10.96.0.0/12",
        "clusterIP 10.96.8.8 is also used by Service default/shared-a (services.yaml:20)",
        "externalName '1.2.3.4' is an IP address",
        "StatefulSet default/db: field spec.serviceName: serviceName 'db': no such Service",
    ],
)
def test_check_reports_each_problem_class(expected: str) -> None:
    proc = run("check", str(PROBLEMS))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert expected in proc.stdout, proc.stdout


def test_check_clean_directory_exits_zero() -> None:
    proc = run("check", str(ROOT / "tests" / "clusters" / "externalname"))
    assert proc.returncode == 0 and "0 errors, 0 warnings" in proc.stdout, proc.stdout


def test_records_lists_zone_lines_grouped_by_namespace() -> None:
    proc = run("records", str(ZONES))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "; namespace default" in text and "; namespace kube-system" in text and "; reverse" in text
    assert "myclusterip.default.svc.cluster.local.\t5\tIN\tA\t10.233.10.10" in text
    assert "10.10.233.10.in-addr.arpa.\t5\tIN\tPTR\tmyclusterip.default.svc.cluster.local." in text
    kube = text.index("; namespace kube-system")
    assert text.index("kube-dns.kube-system.svc.cluster.local.", kube) > kube


def test_export_zone_forward_and_reverse(tmp_path: Path) -> None:
    """export-zone writes master files: the cluster zone by default, a reverse zone by name, -o to a file."""
    forward = run("export-zone", "--manifests", str(ZONES))
    assert forward.returncode == 0, forward.stderr
    lines = forward.stdout.splitlines()
    assert lines[1] == "$ORIGIN cluster.local." and "\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. " in lines[2]
    assert "myclusterip.default.svc.cluster.local.\t5\tIN\tA\t10.233.10.10" in lines
    out = tmp_path / "reverse.zone"
    reverse = run("export-zone", "--manifests", str(ZONES), "in-addr.arpa", "-o", str(out))
    assert reverse.returncode == 0 and reverse.stdout == "", reverse.stderr
    text = out.read_text().splitlines()
    assert text[1] == "$ORIGIN in-addr.arpa." and "\tNS\tns.dns.in-addr.arpa." in text[3]
    assert "10.10.233.10.in-addr.arpa.\t5\tIN\tPTR\tmyclusterip.default.svc.cluster.local." in text
    assert not any("\tA\t" in line for line in text)


@pytest.mark.parametrize("command", [["export-zone", "--manifests", "{missing}", "-o", "{out}"], ["records", "{missing}"], ["check", "{missing}"]])
def test_a_missing_manifests_directory_is_an_error_not_an_empty_zone(tmp_path: Path, command: list[str]) -> None:
    missing, out = tmp_path / "nope", tmp_path / "out.zone"
    proc = run(*[part.format(missing=missing, out=out) for part in command])
    assert proc.returncode == 2 and f"{missing}: manifests directory not found" in proc.stderr, proc.stderr
    assert not out.exists() and proc.stdout == ""


@pytest.mark.parametrize(("zone", "said"), [
    ("zones", "export-zone zones: not one of the --zone zones; they are cluster.local, in-addr.arpa, ip6.arpa"),  # a DIR given for the ZONE
    ("example.org", "export-zone example.org: not one of the --zone zones (a k8s_external zone"),
    ("svc.cluster.local", "export-zone svc.cluster.local: not one of the --zone zones"),
])
def test_export_zone_refuses_a_zone_it_does_not_serve(zone: str, said: str) -> None:
    """Before, any name was taken as the origin of the cluster's records: `export-zone zones` wrote
    `api.default.svc.zones.`, and the k8s_external zone got records the server never answers."""
    proc = run("export-zone", "--manifests", str(ZONES), "--external-zone", "example.org", zone)
    assert proc.returncode == 2 and said in proc.stderr and proc.stdout == "", proc.stderr


def test_export_zone_takes_a_reverse_zone_below_a_reverse_zone() -> None:
    proc = run("export-zone", "--manifests", str(ZONES), "10.in-addr.arpa")
    assert proc.returncode == 0 and "10.10.233.10.in-addr.arpa.\t5\tIN\tPTR\tmyclusterip.default.svc.cluster.local." in proc.stdout, proc.stderr


def test_records_under_a_name_with_none_is_exit_1_and_says_why() -> None:
    proc = run("records", str(ZONES), "nope.default.svc.cluster.local")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no records at or below nope.default.svc.cluster.local: `clusterdns records --explain nope.default.svc.cluster.local` says why" in proc.stderr


def test_records_of_a_cluster_domain_under_arpa() -> None:
    """--zone home.arpa (RFC 8375): its names are the cluster's, not reverse names."""
    proc = run("records", str(ZONES), "--zone", "home.arpa", "--zone", "in-addr.arpa")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    default = text.index("; namespace default")
    assert text.index("myclusterip.default.svc.home.arpa.\t5\tIN\tA\t10.233.10.10", default) > default
    assert "10.10.233.10.in-addr.arpa.\t5\tIN\tPTR\tmyclusterip.default.svc.home.arpa." in text[text.index("; reverse"):]
    assert ".svc.home.arpa.svc" not in text and "svc.home.arpa.default" not in text


def test_records_under_a_name() -> None:
    proc = run("records", str(ZONES), "cassandra.default.svc.cluster.local")
    lines = [l for l in proc.stdout.splitlines() if not l.startswith(";")]
    assert lines and all("cassandra.default.svc.cluster.local." in l.split("\t")[0] for l in lines)
    assert sum("\tA\t" in l for l in lines) == 6  # the Service name and the three Pod names


@pytest.mark.parametrize(
    "order", [["{dir}", "{name}", "--ttl", "7"], ["{dir}", "--ttl", "7", "{name}"], ["--ttl", "7", "{dir}", "{name}"], ["{dir}", "--ttl", "7", "--", "{name}"]]
)
def test_records_takes_dir_and_name_before_or_after_the_options(order: list[str]) -> None:
    """argparse alone fills the positionals only from the words before the first option (cli.parse)."""
    argv = [a.format(dir=ZONES, name="cassandra.default.svc.cluster.local") for a in order]
    lines = [l for l in run("records", *argv).stdout.splitlines() if not l.startswith(";")]
    assert lines and all(l.split("\t")[0].endswith("cassandra.default.svc.cluster.local.") and l.split("\t")[1] == "7" for l in lines)


def test_a_word_left_over_is_still_refused() -> None:
    proc = run("records", str(ZONES), "--ttl", "7", "a.b", "extra")
    assert proc.returncode == 2 and "unrecognized arguments: extra" in proc.stderr


def test_explain_positive_name_names_the_manifests() -> None:
    out = run("records", str(ZONES), "--explain", "pod-a.headless1.default.svc.cluster.local").stdout
    assert "Service default/headless1 (headless) from 000-headless-endpoint-externalname/2-headless1.yaml:" in out
    assert "as 'pod-a' Pod default/pod4: ready" in out and "2-headless1.yaml:" in out.split("as 'pod-a'")[1]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("web.nowhere.svc.cluster.local", "there is no namespace 'nowhere'"),
        ("nginx.default.svc.cluster.local", "did you mean: nginx-svc"),
        ("pod-c.headless1.default.svc.cluster.local", "no endpoint of headless1 is called 'pod-c'"),
        ("x.cluster.local", "must be 'svc' or 'pod'"),
        ("_web._tcp.cassandra.default.svc.cluster.local", "named ports are none"),
    ],
)
def test_explain_negative_names(name: str, reason: str) -> None:
    out = run("records", str(ZONES), "--explain", name).stdout
    assert "NXDOMAIN" in out and reason in out, out


def test_explain_hostname_not_matching_subdomain(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("""apiVersion: v1
kind: Service
metadata: {name: hs}
spec: {clusterIP: None, selector: {app: x}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: x}}
spec: {hostname: alpha, subdomain: other, containers: [{name: c, image: nginx}]}
""")
    out = run("records", str(tmp_path), "--explain", "alpha.hs.default.svc.cluster.local").stdout
    assert "has hostname 'alpha' but subdomain 'other'" in out, out


def test_explain_headless_without_ready_endpoints(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("""apiVersion: v1
kind: Service
metadata: {name: hs}
spec: {clusterIP: None, selector: {app: x}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: x}}
spec: {containers: [{name: c, image: nginx}]}
status:
  podIP: 10.244.3.3
  conditions: [{type: Ready, status: "False"}]
""")
    out = run("records", str(tmp_path), "--explain", "hs.default.svc.cluster.local").stdout
    assert "NOT ready (Pod not Ready)" in out and "no ready endpoints has no records: NXDOMAIN" in out, out


README_TOOL_STEPS = {c: e for c, e, _ in digout.shell_steps((ROOT / "README.md").read_text()) if c.startswith(("clusterdns check", "clusterdns records"))}


def test_readme_shows_the_tool_examples() -> None:
    # Without them the test below would be an empty parametrisation: skipped, never failing.
    assert len(README_TOOL_STEPS) == 3, list(README_TOOL_STEPS)


@pytest.mark.parametrize("command", list(README_TOOL_STEPS))
def test_readme_tool_examples(command: str) -> None:
    """The README's `clusterdns check` / `records --explain` examples print the lines it shows,
    in that order (`…` stands for lines left out)."""
    expected = README_TOOL_STEPS[command]
    output = [digout.normalise(line) for line in run(*shlex.split(command)[1:]).stdout.splitlines()]
    at = 0
    for line in expected:
        if line == "…":
            continue
        want = digout.normalise(line)
        assert want in output[at:], f"{command}: no line {line!r} (in order) in\n" + "\n".join(output)
        at = output.index(want, at) + 1


@pytest.mark.parametrize(("name", "why"), [
    ("bad..name", "an empty label"),
    ("a..default.svc.cluster.local", "an empty label"),  # was explained as the namespace's NODATA
    ("x" * 64 + ".default.svc.cluster.local", "has 64 octets (at most 63)"),
])
def test_explain_an_invalid_name_says_so(name: str, why: str) -> None:
    """RFC 1035 2.3.4: such a name cannot be asked (dig refuses it), so it is not 'forwarded' nor NODATA."""
    proc = run("records", str(ZONES), "--explain", name)
    assert proc.returncode == 0 and proc.stdout.startswith(f"{name}: not a valid DNS name: ") and why in proc.stdout, proc.stdout


def test_explain_a_k8s_external_name_gives_its_answers() -> None:
    """--explain of a name in an --external-zone: the answers k8s_external gives (external.answer, the
    server's own function), not 'not in our zones: forwarded' as before."""
    proc = run("records", str(ZONES), "--external-zone", "example.org", "--explain", "myloadbalance.default.example.org")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[0].startswith("myloadbalance.default.example.org. (k8s_external zone example.org"), proc.stdout
    assert "  myloadbalance.default.example.org.\t5\tIN\tA\t203.0.113.100" in lines and "  AAAA: NOERROR (NODATA)" in lines
    missing = run("records", str(ZONES), "--external-zone", "example.org", "--explain", "nope.default.example.org").stdout.splitlines()
    assert missing[1:] == ["  A: NXDOMAIN", "  AAAA: NXDOMAIN", "  SRV: NXDOMAIN", "  CNAME: NXDOMAIN"], missing
