"""/health, /ready, /metrics and /status of a real server, and `clusterdns status`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import digout
from tests.helpers.process import QUIET_HTTP, ROOT, UNIT_FIXTURE, Server, clusterdns_argv, free_port, udp_ports_of, udp_sockets, wait_until

FIXTURE = UNIT_FIXTURE
OPS = ["--health", "127.0.0.1:0", "--ready", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]


def endpoint(server: Server, what: str) -> str:
    assert server.wait_for_output(rf"{what} on http://\S+")
    return re.search(rf"{what} on (http://\S+)", server.output).group(1)  # type: ignore[union-attr]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: dict, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (at least one must exist:
    a metric that vanished is not a zero)."""
    want = set(labels.items())
    hits = [v for (n, ls), v in metrics.items() if n == name and want <= ls]
    assert hits, f"no sample {name} {labels}"
    return sum(hits)


def test_health_ready_and_status(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS)
    assert get(endpoint(server, "health")) == (200, "OK")
    assert get(endpoint(server, "ready")) == (200, "OK")
    status, body = get(endpoint(server, "health").replace("/health", "/status"))
    report = json.loads(body)
    assert status == 200 and report["ready"] and report["last_reload"]["services"] == 10
    assert get(endpoint(server, "health").replace("/health", "/nope"))[0] == 404


def test_metrics_count_real_queries(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS)
    url = endpoint(server, "metrics")
    for _ in range(3):
        server.query("svc1.testns.svc.cluster.local", "A")
    server.query("svc1.testns.svc.cluster.local", "A", tcp=True)
    server.query("nope.testns.svc.cluster.local", "AAAA")
    server.query("example.org", "MX")  # no upstream: REFUSED
    m = samples(get(url)[1])
    label = f"dns://127.0.0.1:{server.port}"
    assert value(m, "coredns_dns_requests_total", server=label, zone=".", proto="udp", family="1", type="A") == 3
    assert value(m, "coredns_dns_requests_total", proto="tcp", type="A") == 1
    assert value(m, "coredns_dns_requests_total", type="AAAA") == 1
    assert value(m, "coredns_dns_responses_total", rcode="NOERROR", plugin="kubernetes") == 4
    assert value(m, "coredns_dns_responses_total", rcode="NXDOMAIN", plugin="kubernetes") == 1
    assert value(m, "coredns_dns_responses_total", rcode="REFUSED") == 1
    assert value(m, "coredns_dns_request_duration_seconds_count", type="A") == 4
    assert value(m, "coredns_dns_request_duration_seconds_bucket", type="A", le="+Inf") == 4
    assert value(m, "coredns_dns_response_size_bytes_count", proto="udp") == 5
    assert value(m, "coredns_build_info") == 1
    assert value(m, "coredns_panics_total") == 0
    assert value(m, "coredns_reload_failed_total") == 0
    assert value(m, "clusterdns_objects", kind="Service") == 10
    assert value(m, "clusterdns_snapshot_serial") > 1_000_000_000


def test_metrics_count_do_request_sizes_and_the_cluster(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS)
    url = endpoint(server, "metrics")
    server.query("svc1.testns.svc.cluster.local", "A", want_dnssec=True)
    server.query("svc1.testns.svc.cluster.local", "A")
    sizes = [len(dns.message.make_query("svc1.testns.svc.cluster.local", "A", **kw).to_wire()) for kw in ({"want_dnssec": True}, {})]
    m = samples(get(url)[1])
    assert value(m, "coredns_dns_do_requests_total") == 1
    assert value(m, "coredns_dns_request_size_bytes_count", proto="udp") == 2
    assert value(m, "coredns_dns_request_size_bytes_sum", proto="udp") == sum(sizes)
    assert value(m, "clusterdns_names") > 10
    assert value(m, "clusterdns_manifest_errors", level="error") == 0
    assert value(m, "clusterdns_manifest_reloads_total") >= 1
    assert value(m, "clusterdns_reload_duration_seconds") > 0


