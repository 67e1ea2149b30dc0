"""k3s's stock Corefile (tests/cases/corefiles/k3s.Corefile) through `clusterdns serve --corefile`:
its NodeHosts `hosts` block, `loadbalance`, the `coredns-custom` imports (a `*.override` spliced
into the main block, a `*.server` block for another zone) and the cluster behind them, answering
as CoreDNS would. Each case names the CoreDNS source whose behaviour it checks. The TTLs follow
how far `cache 30` reaches: it caps the NodeHosts answers (cache comes before hosts, cache.go
WriteMsg), and the `*.server` block, which has no cache of its own, passes its upstream's TTL on."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.config.corefile import corefile_values, load_corefile
from tests.helpers.process import CASES, Server, clusterdns_argv
from tests.helpers.upstream import Upstream

K3S_COREFILE = CASES / "corefiles" / "k3s.Corefile"

# What k3s writes to the ConfigMap `coredns` key NodeHosts: one line per node (k3d's names), and
# k3d's own entry for the Docker host.
NODE_HOSTS = "172.18.0.2 k3d-node-0\n172.18.0.3 k3d-node-1\n172.18.0.1 host.k3d.internal\n"
# ConfigMap `coredns-custom`: `*.override` lines go inside the main block, `*.server` files are
# server blocks of their own (k3s docs, "CoreDNS customization").
OVERRIDE = "log\n"
SERVER = "example.test:53 {{\n    forward . {upstream}\n}}\n"

# A small k3s-looking cluster (service CIDR 10.43.0.0/16, pod CIDR 10.42.0.0/16).
MANIFESTS = """\
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.43.0.10
  ports: [{name: dns, port: 53, protocol: UDP}, {name: dns-tcp, port: 53, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: pool, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: pool, namespace: default}
subsets:
- addresses: [{ip: 10.42.0.11}, {ip: 10.42.0.12}, {ip: 10.42.0.13}]
  ports: [{name: http, port: 80}]
"""

# The upstream `--upstream` puts in place of `forward . /etc/resolv.conf`, and the one the
# `*.server` block forwards example.test to. Both know www.example.test, with different
# addresses, so an answer tells which one was asked.
DEFAULT = [
    "interwebs.test. 60 IN SOA ns.interwebs.test. h.interwebs.test. 1 7200 1800 86400 30",
    "www.interwebs.test. 60 IN A 198.51.100.80",
    "www.example.test. 60 IN A 198.51.100.99",
]
STUB = [
    "example.test. 60 IN SOA ns.example.test. h.example.test. 1 7200 1800 86400 30",
    "www.example.test. 60 IN A 192.0.2.53",
]


def k3s_corefile(root: Path) -> str:
    """The stock Corefile with k3s's /etc/coredns/ (its ConfigMap mounts) moved under `root`."""
    lines = K3S_COREFILE.read_text().splitlines(keepends=True)
    assert sum(line.count("/etc/coredns/") for line in lines if not line.startswith("#")) == 3  # NodeHosts, the two imports
    return "".join(line if line.startswith("#") else line.replace("/etc/coredns/", f"{root}/") for line in lines)


def write_k3s(root: Path, stub: str) -> Path:
    """/etc/coredns as a k3s node has it: Corefile, NodeHosts and custom/ (coredns-custom)."""
    (root / "custom").mkdir(parents=True)
    (root / "NodeHosts").write_text(NODE_HOSTS)
    (root / "custom" / "foo.override").write_text(OVERRIDE)
    (root / "custom" / "bar.server").write_text(SERVER.format(upstream=stub))
    corefile = root / "Corefile"
    corefile.write_text(k3s_corefile(root))
    return corefile


def address(up: Upstream) -> str:
    return f"{up.address[0]}:{up.address[1]}"


def test_k3s_corefile_loads_without_a_warning(tmp_path: Path) -> None:
    corefile = write_k3s(tmp_path, "127.0.0.1:5399")
    values, warnings = load_corefile(str(corefile))
    assert warnings == []
    assert corefile_values(corefile.read_text(), str(corefile)) == (values, warnings)
    assert values["zones"] == ("cluster.local", "in-addr.arpa", "ip6.arpa")
    assert (values["pods"], values["ttl"], values["fallthrough"]) == ("insecure", 5, ("in-addr.arpa", "ip6.arpa"))
    assert values["hosts_file"] == str(tmp_path / "NodeHosts")
    assert (values["hosts_ttl"], values["hosts_reload"], values["hosts_fallthrough"]) == (60, 15.0, (".",))
    assert "upstream" not in values  # forward . /etc/resolv.conf: the default
    assert values["stub_domains"] == (("example.test", "127.0.0.1:5399"),)  # custom/bar.server
    assert values["log_queries"] is True  # custom/foo.override
    assert (values["cache"], values["loop_detect"], values["loadbalance"]) == (30, "on", "round_robin")
    assert (values["reload"], values["reload_jitter"]) == (30.0, 15.0)
    assert values["listen"] == (("127.0.0.1", 53),)


def test_without_coredns_custom_the_imports_match_nothing(tmp_path: Path) -> None:
    """coredns-custom is optional in k3s: an empty glob is a warning, not an error (plugin/import/README.md,
    caddy's parse.go doImport)."""
    corefile = write_k3s(tmp_path, "127.0.0.1:5399")
    for f in (tmp_path / "custom").iterdir():
        f.unlink()
    values, warnings = load_corefile(str(corefile))
    assert [w.split(": ", 1)[1] for w in warnings] == [
        f"No files matching import glob pattern: {tmp_path}/custom/*.override",
        f"No files matching import glob pattern: {tmp_path}/custom/*.server",
    ]
    assert "stub_domains" not in values and values["log_queries"] is False


@dataclass
class K3s:
    server: Server
    default: Upstream
    stub: Upstream


@pytest.fixture(scope="module")
def k3s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K3s]:
    manifests = tmp_path_factory.mktemp("k3s-manifests")
    (manifests / "cluster.yaml").write_text(MANIFESTS)
    with Upstream(DEFAULT) as default, Upstream(STUB) as stub:
        corefile = write_k3s(tmp_path_factory.mktemp("etc-coredns"), address(stub))
        # Flags beat the Corefile: a loopback port for .:53, the mock upstream for
        # `forward . /etc/resolv.conf` (never this machine's resolvers), no HTTP endpoints.
        server = Server(clusterdns_argv(
            "serve", "--corefile", str(corefile), "--manifests", str(manifests), "--listen", "127.0.0.1:0",
            "--upstream", address(default), "--health", "none", "--ready", "none", "--metrics", "none",
            "--service-cidr", "10.43.0.0/16", "--pod-cidr", "10.42.0.0/16",  # k3s's defaults (clusterdns-only settings)
        ))
        try:
            yield K3s(server, default, stub)
        finally:
            server.stop()


