"""`clusterdns compare` without servers: the questions it asks (from a snapshot, and the probes
around them), how it normalises two replies before comparing them, and `--list`. The runs
against two real servers are in tests/e2e/test_compare.py.

The dump fixture (tests/clusters/kubectl-dump-compare/) is `kubectl get ... -A -o yaml` of a kind
cluster, served with kubeadm's CoreDNS values (--pods insecure --ttl 30), as docs/compare.md
tells a user to do before comparing with the cluster's own CoreDNS.
"""

from __future__ import annotations

import dns.message
import dns.rdatatype
import pytest

from clusterdns import cli
from clusterdns.codes import NOERROR
from clusterdns.config.settings import Config
from clusterdns.names import split
from clusterdns.resolver import resolve
from clusterdns.tools import compare, questions
from clusterdns.tools.offline import load_snapshot
from tests.helpers.process import ROOT, closed_port

DUMP = ROOT / "tests" / "clusters" / "kubectl-dump-compare"
KUBEADM = ["--zone", "cluster.local", "--zone", "in-addr.arpa", "--zone", "ip6.arpa", "--pods", "insecure", "--ttl", "30"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(["compare", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_list_asks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--against", f"127.0.0.1:{closed_port()[1]}", "--manifests", str(DUMP), *KUBEADM, "--list")
    assert code == 0
    lines = out.splitlines()
    for q in ("web.shop.svc.cluster.local. A", "_pg._tcp.db.shop.svc.cluster.local. SRV", "12.44.96.10.in-addr.arpa. PTR",
              "payments.shop.svc.cluster.local. CNAME", "cluster.local. SOA", "cluster.local. NS",
              "clusterdns-compare-probe.web.shop.svc.cluster.local. A", "_tcp.web.shop.svc.cluster.local. SRV",
              "web.shop.svc.cluster.local.shop.svc.cluster.local. A", "web.shop.svc.cluster.local. TXT",
              "clusterdns-compare-probe.clusterdns-compare-probe-ns.svc.cluster.local. A", "10-244-0-7.shop.pod.cluster.local. A"):
        assert q in lines, q
    # An out-of-zone ExternalName target is the upstream's business: its A is not asked.
    assert "payments.shop.svc.cluster.local. A" not in lines


def test_generated_questions_classify() -> None:
    config = Config(manifests=str(DUMP), pods="insecure", ttl=30)
    snap = load_snapshot(config)
    everything = questions.questions_from_snapshot(snap, config)
    positive = questions.questions_from_snapshot(snap, config, positive_only=True)
    assert set(positive) < set(everything)
    for q in positive:
        answer = resolve(snap, split(q.qname), dns.rdatatype.from_text(q.qtype))
        assert answer is not None and answer.rcode == NOERROR and answer.answer, q
    negatives = set(everything) - set(positive)
    assert questions.AskedQuestion("clusterdns-compare-probe.web.shop.svc.cluster.local.", "A") in negatives
    zone = questions.questions_from_snapshot(snap, config, positive_only=True, zone_records=True)
    # What a zone transfer carries: no endpoint names under a ClusterIP Service, no PTRs.
    assert questions.AskedQuestion("db-0.db.shop.svc.cluster.local.", "A") in zone
    assert questions.AskedQuestion("10-244-0-7.web.shop.svc.cluster.local.", "A") not in zone
    assert not [q for q in zone if q.qtype == "PTR"]


REPLY = """id 1
opcode QUERY
rcode NOERROR
flags QR AA RD
;QUESTION
web.shop.svc.cluster.local. IN SRV
;ANSWER
Web.Shop.svc.cluster.local. {ttl} IN SRV 0 {weight} 80 web.shop.svc.cluster.local.
;AUTHORITY
cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. {serial} 7200 1800 86400 5
;ADDITIONAL
"""


def test_normalise_ignores_ttl_serial_case_unless_asked() -> None:
    one = dns.message.from_text(REPLY.format(ttl=5, weight=50, serial=1))
    two = dns.message.from_text(REPLY.format(ttl=30, weight=50, serial=2).replace("Web.Shop", "web.shop"))
    opts = compare.Options()
    assert compare.normalise(one, False, opts) == compare.normalise(two, False, opts)
    assert compare.normalise(one, False, opts).differences(compare.normalise(two, False, opts)) == []
    strict = compare.Options(ttl_sensitive=True)
    lines = compare.normalise(one, False, strict).differences(compare.normalise(two, False, strict))
    assert lines == ["  answer:", "    - web.shop.svc.cluster.local. 5 in srv 0 50 80 web.shop.svc.cluster.local.",
                     "    + web.shop.svc.cluster.local. 30 in srv 0 50 80 web.shop.svc.cluster.local."]
    heavy = dns.message.from_text(REPLY.format(ttl=5, weight=100, serial=1))
    assert compare.normalise(one, False, opts) != compare.normalise(heavy, False, opts)
    loose = compare.Options(ignore_srv_weight=True)
    assert compare.normalise(one, False, loose) == compare.normalise(heavy, False, loose)
    # TC seen on the UDP reply counts even though the compared reply came over TCP.
    assert compare.normalise(one, True, opts).flags == ("aa", "tc")
    assert compare.normalise(one, True, compare.Options(positive_only=True)).flags == ("aa",)
    assert set(compare.normalise(one, False, compare.Options(positive_only=True)).sections) == {"answer"}


def test_unused_reverse_names() -> None:
    assert questions._unused_reverse_name("in-addr.arpa") == "254.254.254.254.in-addr.arpa"
    assert questions._unused_reverse_name("10.in-addr.arpa") == "254.254.254.10.in-addr.arpa"
    assert questions._unused_reverse_name("8.b.d.0.1.0.0.2.ip6.arpa").count(".") == 33