def test_lameduck_keeps_answering_with_ready_503(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS, "--lameduck", "6")  # ample for the three requests below
    ready, health = endpoint(server, "ready"), endpoint(server, "health")
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.wait_for_output("lameduck")
    assert get(ready)[0] == 503
    assert get(health) == (200, "OK")
    assert server.query("svc1.testns.svc.cluster.local", "A").answer[0][0].to_text() == "10.0.0.1"
    server.proc.wait(15)
    assert server.proc.returncode == 0


def test_status_command(serve, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: Service\napiVersion: v1\nmetadata: {name: x}\nspec: {ports: [{port: eighty}]}\n")
    (tmp_path / "good.yaml").write_text("kind: Service\napiVersion: v1\nmetadata: {name: y}\nspec: {ports: [{port: 80}]}\n")
    server = serve(tmp_path, *OPS)
    health = endpoint(server, "health").removeprefix("http://").removesuffix("/health")
    proc = subprocess.run(clusterdns_argv("status", "--health", health), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the manifests have an error
    assert "broken.yaml" in proc.stdout and "spec.ports[0].port" in proc.stdout
    assert "1 services" in proc.stdout


def test_status_command_unreachable() -> None:
    proc = subprocess.run(clusterdns_argv("status", "--health", "127.0.0.1:1"), capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "cannot reach" in proc.stderr


@pytest.mark.parametrize("flag", ["--health", "--metrics"])
def test_endpoint_port_in_use(flag: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "CLUSTERDNS_READY": "none", "CLUSTERDNS_HEALTH": "none", "CLUSTERDNS_METRICS": "none"}
        proc = subprocess.run(clusterdns_argv("serve", "--manifests", str(FIXTURE), "--listen", "127.0.0.1:0", "--upstream", "none",
                                              flag, f"127.0.0.1:{port}"), capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 2 and f"127.0.0.1:{port}" in proc.stderr, proc.stderr
    time.sleep(0)


def test_query_log_in_coredns_format(serve) -> None:
    server = serve(FIXTURE, "--zone", "cluster.local", "--log-queries", upstream="127.0.0.1:9")
    server.query("SvC1.testns.svc.cluster.local", "A")
    server.query("nope.testns.svc.cluster.local", "AAAA", tcp=True)
    server.query("example.org", "A", timeout=5)  # the upstream port is closed: SERVFAIL
    assert server.wait_for_output(r'\[INFO\] 127\.0\.0\.1:\d+ - \d+ "A IN SvC1\.testns\.svc\.cluster\.local\. udp \d+ (true|false) \d+" NOERROR qr,aa,rd \d+ [\d.]+s')
    assert server.wait_for_output(r'"AAAA IN nope\.testns\.svc\.cluster\.local\. tcp \d+ \w+ \d+" NXDOMAIN qr,aa,rd')
    assert server.wait_for_output(r"(?m)^\[ERROR\] plugin/errors: 2 example\.org\. A: ")
    assert server.wait_for_output(r'"A IN example\.org\. udp .*" SERVFAIL')


def test_query_log_has_a_line_for_every_repeat(serve) -> None:
    """Repeats of a query are answered without Python when nothing must see them; with
    --log-queries every one is still logged."""
    server = serve(FIXTURE, "--zone", "cluster.local", "--log-queries")
    for _ in range(5):
        server.query("svc1.testns.svc.cluster.local", "A")
    line = r'"A IN svc1\.testns\.svc\.cluster\.local\. udp \d+ (true|false) \d+" NOERROR'
    assert server.wait_for_output(rf"(?s)({line}.*){{5}}"), server.output


def test_quiet_keeps_warnings_and_query_lines_only() -> None:
    """README: --quiet prints only warnings and errors; --log-queries lines still print."""
    argv = clusterdns_argv("serve", "--manifests", str(FIXTURE), "--zone", "cluster.local", "--listen", "127.0.0.1:0",
                           "--upstream", "none", "--quiet", "--log-queries")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **QUIET_HTTP})
    try:
        ports: list[int] = []  # --quiet prints no "serving DNS on": its socket says where it listens
        wait_until(lambda: bool(ports.extend(udp_ports_of(proc.pid)) or ports), "the quiet server's UDP socket")
        [port] = ports
        query = dns.message.make_query("svc1.testns.svc.cluster.local", "A")
        replies: list[dns.message.Message] = []

        def answered() -> bool:
            try:
                replies.append(dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2))
            except (dns.exception.Timeout, OSError):
                return False
            return True

        wait_until(answered, "an answer from the quiet server")
        assert replies[0].answer[0][0].to_text() == "10.0.0.1"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert re.search(r'\[INFO\] 127\.0\.0\.1:\d+ - \d+ "A IN svc1\.testns\.svc\.cluster\.local\. udp', out), out
    assert "serving DNS on" not in out and "loaded" not in out, out
    assert "warning: " in out, "the fixture's manifest warnings still print"


def test_forward_and_cache_metrics(serve) -> None:
    from tests.helpers.upstream import Upstream

    with Upstream(["example.org. 60 IN A 192.0.2.10"]) as up:
        to = f"{up.address[0]}:{up.address[1]}"
        server = serve(FIXTURE, "--zone", "cluster.local", *OPS, "--loop-detect", "off", upstream=to)
        for _ in range(3):
            assert server.query("example.org", "A").answer[0][0].to_text() == "192.0.2.10"
        m = samples(get(endpoint(server, "metrics"))[1])
    assert value(m, "coredns_forward_requests_total", to=to) == 1, "one upstream query, then cache hits"
    assert value(m, "coredns_forward_responses_total", to=to, rcode="NOERROR") == 1
    assert value(m, "coredns_cache_hits_total", type="success") == 2
    assert value(m, "coredns_cache_entries", type="success") == 1
    assert value(m, "coredns_cache_requests_total") == 3
    assert value(m, "coredns_dns_responses_total", plugin="forward", rcode="NOERROR") == 3


def test_metrics_count_every_worker(serve) -> None:
    """With --workers, /metrics (served by the first process) adds up what every process answered."""
    from tests.helpers.upstream import Upstream

    with Upstream(["example.org. 60 IN A 192.0.2.10"]) as up:
        to = f"{up.address[0]}:{up.address[1]}"
        server = serve(FIXTURE, "--zone", "cluster.local", *OPS, "--loop-detect", "off", "--workers", "3", upstream=to)
        assert server.wait_for_output("3 worker processes share each port")
        wait_until(lambda: udp_sockets(server.port) == 3, "the two workers bound their own sockets")
        for _ in range(60):  # each from a new source port: SO_REUSEPORT spreads them over the three processes
            server.query("svc1.testns.svc.cluster.local", "A")
        for _ in range(12):
            server.query("svc1.testns.svc.cluster.local", "SRV", tcp=True)
        for _ in range(9):
            assert server.query("example.org", "A").answer[0][0].to_text() == "192.0.2.10"
        url = endpoint(server, "metrics")
        m = samples(get(url)[1])
        assert value(m, "coredns_dns_requests_total", proto="udp", type="A") == 69
        assert value(m, "coredns_dns_requests_total", proto="tcp", type="SRV") == 12
        assert value(m, "coredns_dns_responses_total", rcode="NOERROR", plugin="kubernetes") == 72
        assert value(m, "coredns_dns_request_duration_seconds_count", type="A") == 69
        assert value(m, "coredns_dns_response_size_bytes_count", proto="udp") == 69
        # Each process has its own forward cache: one upstream query per process that got one.
        forwarded = value(m, "coredns_forward_requests_total", to=to)
        assert 1 <= forwarded <= 3, f"{forwarded} upstream queries for 9 queries over 3 processes"
        assert value(m, "coredns_cache_requests_total") == 9
        assert value(m, "coredns_cache_hits_total", type="success") == 9 - forwarded
        assert value(m, "coredns_cache_entries", type="success") == forwarded
        # A second scrape sees the counts grow, not start over or double.
        server.query("svc1.testns.svc.cluster.local", "A")
        assert value(samples(get(url)[1]), "coredns_dns_requests_total", proto="udp", type="A") == 70


def test_metrics_go_on_without_a_worker_that_died(serve) -> None:
    """A worker that exits: /metrics still answers, and keeps that worker's last counts
    (a counter that goes down would read as a reset to Prometheus)."""
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS, "--workers", "2")
    assert server.wait_for_output("2 worker processes share each port")
    wait_until(lambda: udp_sockets(server.port) == 2, "the worker bound its own socket")
    url = endpoint(server, "metrics")
    for _ in range(40):  # from new source ports: both processes answer some
        server.query("svc1.testns.svc.cluster.local", "A")
    assert value(samples(get(url)[1]), "coredns_dns_requests_total", proto="udp", type="A") == 40
    (child,) = server.workers()
    os.kill(child, signal.SIGKILL)

    def answered() -> bool:  # a datagram can be lost while the kernel takes the dead worker's socket away
        try:
            return bool(server.query("svc1.testns.svc.cluster.local", "A", timeout=0.5).answer)
        except dns.exception.Timeout:
            return False

    wait_until(answered, "the first process answers alone")
    status, text = get(url)
    assert status == 200
    assert value(samples(text), "coredns_dns_requests_total", proto="udp", type="A") >= 41
    assert server.wait_for_output(rf"worker {child} did not report its counts")


