"""A changed Corefile or config file applied by a running `clusterdns serve` (CoreDNS's reload:
plugin/reload/reload.go, setup.go; caddy's Instance.Restart keeps listeners whose address stays).

Each test edits the file under a real server and asks with dnspython: the new setting answers,
no query fails meanwhile, a broken edit is kept out with its line in the log and counted in
coredns_reload_failed_total, and listeners move only when their address does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from clusterdns.config.reread import next_check
from tests.e2e.test_ops import endpoint, get, samples, value
from tests.helpers.process import UNIT_FIXTURE, Server, clusterdns_argv, free_port, wait_until
from tests.helpers.upstream import Upstream

SERVICE = "svc1.testns.svc.cluster.local."


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    with Upstream(["example.test. 60 IN A 192.0.2.1"]) as first, Upstream(["example.test. 60 IN A 192.0.2.2"]) as second:
        yield first, second


def text(up: Upstream) -> str:
    return f"{up.address[0]}:{up.address[1]}"


def corefile(port: int, upstream: Upstream, extra: str = "", reload: str = "reload 2s 0s") -> str:
    return (f".:{port} {{\n    errors\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        manifests {UNIT_FIXTURE}\n    }}\n"
            f"    forward . {text(upstream)}\n    {reload}\n{extra}}}\n")


def addresses(server: Server, qname: str, port: int | None = None) -> list[str]:
    q = dns.message.make_query(qname, "A")
    reply = dns.query.udp(q, server.host, port=port or server.port, timeout=3)
    return sorted(rd.to_text() for rrset in reply.answer for rd in rrset)


def ttl(server: Server, qname: str) -> int:
    reply = dns.query.udp(dns.message.make_query(qname, "A"), server.host, port=server.port, timeout=3)
    return reply.answer[0].ttl


class Load:
    """Queries in a loop from a thread (in-zone and forwarded), counting every one that fails."""

    def __init__(self, server: Server) -> None:
        self.server, self.asked, self.failed = server, 0, []  # type: ignore[var-annotated]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for qname in (SERVICE, "example.test."):
                try:
                    reply = dns.query.udp(dns.message.make_query(qname, "A"), self.server.host, port=self.server.port, timeout=2)
                    if reply.rcode() != 0 or not reply.answer:
                        self.failed.append((qname, reply.rcode()))
                except dns.exception.Timeout:
                    self.failed.append((qname, "timeout"))
                self.asked += 1

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_an_edited_corefile_applies_under_load_and_a_broken_one_is_kept_out(upstreams: tuple[Upstream, Upstream], tmp_path: Path) -> None:
    first, second = upstreams
    port = free_port()
    path = tmp_path / "Corefile"
    path.write_text(corefile(port, first))
    server = Server(clusterdns_argv("serve", "--corefile", str(path), "--metrics", "127.0.0.1:0"))
    try:
        metrics = endpoint(server, "metrics")
        assert addresses(server, "example.test.") == ["192.0.2.1"]
        with Load(server) as load:
            # The upstream changes, and a rewrite comes in: both in effect within the interval.
            path.write_text(corefile(port, second, "    rewrite name alias.example.test. example.test.\n"))
            wait_until(lambda: addresses(server, "example.test.") == ["192.0.2.2"], "the new upstream answers", timeout=10)
            assert addresses(server, "alias.example.test.") == ["192.0.2.2"]
            assert "configuration reloaded: " in server.output and "upstream" in server.output
            # A broken edit: an unknown plugin on line 9. The old configuration keeps answering.
            broken = corefile(port, first).replace("    errors\n", "    errors\n    nosuchplugin\n")
            path.write_text(broken)
            assert server.wait_for_output(r"Corefile:3: .*nosuchplugin|nosuchplugin.*Corefile:3"), server.output
            time.sleep(2.5)  # one more look: the same broken file is not reported again
            assert load.asked > 50
        assert load.failed == [], load.failed[:5]
        assert addresses(server, "example.test.") == ["192.0.2.2"]
        assert server.output.count("nosuchplugin") == 1, "a broken file is reported once"
        assert value(samples(get(metrics)[1]), "coredns_reload_failed_total") == 1
        # Mended: taken at the next look.
        path.write_text(corefile(port, first))
        wait_until(lambda: addresses(server, "example.test.") == ["192.0.2.1"], "the mended file applies", timeout=10)
        # The manifests moved to a directory that is not there: kept out, the Services still answer.
        missing = tmp_path / "gone"
        path.write_text(corefile(port, first).replace(f"manifests {UNIT_FIXTURE}", f"manifests {missing}"))
        assert server.wait_for_output(f"still serving the previous one: {missing}: manifests directory not found"), server.output
        assert addresses(server, SERVICE) != []
    finally:
        server.stop()


def test_a_moved_listener_is_rebound_and_an_unchanged_one_keeps_its_socket(upstreams: tuple[Upstream, Upstream], tmp_path: Path) -> None:
    first, second = upstreams
    port, other = free_port(), free_port()
    path = tmp_path / "Corefile"
    path.write_text(corefile(port, first))
    server = Server(clusterdns_argv("serve", "--corefile", str(path)))
    try:
        socket = _udp_inode(port)
        path.write_text(corefile(port, second))
        wait_until(lambda: addresses(server, "example.test.") == ["192.0.2.2"], "the new upstream answers", timeout=10)
        assert _udp_inode(port) == socket, "the listener kept its socket"
        path.write_text(corefile(other, second))
        wait_until(lambda: "listen" in server.output.split("configuration reloaded: ")[-1], "the listener moves", timeout=10)
        assert addresses(server, SERVICE, port=other)
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(dns.message.make_query(SERVICE, "A"), "127.0.0.1", port=port, timeout=0.5)
    finally:
        server.stop()


def test_sigusr1_rereads_the_config_file_without_reload(upstreams: tuple[Upstream, Upstream], tmp_path: Path) -> None:
    """CoreDNS reloads on SIGUSR1 whether or not the reload plugin is in the Corefile."""
    first, _ = upstreams
    settings = tmp_path / "clusterdns.yaml"
    settings.write_text("ttl: 10\n")
    server = Server(clusterdns_argv("serve", "--config", str(settings), "--manifests", str(UNIT_FIXTURE), "--listen", "127.0.0.1:0",
                                    "--upstream", text(first), "--cache", "0"))
    try:
        assert addresses(server, "alias.example.test.") == []
        assert ttl(server, SERVICE) == 10
        settings.write_text("ttl: 20\nrewrite:\n  - name exact alias.example.test. example.test.\n")
        os.kill(server.proc.pid, signal.SIGUSR1)
        wait_until(lambda: addresses(server, "alias.example.test.") == ["192.0.2.1"], "the rewrite applies", timeout=10)
        assert "configuration reloaded: " in server.output and "rewrite" in server.output
        # A setting the records depend on applies to a Service that did not change
        # (tests/snapshot/test_reuse.py has every such setting).
        assert ttl(server, SERVICE) == 20
        os.kill(server.proc.pid, signal.SIGUSR1)  # nothing changed: nothing happens
        assert server.wait_for_output("configuration re-read: nothing changed")
    finally:
        server.stop()


def test_reload_plugin_arguments_and_jitter() -> None:
    """setup.go: INTERVAL at least 2s, JITTER 0 or at least 1s and at most half the interval;
    each look comes INTERVAL ± JITTER/2."""
    from clusterdns.config.corefile import corefile_values
    from clusterdns.errors import ConfigError

    def values(line: str) -> tuple[float, float]:
        v, _ = corefile_values(f".:53 {{\n    kubernetes cluster.local\n    {line}\n}}\n", "Corefile", {})
        return v["reload"], v["reload_jitter"]

    assert values("reload") == (30.0, 15.0)
    assert values("reload 10s") == (10.0, 15.0)  # capped to 5s when the look is scheduled
    assert values("reload 1m 0") == (60.0, 0.0)
    for bad, message in [("reload 1s", "greater or equal to 2s"), ("reload 5s 500ms", "0 or greater or equal to 1s"), ("reload x", "bad duration")]:
        with pytest.raises(ConfigError, match=message):
            values(bad)
    looks = [next_check(10.0, 15.0) for _ in range(200)]
    assert 7.5 <= min(looks) < 8.5 and 11.5 < max(looks) <= 12.5
    assert next_check(10.0, 0.0) == 10.0


def _udp_inode(port: int) -> str:
    """The inode of the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp: local address, inode)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}":
            return fields[9]
    raise AssertionError(f"nothing bound to UDP 127.0.0.1:{port}")
