"""The seed blog labs in zones/, asked with the real `dig` of the real `make run`.

Each lab of the five seed posts (see zones/README.md) must answer the way the post says a
cluster answers. The server is started once for the module exactly as a user starts it,
`make run`, on a kernel-chosen port and with no upstream (nothing here leaves the machine).

Addresses the server assigns itself (auto ClusterIPs, Pod IPs) are not written down here;
the tests check their shape (range, count, uniqueness) and that every name derived from them
agrees. The tour in zones/README.md pins the actual values.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import digout
from tests.helpers.process import ROOT, Server, have_dig

ZONE = "cluster.local"
TTL = 5  # the default --ttl (CoreDNS's default)
SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
DYNAMIC_BAND_START = ipaddress.ip_address("10.96.1.1")  # KEP-3070: the first 256 addresses are the static band
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")
README = ROOT / "zones" / "README.md"


def svc(name: str, ns: str = "default") -> str:
    return f"{name}.{ns}.svc.{ZONE}"


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


@pytest.fixture(scope="module")
def server():
    assert have_dig(), "dig is not installed: `make tools` installs it (bind9-dnsutils)"
    s = Server(["make", "-s", "run", "LISTEN=127.0.0.1:0", "ARGS=--upstream none"])
    yield s
    s.stop()


def short(server: Server, *args: str) -> list[str]:
    """`dig +short ...` as a list of answer lines."""
    return [line.strip() for line in server.dig("+short", *args).splitlines() if line.strip()]


@dataclass
class Reply:
    """dig's full output: header status and flags, and each section's records as token lists."""

    text: str
    status: str = ""
    flags: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    sections: dict[str, list[list[str]]] = field(default_factory=dict)

    def records(self, section: str = "ANSWER", rtype: str | None = None) -> list[list[str]]:
        rows = self.sections.get(section, [])
        return [r for r in rows if rtype is None or r[3] == rtype]

    def rdata(self, section: str = "ANSWER", rtype: str | None = None) -> list[str]:
        return [" ".join(r[4:]) for r in self.records(section, rtype)]


def full(server: Server, *args: str) -> Reply:
    text = server.dig(*args)
    reply = Reply(text)
    header = re.search(r"->>HEADER<<- opcode: \w+, status: (\w+)", text)
    assert header, f"no header in dig output:\n{text}"
    reply.status = header.group(1)
    flags = re.search(r";; flags:([^;]*);(.*)", text)
    assert flags, f"no flags line in dig output:\n{text}"
    reply.flags = set(flags.group(1).split())
    reply.counts = {k: int(v) for k, v in re.findall(r"(QUERY|ANSWER|AUTHORITY|ADDITIONAL): (\d+)", flags.group(2))}
    current = None
    for line in text.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            current = m.group(1)
            reply.sections[current] = []
        elif not line.strip() or line.startswith(";"):
            if not line.strip():
                current = None
        elif current:
            reply.sections[current].append(line.split())
    return reply


def in_service_cidr(ip: str) -> bool:
    return ipaddress.ip_address(ip) in SERVICE_CIDR


def in_pod_cidr(ip: str) -> bool:
    return ipaddress.ip_address(ip) in POD_CIDR


# (query name, type, the exact answer set of `dig +short`, lab)
FIXED = [
    # post 000, lab 2: a headless Service's SRV targets its Pods by hostname, on the targetPort (C6)
    (svc("headless1"), "SRV", {f"0 50 8080 pod-a.{svc('headless1')}.", f"0 50 8080 pod-b.{svc('headless1')}."}),
    # post 000, lab 4: hand-written Endpoints naming pod9's fixed IP
    (f"10-244-9-9.{svc('endpoint2')}", "A", {"10.244.9.9"}),
    # post 000, lab 5: an Endpoints address outside the cluster
    (f"185-199-110-153.{svc('endpoint3')}", "A", {"185.199.110.153"}),
    # a ClusterIP Service's bare SRV: one record per port, named or not, aimed at the Service (C5)
    (svc("endpoint2"), "SRV", {f"0 100 8080 {svc('endpoint2')}."}),
    # post 000, lab 6 / post 001 / post 003 / post 004: ExternalName is a CNAME
    (svc("externalname1"), "CNAME", {"github.github.io."}),
    (svc("external-db"), "CNAME", {"db.external.com."}),
    (svc("external-service", "lab-externalname"), "CNAME", {"someapi.somecompany.com."}),
    (svc("dns-externalname-svc"), "CNAME", {"k8s.service.com."}),
    # post 001: fixed ClusterIPs outside 10.96.0.0/12, served as written
    (svc("myclusterip"), "A", {"10.233.10.10"}),
    (svc("myloadbalance"), "A", {"10.233.10.100"}),
    ("MyClusterIP.Default.SVC.Cluster.Local", "A", {"10.233.10.10"}),  # names ignore case (spec S1)
    # post 003: selector-less Service with two hand-written endpoints
    (f"11-11-11-11.{svc('external-service')}", "A", {"11.11.11.11"}),
    (f"22-22-22-22.{svc('external-service')}", "A", {"22.22.22.22"}),
    # post 004: Endpoints for externalname-svc-httpd, and a named NodePort port
    (f"10-65-40-20.{svc('externalname-svc-httpd')}", "A", {"10.65.40.20"}),
    (f"_http._tcp.{svc('nginx-nodeport-svc')}", "SRV", {f"0 100 80 {svc('nginx-nodeport-svc')}."}),
    # every kubeadm cluster: kube-dns and kubernetes
    (svc("kube-dns", "kube-system"), "A", {"10.96.0.10"}),
    (svc("kubernetes"), "A", {"10.96.0.1"}),
    (f"_dns._udp.{svc('kube-dns', 'kube-system')}", "SRV", {f"0 100 53 {svc('kube-dns', 'kube-system')}."}),
    (f"_dns-tcp._tcp.{svc('kube-dns', 'kube-system')}", "SRV", {f"0 100 53 {svc('kube-dns', 'kube-system')}."}),
    (f"_metrics._tcp.{svc('kube-dns', 'kube-system')}", "SRV", {f"0 100 9153 {svc('kube-dns', 'kube-system')}."}),
    (f"_https._tcp.{svc('kubernetes')}", "SRV", {f"0 100 443 {svc('kubernetes')}."}),
    # reverse names of the fixed addresses (ClusterIPs, then endpoint addresses)
    ("10.10.233.10.in-addr.arpa", "PTR", {f"{svc('myclusterip')}."}),
    ("100.10.233.10.in-addr.arpa", "PTR", {f"{svc('myloadbalance')}."}),
    ("10.0.96.10.in-addr.arpa", "PTR", {f"{svc('kube-dns', 'kube-system')}."}),
    ("1.0.96.10.in-addr.arpa", "PTR", {f"{svc('kubernetes')}."}),
    ("153.110.199.185.in-addr.arpa", "PTR", {f"185-199-110-153.{svc('endpoint3')}."}),
    ("11.11.11.11.in-addr.arpa", "PTR", {f"11-11-11-11.{svc('external-service')}."}),
    ("9.9.244.10.in-addr.arpa", "PTR", {f"10-244-9-9.{svc('endpoint2')}."}),
    # pod records (kubeadm's `pods insecure`, our default)
    (f"10-244-9-9.default.pod.{ZONE}", "A", {"10.244.9.9"}),
    # the schema version
    (f"dns-version.{ZONE}", "TXT", {'"1.1.0"'}),
    # `make run`'s --external-zone example.org (CoreDNS k8s_external): post 001's LoadBalancer by
    # its status.loadBalancer address, post 004's externalIPs
    ("myloadbalance.default.example.org", "A", {"203.0.113.100"}),
    ("externalip-svc.default.example.org", "A", {"192.168.0.101"}),
]


@pytest.mark.parametrize(("name", "qtype", "expected"), FIXED, ids=[f"{n} {t}" for n, t, _ in FIXED])
def test_fixed_answers(server: Server, name: str, qtype: str, expected: set[str]) -> None:
    answer = short(server, name, qtype)
    assert set(answer) == expected and len(answer) == len(expected), f"dig {name} {qtype}: {answer}"


def test_reverse_lookup_of_fixed_clusterip_with_dig_x(server: Server) -> None:
    """Post 001's fixed ClusterIP, as `dig -x 10.233.10.10` asks it."""
    assert short(server, "-x", "10.233.10.10") == [f"{svc('myclusterip')}."]


