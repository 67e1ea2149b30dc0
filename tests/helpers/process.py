"""`clusterdns serve` as a real child process, asked with real clients; the small tools the
end-to-end tests share (ports, frames, waiting, the command line)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import dns.message
import dns.query
import dns.rdatatype

from clusterdns.cli import build_parser
from clusterdns.config.settings import Config
from clusterdns.config.sources import config_from_args
from clusterdns.serve.sockets import bind_pair
from tests.helpers.upstream import Upstream

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
T = TypeVar("T")
UNIT_FIXTURE = CASES / "fixture" / "unit"  # the CoreDNS unit-test cluster (tests/cases/README.md)
LISTENING = re.compile(r"serving DNS on (\S+):(\d+)")
# Test servers run side by side: no HTTP endpoints on the fixed default ports unless a
# test asks for them (CLUSTERDNS_* variables are read like flags).
QUIET_HTTP = {"CLUSTERDNS_HEALTH": "none", "CLUSTERDNS_READY": "none", "CLUSTERDNS_METRICS": "none"}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0, step: float = 0.05) -> None:
    """Poll `condition` until it holds; fail the test naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def udp_sockets(port: int) -> int:
    """UDP sockets bound to 127.0.0.1:port (from /proc/net/udp)."""
    local = f"0100007F:{port:04X}"
    return sum(1 for line in Path("/proc/net/udp").read_text().splitlines()[1:] if line.split()[1] == local)


def udp_ports_of(pid: int) -> list[int]:
    """The local ports of the IPv4 UDP sockets process `pid` holds (from /proc): for a server
    that prints no "serving DNS on" line (--quiet) but was given port 0."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    rows = [line.split() for line in Path("/proc/net/udp").read_text().splitlines()[1:]]
    return sorted(int(row[1].split(":")[1], 16) for row in rows if row[9] in inodes)


class Server:
    """A `clusterdns serve` child process bound to 127.0.0.1 on a port the kernel chose."""

    def __init__(self, argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **QUIET_HTTP, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.host = ""
        self.port = 0
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(30):
            self.stop()
            raise RuntimeError("server did not start:\n" + self.output)
        if not self.port:
            self.stop()
            raise RuntimeError("server exited:\n" + self.output)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            m = LISTENING.search(line)
            if m and not self.port:
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                self._ready.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> bool:
        try:
            wait_until(lambda: re.search(pattern, self.output) is not None, pattern, timeout)
        except AssertionError:
            return False
        return True

    def query(self, qname: str, qtype: str | int = "A", *, tcp: bool = False, timeout: float = 5.0, **kw: object) -> dns.message.Message:
        """Ask the server one question with dnspython (UDP unless tcp=True)."""
        q = dns.message.make_query(qname, qtype, **kw)  # type: ignore[arg-type]
        if tcp:
            return dns.query.tcp(q, self.host, port=self.port, timeout=timeout)
        return dns.query.udp(q, self.host, port=self.port, timeout=timeout, ignore_trailing=True)

    def workers(self) -> list[int]:
        """The pids of the --workers processes the server forked."""
        pid = self.proc.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def dig(self, *args: str) -> str:
        """Run the real `dig` against the server and return its output."""
        cmd = ["dig", f"@{self.host}", "-p", str(self.port), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stdout:
            self._reader.join(5)
            self.proc.stdout.close()


def recv_exact(sock: "socket.socket", n: int) -> bytes:
    """Exactly n bytes from a TCP socket (fails the test if the server closes early)."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def read_frame(sock: "socket.socket") -> bytes:
    """One length-prefixed DNS message from a TCP stream (RFC 1035 4.2.2)."""
    return recv_exact(sock, int.from_bytes(recv_exact(sock, 2), "big"))


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (released here: bind it soon, and retry
    if another test took it in between)."""
    udp, tcp = bind_pair("127.0.0.1", 0)
    port: int = udp.getsockname()[1]
    udp.close()
    tcp.close()
    return port


def closed_port() -> tuple[str, int]:
    """A loopback address with nothing behind it on UDP or TCP: sends get ICMP port
    unreachable, connects are refused."""
    return "127.0.0.1", free_port()


def config_of(*argv: str, environ: dict[str, str] | None = None) -> Config:
    """What `clusterdns serve ARGV` would run with, in an environment of `environ` only."""
    return config_from_args(build_parser().parse_args(["serve", *argv]), environ or {})


def clusterdns_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "clusterdns", *args]


class ServerPool:
    """Servers started on first use, one per key (a profile), each from `argv(key, pool)`;
    close() stops them and the mock upstreams they were given with `pool.upstream()`."""

    def __init__(self, argv: Callable[[str, "ServerPool"], list[str]]) -> None:
        self.argv = argv
        self.running: dict[str, Server] = {}
        self.mocks: list[Upstream] = []

    def __call__(self, key: str) -> Server:
        if key not in self.running:
            self.running[key] = Server(self.argv(key, self))
        return self.running[key]

    def upstream(self, **kw: Any) -> str:
        """A mock upstream (tests/helpers/upstream.py) that lives as long as the pool: its host:port."""
        up = Upstream(**kw)
        self.mocks.append(up)
        return f"{up.address[0]}:{up.address[1]}"

    def close(self) -> None:
        for server in self.running.values():
            server.stop()
        for up in self.mocks:
            up.close()


def have_dig() -> bool:
    return shutil.which("dig") is not None
