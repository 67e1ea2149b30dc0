"""The compose lab's resolver path, proven with glibc's real resolver and no Docker engine.

tests/helpers/netns_lab.py rebuilds what `docker compose up` sets up for DNS inside
`unshare --user --map-root-user --net --mount`: clusterdns on 172.28.0.53:53 as the compose file
starts it, a stand-in for Docker's embedded DNS on 127.0.0.11, the client's resolv.conf
(search list, ndots:5) bind-mounted over /etc/resolv.conf and `hosts: files dns` over
nsswitch.conf. Then `getent` and `dig` run as the client container would run them. Every
`docker compose exec client ...` command of docs/compose.md is replayed and its output compared
with the doc; the checks below add what the doc does not show.

Skipped only when the kernel refuses the namespaces (unprivileged user namespaces disabled,
seccomp in a container, ...).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.composelab import DOC, ROOT, Step, doc_steps, mismatch, runnable
from tests.helpers.process import have_dig

PYTHON = ROOT / ".venv" / "bin" / "python"
DRIVER_TIMEOUT = 60
FAIL_FAST = 2.0  # seconds a name that does not exist may take, search list and all
# Checks the doc does not show: id -> shell command run in the client's resolver setup.
EXTRA = {
    "full-name": "getent hosts web.default.svc.cluster.local",
    "short-svc": "getent hosts web.default.svc",
    "ahosts": "getent ahosts web",
    "headless-pod": "getent hosts pod-a.headless1",
    "externalname-ahosts": "getent ahosts db",
    "forwarded": "getent hosts host.example.test",
    "nxdomain-cluster": "getent hosts nope.default.svc.cluster.local",
    "nxdomain-short": "getent hosts nope",
    "nxdomain-forwarded": "getent hosts nope.example.test",
    "dig-search": "dig +search +short web",
    "dig-direct": "dig @172.28.0.53 +short api.default.svc.cluster.local",
    "dig-nxdomain": "dig +noall +comments +authority nope.default.svc.cluster.local",
    "ns-address": "dig @172.28.0.53 +short cluster.local NS",
    "ns-dns": "dig @172.28.0.53 +short ns.dns.cluster.local",
}


def doc_checks() -> dict[str, Step]:
    return {f"doc:{s.line}": s for s in doc_steps() if runnable(s)}


def live_edit(work: Path) -> tuple[str, str]:
    """docs/compose.md's live-editing example as (shell command, the line its comment promises):
    write the manifest, then ask until it is served."""
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"```sh\n(cat > zones/compose-lab/\S+ <<'EOF'\n.*?\nEOF)\n(docker compose exec client [^\n#]*?)\s+# ([^\n]*)\n", text, re.S)
    assert m, "docs/compose.md: no ```sh block that writes a manifest into zones/compose-lab/"
    write, ask = m.group(1), m.group(2).replace("docker compose exec client ", "")
    # The namespace lab serves a copy of zones/ (see tests/helpers/netns_lab.py), so this edits the copy.
    command = f"cd {work} && {write}\nfor i in $(seq 60); do {ask} && exit 0; sleep 0.1; done; exit 1"
    return command, " ".join(m.group(3).split())


def kernel_refuses(scratch: Path) -> str | None:
    """Why the namespaces cannot be used here, or None.

    Besides creating them, the probe does the two privileged things the lab needs (a link up, a
    bind mount), because some kernels create a user namespace and then deny what it is for
    (Ubuntu's apparmor_restrict_unprivileged_userns, seccomp profiles of container runtimes).
    """
    assert shutil.which("unshare"), "unshare (util-linux) is not installed"
    assert shutil.which("ip"), "ip (iproute2) is not installed"
    probe = scratch / "probe"
    probe.write_text("")
    argv = ["unshare", "--user", "--map-root-user", "--net", "--mount",
            "sh", "-c", 'ip link set lo up && mount --bind "$0" "$0"', str(probe)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if p.returncode != 0:
        return f"the kernel refuses user/net/mount namespaces: {p.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("netns-lab")
    reason = kernel_refuses(work)
    if reason:
        pytest.skip(reason)
    assert have_dig(), "dig is not installed: `make tools` installs it (bind9-dnsutils)"
    assert shutil.which("getent"), "getent (glibc's libc-bin) is not installed"
    checks = {key: runnable(step) for key, step in doc_checks().items()}
    checks.update(EXTRA)
    checks["live-edit"], expected = live_edit(work)
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    argv = ["unshare", "--user", "--map-root-user", "--net", "--mount", python, "-m", "tests.helpers.netns_lab", str(work)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, err = proc.communicate(json.dumps(checks), timeout=DRIVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the namespace lab did not finish in {DRIVER_TIMEOUT}s:\n{err}")
    assert proc.returncode == 0, f"tests/helpers/netns_lab.py failed ({proc.returncode}):\n{err}\n{out}"
    data = json.loads(out)
    data["live_edit_expected"] = expected
    return data


def result(report: dict[str, Any], key: str) -> dict[str, Any]:
    return report["results"][key]


def show(report: dict[str, Any], r: dict[str, Any]) -> str:
    return (f"$ {r['command']}\n(rc {r['rc']}, {r['seconds']} s)\n{r['stdout']}{r['stderr']}\n"
            f"--- server:\n{report['server_output']}\n--- client's embedded DNS:\n" + "\n".join(report["client_embedded_log"]))


def lines(r: dict[str, Any]) -> set[str]:
    return {" ".join(line.split()) for line in r["stdout"].splitlines() if line.strip()}


def test_resolv_conf_is_the_one_docker_writes_for_the_client(report: dict[str, Any]) -> None:
    assert report["resolv_conf"] == (
        "nameserver 127.0.0.11\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
    # getent goes through nsswitch: the lab pins `hosts: files dns` (mdns4_minimal would eat .local).
    host_line = report["host_nsswitch_hosts"]
    if "mdns" in host_line:
        print(f"this machine's nsswitch.conf has {host_line!r}: *.local would never reach DNS without the lab's own")


def test_server_runs_as_compose_starts_it(report: dict[str, Any]) -> None:
    out = report["server_output"]
    assert "serving DNS on 172.28.0.53:53 (udp, tcp)" in out, out
    assert "serving DNS on 127.0.0.1:5353 (udp, tcp)" in out, out
    # No --upstream in the compose command: the nameserver of its own resolv.conf is used.
    assert "forwarding other names to 127.0.0.12:53" in out, out
    assert "(polling)" in out, out


def test_healthcheck_fails_before_and_passes_after_start(report: dict[str, Any]) -> None:
    assert report["health_before"]["rc"] != 0, report["health_before"]
    assert report["health_after"]["rc"] == 0, report["health_after"]


@pytest.mark.parametrize("key", list(doc_checks()), ids=[s.command for s in doc_checks().values()])
def test_doc_command_prints_what_the_doc_shows(report: dict[str, Any], key: str) -> None:
    step = doc_checks()[key]
    r = result(report, key)
    assert r["rc"] == 0, show(report, r)
    problem = mismatch(step, r["stdout"])
    assert problem is None, f"docs/compose.md:{step.line}: {problem}\n{show(report, r)}"


def test_live_edit_is_served_within_seconds(report: dict[str, Any]) -> None:
    r = result(report, "live-edit")
    assert r["rc"] == 0, show(report, r)
    assert lines(r) == {report["live_edit_expected"]}, show(report, r)
    assert r["seconds"] < 5, show(report, r)


def test_full_and_partial_names(report: dict[str, Any]) -> None:
    both = {"172.28.0.10 web.default.svc.cluster.local", "172.28.0.11 web.default.svc.cluster.local"}
    for key in ("full-name", "short-svc"):
        r = result(report, key)
        assert r["rc"] == 0 and lines(r) == both, show(report, r)


def test_getaddrinfo_gets_both_replicas(report: dict[str, Any]) -> None:
    r = result(report, "ahosts")
    stream = {line.split()[0] for line in lines(r) if "STREAM" in line}
    assert r["rc"] == 0 and stream == {"172.28.0.10", "172.28.0.11"}, show(report, r)
    assert "web.default.svc.cluster.local" in r["stdout"], "the canonical name is the expanded one"


def test_headless_pod_of_the_seed_labs(report: dict[str, Any]) -> None:
    r = result(report, "headless-pod")
    (line,) = lines(r)
    ip, name = line.split()
    assert name == "pod-a.headless1.default.svc.cluster.local" and ip.startswith("10.244."), show(report, r)


def test_externalname_follows_to_the_upstream_answer(report: dict[str, Any]) -> None:
    r = result(report, "externalname-ahosts")
    assert r["rc"] == 0, show(report, r)
    first = r["stdout"].splitlines()[0].split()
    assert first == ["172.28.0.30", "STREAM", "db.example.test"], show(report, r)
    # clusterdns asked its own upstream (the clusterdns container's embedded DNS) for the target.
    assert any(entry.startswith("db.example.test. A ") for entry in report["clusterdns_embedded_log"])


def test_other_names_are_forwarded(report: dict[str, Any]) -> None:
    r = result(report, "forwarded")
    assert r["rc"] == 0 and lines(r) == {"192.0.2.80 host.example.test"}, show(report, r)
    assert "host.example.test. A" in report["upstream_queries"]


@pytest.mark.parametrize("key", ["nxdomain-cluster", "nxdomain-short", "nxdomain-forwarded"])
def test_missing_names_fail_fast(report: dict[str, Any], key: str) -> None:
    """NXDOMAIN (with the SOA) for every expansion, and from the upstream for the bare name:
    glibc gives up at once with exit code 2, instead of waiting out timeouts."""
    r = result(report, key)
    assert r["rc"] == 2 and not r["stdout"], show(report, r)
    assert r["seconds"] < FAIL_FAST, show(report, r)


def test_dig_uses_the_same_resolv_conf(report: dict[str, Any]) -> None:
    r = result(report, "dig-search")
    assert r["rc"] == 0 and lines(r) == {"172.28.0.10", "172.28.0.11"}, show(report, r)
    r = result(report, "dig-direct")
    assert lines(r) == {"172.28.0.20"}, show(report, r)


def test_nxdomain_carries_the_soa_through_docker(report: dict[str, Any]) -> None:
    r = result(report, "dig-nxdomain")
    assert "status: NXDOMAIN" in r["stdout"], show(report, r)
    assert re.search(r"^cluster\.local\.\s+\d+\s+IN\s+SOA\s+ns\.dns\.cluster\.local\.", r["stdout"], re.M), show(report, r)


def test_ns_record_is_kube_dns_as_in_a_cluster(report: dict[str, Any]) -> None:
    """--ns-address 172.28.0.53 is an endpoint of kube-dns (zones/compose-lab/clusterdns.yaml), so
    the zone's nameserver is kube-dns and ns.dns answers its ClusterIP (plugin/kubernetes/ns.go)."""
    r = result(report, "ns-address")
    assert lines(r) == {"kube-dns.kube-system.svc.cluster.local."}, show(report, r)
    r = result(report, "ns-dns")
    assert lines(r) == {"10.96.0.10"}, show(report, r)