AUTO_CLUSTERIP = [
    "clusterip1",  # post 000 lab 1
    "endpoint1",  # post 000 lab 3
    "endpoint2",  # post 000 lab 4 (no selector)
    "endpoint3",  # post 000 lab 5 (no selector): its A is its ClusterIP, not 185.199.110.153
    "mycluster",  # post 001 1-1
    "my-nodeport",  # post 001 NodePort
    "external-service",  # post 003 (no selector): its A is its ClusterIP, not 11.11.11.11
    "nginx-svc",  # post 004
    "nginx-nodeport-svc",  # post 004 NodePort
    "externalname-svc-httpd",  # post 004 (no selector)
    "externalip-svc",  # post 004: externalIPs are not published, the ClusterIP is
]


@pytest.mark.parametrize("name", AUTO_CLUSTERIP)
def test_auto_clusterip(server: Server, name: str) -> None:
    first = short(server, svc(name), "A")
    assert len(first) == 1, f"{name}: expected one ClusterIP, got {first}"
    ip = first[0]
    assert in_service_cidr(ip), f"{name}: {ip} is outside {SERVICE_CIDR}"
    assert ip not in ("10.96.0.1", "10.96.0.10"), f"{name}: got a reserved address {ip}"
    assert ipaddress.ip_address(ip) >= DYNAMIC_BAND_START, f"{name}: {ip} is in the static band (KEP-3070)"
    assert short(server, svc(name), "A") == first, f"{name}: a second query answered differently"
    assert short(server, "-x", ip) == [f"{svc(name)}."], f"{name}: PTR of its ClusterIP {ip}"