@dataclass(frozen=True)
class Case:
    source: str  # the CoreDNS file whose behaviour this is
    qname: str
    qtype: str
    rcode: int
    answer: tuple[str, ...]  # CoreDNS's answer records, "owner ttl type rdata", sorted
    aa: bool | None = None  # the AA flag, when the case pins it
    authority: int | None = None  # how many records in the authority section, when pinned
    asked: str | None = None  # the upstream that must see the question: "default" or "stub"
    orders: int = 0  # loadbalance: distinct answer orders to see over repeated questions


A, NOERROR, NXDOMAIN = "A", dns.rcode.NOERROR, dns.rcode.NXDOMAIN
POOL = tuple(f"pool.default.svc.cluster.local. 5 A 10.42.0.{i}" for i in (11, 12, 13))
# hosts gives `ttl 60`, but `cache 30` runs before hosts (plugin.cfg) and caps the TTL of every
# reply it passes on, not only of what it serves from its store (cache.go ResponseWriter.WriteMsg).

CASES = {
    # Every reply's A records come in a fresh random order: all 3! orders over repeated questions.
    "loadbalance shuffles a multi-address name": Case("plugin/loadbalance/loadbalance.go", "pool.default.svc.cluster.local.", A, NOERROR, POOL,
                                                      orders=6),
    # NodeHosts answers authoritatively, before the cluster, with hosts' `ttl 60` as `cache 30` caps it.
    "NodeHosts name": Case("plugin/hosts/hosts.go, plugin/cache/cache.go", "k3d-node-0.", A, NOERROR, ("k3d-node-0. 30 A 172.18.0.2",), aa=True),
    "NodeHosts name, any case": Case("plugin/hosts/hosts.go, plugin/cache/cache.go", "K3D-Node-1.", A, NOERROR, ("k3d-node-1. 30 A 172.18.0.3",),
                                     aa=True),
    # hosts answers PTR for its addresses in any zone (ahead of kubernetes' in-addr.arpa).
    "NodeHosts PTR": Case("plugin/hosts/hosts.go, plugin/cache/cache.go", "2.0.18.172.in-addr.arpa.", "PTR", NOERROR,
                          ("2.0.18.172.in-addr.arpa. 30 PTR k3d-node-0.",), aa=True),
    # The name has an A record in hosts but no AAAA: NODATA from hosts, with no SOA (hosts has
    # none), not a fall through to the next plugin (otherRecordsExist).
    "NodeHosts name, AAAA: NODATA": Case("plugin/hosts/hosts.go", "k3d-node-0.", "AAAA", NOERROR, (), aa=True, authority=0),
    # Another type goes the same way: no fallthrough_unsupported in k3s's block.
    "NodeHosts name, MX: NODATA": Case("plugin/hosts/hosts.go", "k3d-node-0.", "MX", NOERROR, (), aa=True, authority=0),
    "NodeHosts name, TXT: NODATA": Case("plugin/hosts/hosts.go", "host.k3d.internal.", "TXT", NOERROR, (), aa=True, authority=0),
    # Not in hosts: `fallthrough` hands it on, and kubernetes answers (TTL 5: no `ttl` in k3s's block).
    "Service after hosts": Case("plugin/hosts/hosts.go, plugin/kubernetes/kubernetes.go", "kube-dns.kube-system.svc.cluster.local.", A, NOERROR,
                                ("kube-dns.kube-system.svc.cluster.local. 5 A 10.43.0.10",), aa=True),
    # A PTR hosts does not know always goes on (whatever `fallthrough` says): the Service's.
    "Service PTR after hosts": Case("plugin/hosts/hosts.go, plugin/kubernetes/reverse.go", "10.0.43.10.in-addr.arpa.", "PTR", NOERROR,
                                    ("10.0.43.10.in-addr.arpa. 5 PTR kube-dns.kube-system.svc.cluster.local.",), aa=True),
    # pods insecure: a dashed address answers itself.
    "pods insecure": Case("plugin/kubernetes/kubernetes.go", "10-42-0-7.default.pod.cluster.local.", A, NOERROR,
                          ("10-42-0-7.default.pod.cluster.local. 5 A 10.42.0.7",), aa=True),
    # The *.server block's zone goes to its own upstream (the longest matching block wins), and
    # only there; that block has no `cache`, so the upstream's TTL passes through.
    "stub zone from custom/*.server": Case("core/dnsserver/server.go, plugin/forward/forward.go", "www.example.test.", A, NOERROR,
                                           ("www.example.test. 60 A 192.0.2.53",), aa=False, asked="stub"),
    "stub zone NXDOMAIN": Case("core/dnsserver/server.go, plugin/forward/forward.go", "nothere.example.test.", A, NXDOMAIN, (), authority=1,
                               asked="stub"),
    # Every other name: the main block's forward (here --upstream), through `cache 30`, which
    # caps the TTL of what it stores and of the reply it stores it from.
    "outside name through cache 30": Case("plugin/forward/forward.go, plugin/cache/cache.go", "www.interwebs.test.", A, NOERROR,
                                          ("www.interwebs.test. 30 A 198.51.100.80",), aa=False, asked="default"),
    "outside NXDOMAIN": Case("plugin/forward/forward.go", "nothere.interwebs.test.", A, NXDOMAIN, (), authority=1, asked="default"),
}


