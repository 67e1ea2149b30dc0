"""`clusterdns serve --corefile`: CoreDNS's Corefile (the subset in docs/corefile.md) mapped onto
the settings, below flags, CLUSTERDNS_* variables and --config in precedence."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.rdatatype
import pytest

from clusterdns.errors import ConfigError
from tests.helpers.cases import DATA, FIXTURE, PROFILES, ask, check, check_transfer, interwebs
from tests.helpers.process import CASES, ROOT, Server, ServerPool, clusterdns_argv, config_of

KUBEADM_COREFILE = CASES / "corefiles" / "kubeadm.Corefile"


def kubeadm_corefile() -> str:
    """kubeadm's stock Corefile (tests/cases/README.md)."""
    return KUBEADM_COREFILE.read_text()


def with_manifests(corefile: str, directory: Path | str) -> str:
    """The stock Corefile plus our own `manifests DIR` inside the kubernetes block."""
    out, n = re.subn(r"(\n(\s*)ttl 30\n)", rf"\1\2manifests {directory}\n", corefile)
    assert n == 1
    return out


def write(tmp_path: Path, text: str, name: str = "Corefile") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_kubeadm_corefile_serves(tmp_path: Path) -> None:
    """The real CLI with the stock Corefile (plus `manifests`): TTL 30, pods insecure."""
    corefile = write(tmp_path, with_manifests(kubeadm_corefile(), ROOT / "zones"))
    server = Server(clusterdns_argv(
        "serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0",
        "--health", "none", "--ready", "none", "--metrics", "none",
        "--loop-detect", "off",  # no probing of this machine's resolv.conf upstreams from a test
    ))
    try:
        msg = server.query("kube-dns.kube-system.svc.cluster.local", "A")
        assert msg.rcode() == 0 and msg.answer, msg.to_text()
        assert msg.answer[0].ttl == 30
        # pods insecure: any dashed address in a namespace answers, Pod or not
        msg = server.query("10-244-77-7.default.pod.cluster.local", "A")
        assert [(rrset.ttl, rd.address) for rrset in msg.answer for rd in rrset] == [(30, "10.244.77.7")], msg.to_text()
        assert msg.answer[0].rdtype == dns.rdatatype.A
        assert f"{corefile}:16" not in server.output and f"{corefile}:17" not in server.output  # reload, loadbalance: implemented, no warning
    finally:
        server.stop()


COREFILE_PROFILES = [name for name, p in DATA["profiles"].items() if "corefile" in p]
MOCK = "127.0.0.1:5300"


def profile_corefile(name: str, upstream: str = MOCK) -> str:
    return DATA["profiles"][name]["corefile"].replace("<mock-upstream-interwebs>", upstream)


@pytest.fixture(scope="module")
def corefile_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    """One server per profile, started from the profile's Corefile (plus --manifests and,
    for the transfer profiles, --ns-address as flags: what the Corefile cannot say)."""

    def argv(profile: str, pool: ServerPool) -> list[str]:
        upstream = interwebs(pool) if profile == "unit-upstream" else MOCK
        path = tmp_path_factory.mktemp(profile) / "Corefile"
        path.write_text(profile_corefile(profile, upstream))
        flags = PROFILES[profile]
        ns = [x for i, f in enumerate(flags) if f == "--ns-address" for x in (f, flags[i + 1])]
        return clusterdns_argv("serve", "--corefile", str(path), "--manifests", str(FIXTURE), "--listen", "127.0.0.1:0", *ns)

    pool = ServerPool(argv)
    yield pool
    pool.close()


def corefile_cases() -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in DATA["cases"] if case.get("config", "default") in COREFILE_PROFILES]


@pytest.mark.parametrize("case", corefile_cases())
def test_profile_corefile_serves_its_cases(corefile_servers: Any, case: dict) -> None:
    """CoreDNS's own cases, against servers configured by the Corefiles CoreDNS would run."""
    server = corefile_servers(case.get("config", "default"))
    if case["qtype"] in ("AXFR", "IXFR") and case.get("transport", "tcp") == "tcp":
        check_transfer(server, case)
        return
    check(ask(server, case, tcp=case.get("transport") == "tcp"), case)


def test_unsupported_plugin_names_its_line(tmp_path: Path) -> None:
    lines = ["# line 1", ".:53 {", "    errors", "    health", "    ready", "    kubernetes cluster.local {",
             "        pods insecure", "    }", "    prometheus :9153", "    forward . 10.0.0.2", "    cache 30",
             "    dnssec", "}"]
    corefile = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=re.escape(f'{corefile}:12: plugin "dnssec" is not supported by clusterdns')):
        config_of("--corefile", str(corefile))
    # and from the real command, as one line on stderr and exit status 2
    run = subprocess.run(clusterdns_argv("serve", "--corefile", str(corefile)), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2
    assert f'clusterdns: {corefile}:12: plugin "dnssec" is not supported by clusterdns' in run.stderr


def test_flag_beats_corefile_in_a_running_server(tmp_path: Path) -> None:
    corefile = write(tmp_path, f"cluster.local:1 {{\n    kubernetes {{\n        ttl 30\n        manifests {FIXTURE}\n    }}\n}}\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile), "--listen", "127.0.0.1:0", "--ttl", "11"))
    try:
        msg = server.query("svc1.testns.svc.cluster.local", "A")
        assert [rrset.ttl for rrset in msg.answer] == [11], msg.to_text()
    finally:
        server.stop()