def test_auto_clusterips_are_distinct(server: Server) -> None:
    ips = {name: short(server, svc(name), "A")[0] for name in AUTO_CLUSTERIP}
    assert len(set(ips.values())) == len(ips), f"two Services share a ClusterIP: {ips}"
    assert not set(ips.values()) & {"10.233.10.10", "10.233.10.100", "10.96.0.1", "10.96.0.10"}


def test_externalip_is_not_published(server: Server) -> None:
    """Post 004: externalIPs 192.168.0.101 is for node traffic; cluster DNS answers the ClusterIP."""
    assert "192.168.0.101" not in short(server, svc("externalip-svc"), "A")
    assert short(server, "-x", "192.168.0.101") == []


def test_headless1_hostname_and_subdomain(server: Server) -> None:
    """Post 000 lab 2: pod4 (hostname pod-a) and pod5 (pod-b), subdomain headless1."""
    both = short(server, svc("headless1"), "A")
    assert len(both) == 2 and len(set(both)) == 2, both
    assert all(in_pod_cidr(ip) for ip in both), both
    pod_a = short(server, f"pod-a.{svc('headless1')}", "A")
    pod_b = short(server, f"pod-b.{svc('headless1')}", "A")
    assert len(pod_a) == 1 and len(pod_b) == 1, (pod_a, pod_b)
    assert {pod_a[0], pod_b[0]} == set(both)
    assert short(server, "-x", pod_a[0]) == [f"pod-a.{svc('headless1')}."]
    assert short(server, "-x", pod_b[0]) == [f"pod-b.{svc('headless1')}."]
    # with a hostname, the endpoint is named by it, not by its dashed IP
    assert short(server, f"{dashed(pod_a[0])}.{svc('headless1')}", "A") == []


def test_myhead_answers_the_three_mydp_pods(server: Server) -> None:
    """Post 001: `dig myhead.default.svc.cluster.local` gives the 3 Pods of Deployment mydp
    (the second mydp, in namespace lab-myhead, is not selected from default)."""
    pods = short(server, svc("myhead"), "A")
    assert len(pods) == 3 and len(set(pods)) == 3, pods
    assert all(in_pod_cidr(ip) for ip in pods), pods
    for ip in pods:
        # the same Pods are the endpoints of every app=webui Service of the post (CoreDNS C7)
        for name in ("myhead", "mycluster", "myclusterip", "my-nodeport", "myloadbalance"):
            assert short(server, f"{dashed(ip)}.{svc(name)}", "A") == [ip], f"{dashed(ip)}.{svc(name)}"
        assert f"{dashed(ip)}.{svc('myhead')}." in short(server, "-x", ip)