def test_a_workers_counts_add_to_every_family() -> None:
    """The collector fed one remote copy of this process's counts: every traffic, panic,
    forward and cache sample doubles; reload and cluster figures stay the first process's."""
    from prometheus_client import CollectorRegistry, generate_latest

    from clusterdns.ops.counters import ListenerStats, key
    from clusterdns.ops.metrics import DNSCollector
    from clusterdns.serve.server import Server
    from tests.helpers.process import config_of

    server = Server(config_of("--manifests", str(FIXTURE), "--upstream", "127.0.0.1:9", "--zone", "cluster.local"))
    server.load(full=True)
    udp, tcp = ListenerStats("dns://127.0.0.1:53", "udp", 1), ListenerStats("dns://127.0.0.1:53", "tcp", 1)
    udp.record(key(1, 0, "kubernetes", True), 40, 80, 0.0001)
    udp.record(key(28, 3, "kubernetes"), 41, 120, 0.002)
    tcp.record(key(33, 0, "kubernetes"), 45, 200, 0.0001)
    server.handler.panics = 1
    up = next(iter(server.forwarder.state.values()))
    up.requests, up.healthcheck_failures = 5, 2
    up.responses[0] += 4
    server.forwarder.rejects, server.forwarder.healthcheck_broken = 1, 1
    cache = server.forwarder.cache
    assert cache is not None
    cache.requests, cache.misses = 7, 3
    cache.hits["success"], cache.entries["denial"], cache.evictions["success"] = 4, 2, 1
    server.dns.stats = [udp, tcp]
    collector = DNSCollector(server)
    registry = CollectorRegistry()
    registry.register(collector)
    alone = samples(generate_latest(registry).decode())
    collector.remote = [server.counts()]
    doubled = samples(generate_latest(registry).decode())
    assert set(doubled) == set(alone), "the same families and label sets"
    fixed = ("coredns_build_info", "clusterdns_", "coredns_reload_failed")
    changed = 0
    for sample, v in alone.items():
        name = sample[0]
        if name.startswith(fixed):
            assert doubled[sample] == v, sample
        else:
            assert doubled[sample] == 2 * v, sample
            changed += v != 0
    assert changed >= 20, "traffic, panics, forward and cache samples were there to double"


