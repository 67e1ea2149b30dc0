"""Forwarding loop detection at start-up (CoreDNS's loop plugin): real loops, real processes."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import dns.rcode
import dns.rdatatype

from clusterdns.upstream.loop import LOOP_PROBE_ZONE
from tests.helpers.process import QUIET_HTTP, UNIT_FIXTURE, clusterdns_argv, free_port
from tests.helpers.upstream import Upstream

FIXTURE = UNIT_FIXTURE
RECORDS = ["ext.interwebs.test. 5 IN A 1.2.3.4"]


def serve_until_exit(*flags: str, timeout: float = 20) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(clusterdns_argv("serve", "--manifests", str(FIXTURE), "--zone", "cluster.local", *flags),
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **QUIET_HTTP})
    return proc, time.monotonic() - started


def retrying(start: Callable[[int], tuple[subprocess.CompletedProcess[str], float]]) -> tuple[subprocess.CompletedProcess[str], float, int]:
    """start(port) with a fresh free port until the port was not taken in between (other tests run alongside)."""
    for _ in range(5):
        port = free_port()
        proc, elapsed = start(port)
        if "Address already in use" not in proc.stderr:
            return proc, elapsed, port
    raise AssertionError("could not bind a free port:\n" + proc.stderr)


def probes(up: Upstream) -> list[str]:
    return [name for _, name, rdtype in up.queries if rdtype == dns.rdatatype.HINFO]


def test_serve_forwarding_to_itself_exits_2() -> None:
    proc, elapsed, port = retrying(lambda port: serve_until_exit("--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{port}"))
    assert proc.returncode == 2, proc.stderr
    assert (f"clusterdns: forwarding loop: a query sent to upstream 127.0.0.1:{port} came back to us "
            "(is /etc/resolv.conf or --upstream pointing at clusterdns itself?)") in proc.stderr
    assert "serving DNS on" not in proc.stderr
    assert elapsed < 10


def test_serve_two_server_loop(serve) -> None:
    """A forwards to B's port, B forwards to A: B's probe goes through A and comes back to B."""
    for _ in range(5):
        port_b = free_port()
        # B is not there yet when A starts: no loop seen. A short timeout so A stops quickly afterwards.
        a = serve(FIXTURE, "--zone", "cluster.local", "--upstream-timeout", "0.5", upstream=f"127.0.0.1:{port_b}")
        proc, _ = serve_until_exit("--listen", f"127.0.0.1:{port_b}", "--upstream", f"{a.host}:{a.port}")
        if "Address already in use" not in proc.stderr:
            break
        a.stop()  # B's port was taken in between: again with another
    assert proc.returncode == 2, proc.stderr
    assert f"forwarding loop: a query sent to upstream {a.host}:{a.port} came back to us" in proc.stderr


def test_serve_probes_the_upstream_and_starts(serve) -> None:
    with Upstream(RECORDS) as up:
        server = serve(FIXTURE, "--zone", "cluster.local", upstream=f"{up.address[0]}:{up.address[1]}")
        [name] = probes(up)
        assert name.endswith("." + LOOP_PROBE_ZONE)
        assert server.query("ext.interwebs.test.", "A").answer[0][0].to_text() == "1.2.3.4"


def test_serve_loop_detect_off(serve) -> None:
    with Upstream(RECORDS) as up:
        serve(FIXTURE, "--zone", "cluster.local", "--loop-detect", "off", upstream=f"{up.address[0]}:{up.address[1]}")
        assert probes(up) == []


def test_serve_without_upstreams_starts_and_refuses_other_names(serve) -> None:
    """--upstream none: loop detection has nothing to probe, and the server starts and refuses other names."""
    server = serve(FIXTURE, "--zone", "cluster.local")  # --upstream none
    # The line follows "serving DNS on", which is all Server waits for: wait for it too.
    assert server.wait_for_output("no upstream: names outside cluster.local get REFUSED"), server.output
    assert server.query("example.org", "A").rcode() == dns.rcode.REFUSED