def test_headless_svc_answers_the_two_nginx_pods(server: Server) -> None:
    """Post 004: `nslookup headless-svc` gives the 2 Pods of `kubectl create deployment nginx` scaled to 2."""
    pods = short(server, svc("headless-svc"), "A")
    assert len(pods) == 2 and len(set(pods)) == 2, pods
    assert all(in_pod_cidr(ip) for ip in pods), pods
    assert not set(pods) & set(short(server, svc("myhead"), "A")), "nginx and mydp Pods share an IP"
    srv = short(server, f"_nginx._tcp.{svc('headless-svc')}", "SRV")
    assert sorted(srv) == sorted(f"0 50 80 {dashed(ip)}.{svc('headless-svc')}." for ip in pods)
    for ip in pods:
        for name in ("headless-svc", "nginx-svc", "nginx-nodeport-svc", "externalip-svc"):
            assert short(server, f"{dashed(ip)}.{svc(name)}", "A") == [ip], f"{dashed(ip)}.{svc(name)}"


@pytest.mark.parametrize("ordinal", [0, 1, 2])
def test_cassandra_pod_names(server: Server, ordinal: int) -> None:
    """Post 001: cassandra-<n>.cassandra.default.svc.cluster.local, one address each."""
    name = f"cassandra-{ordinal}.{svc('cassandra')}"
    ip = short(server, name, "A")
    assert len(ip) == 1 and in_pod_cidr(ip[0]), f"{name}: {ip}"
    assert short(server, "-x", ip[0]) == [f"{name}."]


def test_cassandra_service_and_srv(server: Server) -> None:
    """The headless Service answers all 3 StatefulSet Pods; its unnamed port 9042 shows in the bare SRV."""
    pods = short(server, svc("cassandra"), "A")
    per_pod = {short(server, f"cassandra-{n}.{svc('cassandra')}", "A")[0] for n in range(3)}
    assert len(pods) == 3 and set(pods) == per_pod
    srv = short(server, svc("cassandra"), "SRV")
    assert sorted(srv) == sorted(f"0 33 9042 cassandra-{n}.{svc('cassandra')}." for n in range(3))
    assert short(server, f"cassandra-3.{svc('cassandra')}", "A") == []


def soa_ok(reply: Reply) -> None:
    soa = reply.records("AUTHORITY", "SOA")
    assert len(soa) == 1, reply.text
    owner, ttl, _cls, _type, mname, rname, serial, refresh, retry, expire, minimum = soa[0]
    assert (owner, mname, rname) == (f"{ZONE}.", f"ns.dns.{ZONE}.", f"hostmaster.{ZONE}."), reply.text
    assert serial.isdigit() and (refresh, retry, expire) == ("7200", "1800", "86400"), reply.text
    assert int(ttl) == min(TTL, 300) and int(minimum) == TTL, reply.text


def test_clusterip_answer_flags(server: Server) -> None:
    reply = full(server, svc("clusterip1"), "A")
    assert reply.status == "NOERROR"
    assert reply.flags == {"qr", "aa", "rd"}, reply.text  # authoritative, no recursion offered
    [record] = reply.records("ANSWER")
    assert record[:4] == [f"{svc('clusterip1')}.", str(TTL), "IN", "A"] and in_service_cidr(record[4])


NXDOMAIN = [
    svc("nope"),  # no such Service
    svc("myex"),  # post 001 digs myex, but writes no manifest for it
    svc("clusterip1", "lab-headless"),  # the Service is in default only
    f"x.{svc('externalname1')}",  # nothing lives under an ExternalName (CoreDNS C3)
    f"_9042._tcp.{svc('cassandra')}",  # unnamed ports get no SRV name (spec S6)
    f"cassandra-3.{svc('cassandra')}",  # replicas: 3 means ordinals 0..2
]


@pytest.mark.parametrize("name", NXDOMAIN)
def test_nxdomain_with_soa(server: Server, name: str) -> None:
    reply = full(server, name, "A")
    assert reply.status == "NXDOMAIN", reply.text
    assert "aa" in reply.flags and "ra" not in reply.flags, reply.text
    assert reply.counts["ANSWER"] == 0, reply.text
    soa_ok(reply)