def test_a_worker_that_does_not_answer_in_time_is_asked_once(serve) -> None:
    """README: a worker that does not answer within 2 s is logged and no longer asked; its
    last counts stay in the sums."""
    server = serve(FIXTURE, "--zone", "cluster.local", *OPS, "--workers", "2")
    assert server.wait_for_output("2 worker processes share each port")
    wait_until(lambda: udp_sockets(server.port) == 2, "the worker bound its own socket")
    url = endpoint(server, "metrics")
    for _ in range(40):
        server.query("svc1.testns.svc.cluster.local", "A")
    assert value(samples(get(url)[1]), "coredns_dns_requests_total", proto="udp", type="A") == 40
    (child,) = server.workers()
    os.kill(child, signal.SIGSTOP)  # alive, but silent
    try:
        started = time.monotonic()
        status, text = get(url)
        assert status == 200 and time.monotonic() - started < 4, "the scrape waits the 2 s deadline, not forever"
        assert value(samples(text), "coredns_dns_requests_total", proto="udp", type="A") == 40, "its last counts stay"
        started = time.monotonic()
        assert get(url)[0] == 200 and time.monotonic() - started < 1.8, "not asked again (no second 2 s wait)"
        assert server.wait_for_output(f"worker {child} did not report its counts")
        assert server.output.count(f"worker {child} did not report its counts") == 1
    finally:
        os.kill(child, signal.SIGCONT)


