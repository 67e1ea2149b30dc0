"""`rewrite name` through `clusterdns serve`: the chain answers the new name and the client gets
its own question back, with owner names mapped back where CoreDNS maps them
(plugin/rewrite/README.md; name.go, reverter.go)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.helpers.process import UNIT_FIXTURE, Server, clusterdns_argv
from tests.helpers.upstream import Upstream

SVC1 = "10.0.0.1"  # svc1.testns in the unit fixture


def corefile(tmp_path: Path, rules: str, upstream: str = "") -> Path:
    path = tmp_path / "Corefile"
    forward = f"    forward . {upstream}\n" if upstream else ""
    path.write_text(f".:53 {{\n{rules}    kubernetes cluster.local {{\n        manifests {UNIT_FIXTURE}\n    }}\n{forward}}}\n")
    return path


def records(msg: dns.message.Message) -> list[str]:
    return [f"{rrset.name} {rd}" for rrset in msg.answer for rd in rrset]


# (rule, question, answer records, CoreDNS file that says so)
CASES = [
    # exact is always auto: the owner is mapped back (TestRewriteNameExactAnswer)
    ("name api.example.com svc1.testns.svc.cluster.local", "api.example.com.", [f"api.example.com. {SVC1}"]),
    # Matching ignores case. The owner comes back as the client spelled it: CoreDNS writes the
    # lower-cased name, dnspython's compression points it at the question (docs/corefile.md).
    ("name exact API.Example.com svc1.testns.svc.cluster.local", "api.EXAMPLE.com.", [f"api.EXAMPLE.com. {SVC1}"]),
    # suffix with answer auto (TestRewriteNamePrefixSuffixAutoAnswer)
    ("name suffix .example.com .testns.svc.cluster.local answer auto", "svc1.example.com.", [f"svc1.example.com. {SVC1}"]),
    # without answer auto the owner stays the rewritten name (TestRewriteNamePrefixSuffixNoAutoAnswer)
    ("name suffix .example.com .testns.svc.cluster.local", "svc1.example.com.", [f"svc1.testns.svc.cluster.local. {SVC1}"]),
    # regex with groups and an answer name rule (TestRewriteNameRegexAnswer)
    (r"name regex (.*)\.corp\.test {1}.testns.svc.cluster.local answer name (.*)\.testns\.svc\.cluster\.local {1}.corp.test",
     "svc1.corp.test.", [f"svc1.corp.test. {SVC1}"]),
]


@pytest.mark.parametrize(("rule", "qname", "want"), CASES)
def test_rewrite_rules_in_a_corefile(tmp_path: Path, rule: str, qname: str, want: list[str]) -> None:
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile(tmp_path, f"    rewrite {rule}\n")), "--listen", "127.0.0.1:0"))
    try:
        for _ in range(2):  # the second is the listener's kept reply
            msg = server.query(qname, "A")
            assert msg.rcode() == dns.rcode.NOERROR
            assert msg.question[0].name.to_text() == qname  # the client's question, as it was spelled
            assert records(msg) == want
            assert msg.flags & dns.flags.AA
    finally:
        server.stop()


def test_rewrite_flag_and_forwarded_names() -> None:
    """A name rewritten to one outside our zones goes upstream under its new name."""
    with Upstream(["www.interwebs.test. 60 IN A 192.0.2.80"]) as up:
        server = Server(clusterdns_argv(
            "serve", "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0", "--upstream", f"{up.address[0]}:{up.address[1]}",
            "--rewrite", "name suffix .corp.test .interwebs.test answer auto"))
        try:
            msg = server.query("www.corp.test.", "A")
            assert records(msg) == ["www.corp.test. 192.0.2.80"]
            assert up.asked("www.interwebs.test.") == 1 and up.asked("www.corp.test.") == 0
        finally:
            server.stop()


def test_a_rule_that_makes_an_invalid_name_answers_servfail(tmp_path: Path) -> None:
    """rewrite.go ServeDNS: an invalid name after rewrite is SERVFAIL with the question restored."""
    rule = "    rewrite name regex (.*)\\.bad\\.test {1}..x\n"
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile(tmp_path, rule)), "--listen", "127.0.0.1:0"))
    try:
        msg = server.query("a.bad.test.", "A")
        assert msg.rcode() == dns.rcode.SERVFAIL and msg.question[0].name.to_text() == "a.bad.test."
    finally:
        server.stop()


def test_a_bad_rule_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = corefile(tmp_path, "    rewrite name a.com\n")
    done = subprocess.run(clusterdns_argv("serve", "--corefile", str(path), "--listen", "127.0.0.1:0"), capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert f"{path}:2: rewrite: too few arguments for a name rule" in done.stderr


def test_an_answer_to_a_rewritten_question_does_not_answer_that_name_for_others(tmp_path: Path) -> None:
    """CoreDNS runs the rules on every query (rewrite.go ServeDNS), and its cache sits before
    rewrite, keyed by the client's question. So a client asking the name a rule made for
    another client still goes through the rules: here a second rule sends it elsewhere."""
    rules = ("    rewrite name exact api.example.com svc1.testns.svc.cluster.local\n"
             "    rewrite name exact svc1.testns.svc.cluster.local svc-dual-stack.testns.svc.cluster.local\n")
    server = Server(clusterdns_argv("serve", "--corefile", str(corefile(tmp_path, rules)), "--listen", "127.0.0.1:0"))
    try:
        assert records(server.query("api.example.com.", "A")) == [f"api.example.com. {SVC1}"]
        for _ in range(2):
            direct = server.query("svc1.testns.svc.cluster.local.", "A")
            assert records(direct) == ["svc1.testns.svc.cluster.local. 10.0.0.3"], "the second rule, every time"
    finally:
        server.stop()