NODATA = [
    (svc("clusterip1"), "AAAA"),  # IPv4-only ClusterIP
    (svc("headless1"), "AAAA"),  # IPv4-only Pods
    (svc("myclusterip"), "TXT"),
    (svc("externalname1"), "SRV"),  # SRV on an ExternalName name returns nothing (C10)
    ("lab-externalname.svc." + ZONE, "A"),  # namespaces from Namespace manifests exist
    ("lab-headless.svc." + ZONE, "A"),
    ("lab-myhead.svc." + ZONE, "A"),
]


@pytest.mark.parametrize(("name", "qtype"), NODATA, ids=[f"{n} {t}" for n, t in NODATA])
def test_nodata_with_soa(server: Server, name: str, qtype: str) -> None:
    reply = full(server, name, qtype)
    assert reply.status == "NOERROR", reply.text
    assert reply.counts["ANSWER"] == 0, reply.text
    soa_ok(reply)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        (svc("externalname1"), "github.github.io."),
        (svc("external-db"), "db.external.com."),
        (svc("external-service", "lab-externalname"), "someapi.somecompany.com."),
        (svc("dns-externalname-svc"), "k8s.service.com."),
    ],
)
def test_externalname_a_query_answers_the_cname_first(server: Server, name: str, target: str) -> None:
    """`dig <externalname> A` (what curl's resolver asks): the CNAME comes first. With
    --upstream none the target cannot be chased, so only the CNAME line is checked."""
    reply = full(server, name, "A")
    answers = reply.records("ANSWER")
    assert answers, reply.text
    assert answers[0][0] == f"{name}." and answers[0][3:] == ["CNAME", target], reply.text


TOUR_PREFIX = "dig @127.0.0.1 -p 5353 "


@dataclass
class TourStep:
    command: str  # the dig arguments after `dig @127.0.0.1 -p 5353`
    expected: list[str]


def tour_steps(readme: Path = README) -> list[TourStep]:
    """The `$ dig @127.0.0.1 -p 5353 ...` commands of the `## Tour` section and the lines after each."""
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"^## Tour\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"{readme}: no '## Tour' section"
    steps: list[TourStep] = []
    for cmd, expected, _ in digout.shell_steps(m.group(1)):
        assert cmd.startswith(TOUR_PREFIX), f"tour command not against 127.0.0.1:5353: {cmd}"
        steps.append(TourStep(cmd[len(TOUR_PREFIX) :], expected))
    return steps


TOUR = tour_steps(README) + tour_steps(ROOT / "README.md")


def test_tour_exists() -> None:
    assert len(TOUR) >= 10, "zones/README.md needs a '## Tour' of dig commands"
    assert all(step.expected for step in TOUR), [s.command for s in TOUR if not s.expected]


@pytest.mark.parametrize("step", TOUR, ids=[s.command for s in TOUR])
def test_tour(server: Server, step: TourStep) -> None:
    """Every tour command prints the lines the README shows (in any order).

    Answer lines must match exactly one for one. dig's `;` comment lines may be left out of the
    README, but the ones it shows must be printed.
    """
    output = server.dig(*shlex.split(step.command))
    problem = digout.mismatch(step.expected, output)
    assert problem is None, f"dig {step.command}: {problem}, got\n{output}"


def test_tour_matching_catches_missing_extra_and_changed_lines() -> None:
    output = ";; flags: qr aa rd; QUERY: 1, ANSWER: 1\nweb.default.svc.cluster.local. 5 IN A 10.96.0.10\n"
    assert digout.mismatch([";; flags: qr aa ...", "web.default.svc.cluster.local. 5 IN  A 10.96.0.10"], output) is None
    assert digout.mismatch(["web.default.svc.cluster.local. 5 IN A 10.96.0.11"], output) == "expected 'web.default.svc.cluster.local. 5 IN A 10.96.0.11'"
    assert digout.mismatch([], output) is not None and "does not show" in digout.mismatch([], output)  # type: ignore[operator]
    assert digout.mismatch([";; WARNING: ...", "web.default.svc.cluster.local. 5 IN A 10.96.0.10"], output) == "no line like ';; WARNING: ...'"