def orders(server: Server, qname: str, qtype: str, n: int = 120) -> set[tuple[str, ...]]:
    """The answer orders seen over `n` identical questions."""
    wire = dns.message.make_query(qname, qtype).to_wire()
    seen = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for _ in range(n):
            sock.sendto(wire, (server.host, server.port))
            msg = dns.message.from_wire(sock.recv(65535))
            seen.add(tuple(rd.to_text() for rrset in msg.answer for rd in rrset))
    return seen


def records(msg: dns.message.Message) -> list[tuple[str, int, str, str]]:
    """The answer section as sorted (owner, ttl, type, rdata)."""
    return sorted((str(rrset.name), rrset.ttl, dns.rdatatype.to_text(rrset.rdtype), rd.to_text()) for rrset in msg.answer for rd in rrset)


def test_the_k3s_server_starts_without_a_warning(k3s: K3s) -> None:
    assert k3s.server.wait_for_output(r"forwarding names under example\.test to 127\.0\.0\.1:"), k3s.server.output
    assert k3s.server.wait_for_output(r"answering from hosts .*NodeHosts"), k3s.server.output
    assert "warning" not in k3s.server.output, k3s.server.output


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
def test_k3s_corefile_answers_as_coredns(k3s: K3s, case: Case) -> None:
    ups = {"default": k3s.default, "stub": k3s.stub}
    before = {name: up.asked(case.qname) for name, up in ups.items()}
    msg = k3s.server.query(case.qname, case.qtype)
    after = {name: up.asked(case.qname) for name, up in ups.items()}
    why = f"{case.source}\n{msg.to_text()}"
    want = sorted((owner, int(ttl), rdtype, rdata) for owner, ttl, rdtype, rdata in (rr.split(" ", 3) for rr in case.answer))
    got = records(msg)
    assert msg.rcode() == case.rcode, why
    assert [(o, t, d) for o, _, t, d in got] == [(o, t, d) for o, _, t, d in want], why
    if case.aa is not None:
        assert bool(msg.flags & dns.flags.AA) == case.aa, why
    if case.authority is not None:
        assert sum(len(rrset) for rrset in msg.authority) == case.authority, why
    # Which upstream saw the question (none for the names hosts and kubernetes answer).
    assert {n: after[n] - before[n] for n in ups} == {n: int(n == case.asked) for n in ups}, case.source
    if case.orders:
        seen = orders(k3s.server, case.qname, case.qtype)
        assert all(sorted(order) == sorted(rdata for _, _, _, rdata in want) for order in seen)
        assert len(seen) == case.orders  # 120 draws of 6 orders: a missing one has odds below 1e-8
    ttls = [ttl for _, ttl, _, _ in got]
    assert ttls == [ttl for _, ttl, _, _ in want], why


def test_the_override_logs_queries(k3s: K3s) -> None:
    """custom/foo.override's `log` took effect inside the main block (plugin/log/log.go)."""
    k3s.server.query("kube-dns.kube-system.svc.cluster.local.", "SRV")
    assert k3s.server.wait_for_output(r'"SRV IN kube-dns\.kube-system\.svc\.cluster\.local\. udp '), k3s.server.output