README_TEXT = (ROOT / "README.md").read_text()


def _readme_status() -> list[str]:
    """The lines the README shows for `clusterdns status` against `make run`."""
    return next(shown for command, shown, _ in digout.shell_steps(README_TEXT) if command == "clusterdns status")


def _variable(line: str) -> str:
    """A README line with the serial and the milliseconds left open (`...`)."""
    return re.sub(r"serial \d+; \d+ ms", "serial ...; ... ms", line).replace("manifests zones;", "manifests ...;").replace("127.0.0.1:5353", "...")


def test_readme_status_and_reload_lines_are_what_make_run_prints(tmp_path: Path) -> None:
    """README: `clusterdns status` against `make run` (its flags, a copy of zones/), and the reload
    line after a file with one Service is added; the same lines but the serial, the times and the paths."""
    zones = tmp_path / "zones"
    shutil.copytree(ROOT / "zones", zones)
    server = Server(clusterdns_argv("serve", "--manifests", str(zones), "--listen", "127.0.0.1:0", "--external-zone", "example.org",
                                    "--upstream", "none", *OPS))
    try:
        health = endpoint(server, "health").removeprefix("http://").removesuffix("/health")
        run = subprocess.run(clusterdns_argv("status", "--health", health), capture_output=True, text=True, timeout=30, cwd=ROOT)
        expected = _readme_status()
        assert len(expected) == 4 and run.returncode == 0 and len(run.stdout.splitlines()) == 4, run.stdout
        assert [digout.line_matches(_variable(e), a) for e, a in zip(expected, run.stdout.splitlines())] == [True] * 4, run.stdout
        (zones / "added.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: added}\nspec: {ports: [{port: 80}]}\n")
        said = re.search(r"^clusterdns: reloaded zones: .*$", README_TEXT, re.M)
        assert said is not None, "the README's reload line changed"
        shown = _variable(said.group(0)).replace("reloaded zones:", "reloaded ...:")
        assert server.wait_for_output(r"reloaded .*: 1 added"), server.output
        line = next(x for x in server.output.splitlines() if "reloaded " in x)
        assert digout.line_matches(shown, line), line
    finally:
        server.stop()


def test_readme_error_line_of_a_failed_forward(tmp_path: Path) -> None:
    """README: the errors plugin's line when no upstream answers (here one that refuses at once,
    which the line said was 'within the deadline' before)."""
    said = re.search(r"^\[ERROR\] plugin/errors: .*$", README_TEXT, re.M)
    assert said is not None, "the README's [ERROR] line changed"
    closed = free_port()  # nothing listens there: the kernel refuses
    server = Server(clusterdns_argv("serve", "--manifests", str(FIXTURE), "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{closed}", *OPS))
    try:
        reply = dns.query.udp(dns.message.make_query("example.com.", "A"), server.host, port=server.port, timeout=5)
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert server.wait_for_output(r"\[ERROR\] plugin/errors: .*example\.com\. A"), server.output
        line = next(x for x in server.output.splitlines() if x.startswith("[ERROR] plugin/errors"))
        assert line == said.group(0).replace("(127.0.0.1:1)", f"(127.0.0.1:{closed})"), (line, said.group(0))
    finally:
        server.stop()
