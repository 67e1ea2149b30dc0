"""The compose lab's resolver path, rebuilt with Linux namespaces instead of Docker.

tests/e2e/test_compose_lab.py runs this module as

    unshare --user --map-root-user --net --mount <venv python> -m tests.helpers.netns_lab WORKDIR < checks.json

and reads one JSON report from its standard output. Inside the new network and mount namespaces
it sets up what `docker compose up` sets up for the DNS path, from docker-compose.yml and the
Dockerfile themselves:

- the `lab` network: a dummy interface holding clusterdns's `ipv4_address` (172.28.0.53);
- clusterdns, started with the image's ENTRYPOINT and the compose `command:`. It runs in a
  mount namespace of its own whose resolv.conf names only its "embedded DNS" (127.0.0.12 here),
  as the clusterdns container's resolv.conf names only 127.0.0.11, so it finds its upstream the
  way it does in the container (no --upstream). `--listen 0.0.0.0:53` becomes the container's
  address and loopback (where the HEALTHCHECK asks), plus the published host port 127.0.0.1:5353
  (docker-proxy's job);
- Docker's embedded DNS, twice (tests.helpers.netns_lab.EmbeddedDNS): for the client at 127.0.0.11,
  forwarding to the client's `dns:` servers, and for clusterdns at 127.0.0.12, forwarding to
  "the host's resolvers", a tests.upstream.Upstream that serves example.test. Both answer the
  compose service names and network aliases themselves, as Docker does;
- the client's /etc/resolv.conf as Docker writes it from `dns_search`/`dns_opt` (nameserver
  127.0.0.11), /etc/nsswitch.conf with `hosts: files dns` and a minimal /etc/hosts, bind-mounted
  over the real ones (only inside this mount namespace).

Then it runs the HEALTHCHECK command (before and after the server is up) and each check, a shell
command run with glibc's getent and the real dig, exactly as the client container would run it.
Reverse lookups of container addresses are not emulated: Docker answers those itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from tests.helpers.composelab import EMBEDDED_DNS, Lab, healthcheck
from tests.helpers.composelab import lab as read_lab
from tests.helpers.process import Server
from tests.helpers.upstream import Upstream

PYTHON = sys.executable  # the venv's: tests/e2e/test_compose_lab.py starts this module with it
CLUSTERDNS_EMBEDDED = "127.0.0.12"  # the clusterdns container's 127.0.0.11, moved aside
DOCKER_TTL = 600  # libnetwork resolver.go respTTL
COMMAND_TIMEOUT = 20.0

# "The host's resolvers": what clusterdns's upstream forwards to for names outside the lab.
HOST_RESOLVER_RECORDS = [
    "example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 30",
    "host.example.test. 300 IN A 192.0.2.80",
]


class EmbeddedDNS:
    """Docker's embedded DNS as its clients see it (moby libnetwork/resolver.go), over UDP.

    A and AAAA questions for a known name (service name or alias) are answered here, TTL 600; a
    known name without IPv6 gets an empty NOERROR for AAAA. When the container set ndots
    (`ndots_set`), A/AAAA for an unknown single-label name get an empty NOERROR too, so that the
    client goes on with its search list; everything else is forwarded, as bytes, to `forward_to`
    and the reply is passed back (SERVFAIL if it does not come).
    """

    def __init__(self, address: tuple[str, int], names: dict[str, list[str]], forward_to: tuple[str, int], *, ndots_set: bool) -> None:
        self.names, self.forward_to, self.ndots_set = names, forward_to, ndots_set
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.log: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self._handle, args=(data, peer), daemon=True).start()

    def _handle(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - garbage is dropped, as miekg/dns does
            return
        if not query.question:
            return
        q = query.question[0]
        reply = self._local(query)
        how = "local"
        if reply is None:
            how = "forwarded"
            reply = self._forward(data)
        if reply is None:
            how = "servfail"
            r = dns.message.make_response(query)
            r.set_rcode(2)
            reply = r.to_wire()
        self.log.append(f"{q.name} {dns.rdatatype.to_text(q.rdtype)} {how}")
        self.sock.sendto(reply, peer)

    def _local(self, query: dns.message.Message) -> bytes | None:
        q = query.question[0]
        if q.rdtype not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            return None
        name = q.name.to_text(omit_final_dot=True).lower()
        known = name in self.names
        if not known and not (self.ndots_set and "." not in name):
            return None
        r = dns.message.make_response(query)
        r.flags |= dns.flags.RA
        if known and q.rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text_list(q.name, DOCKER_TTL, dns.rdataclass.IN, dns.rdatatype.A, self.names[name]))
        return r.to_wire()

    def _forward(self, data: bytes) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(4.0)  # extIOTimeout
            try:
                s.connect(self.forward_to)
                s.send(data)
                return s.recv(65535)
            except OSError:
                return None

    def close(self) -> None:
        self.sock.close()


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10)


def setup_network(lab: Lab) -> str:
    """lo up, and clusterdns's address on an interface named after the network; how, returned."""
    sh("ip", "link", "set", "lo", "up")
    try:  # a veth pair, as Docker's bridge network gives each container (dummy needs a module)
        sh("ip", "link", "add", lab.network, "type", "veth", "peer", "name", f"{lab.network}-peer")
    except subprocess.CalledProcessError:
        sh("ip", "addr", "add", f"{lab.dns_ip}/32", "dev", "lo")
        return f"{lab.dns_ip}/32 on lo"
    sh("ip", "addr", "add", f"{lab.dns_ip}/{lab.subnet.prefixlen}", "dev", lab.network)
    sh("ip", "link", "set", f"{lab.network}-peer", "up")
    sh("ip", "link", "set", lab.network, "up")
    return f"{lab.dns_ip}/{lab.subnet.prefixlen} on veth {lab.network}"


def bind_file(work: Path, target: str, text: str) -> None:
    source = work / Path(target).name
    source.write_text(text, encoding="utf-8")
    sh("mount", "--bind", str(source), target)


def server_argv(lab: Lab, work: Path) -> list[str]:
    """The container's command line, as it can run here (see the module docstring)."""
    entry, *args = lab.server_argv
    assert entry == "clusterdns", lab.server_argv
    out: list[str] = []
    i = 0
    while i < len(args):
        flag = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        if flag == "--manifests":
            # The bind-mounted directory, as a copy: checks may edit it as a user edits ./zones.
            source = lab.volumes.get(value, Path(value))
            copy = work / source.name
            if not copy.exists():
                shutil.copytree(source, copy)
            out += [flag, str(copy)]
            i += 2
        elif flag == "--listen" and value.startswith("0.0.0.0:"):
            port = int(value.rsplit(":", 1)[1])
            out += [flag, f"{lab.dns_ip}:{port}", flag, f"127.0.0.1:{port}"]
            for host_ip, host_port, container_port, proto in lab.published:
                if container_port == port and proto == "udp":
                    out += [flag, f"{host_ip or '127.0.0.1'}:{host_port}"]
            i += 2
        else:
            out.append(flag)
            i += 1
    resolv = work / "clusterdns-resolv.conf"
    resolv.write_text(f"nameserver {CLUSTERDNS_EMBEDDED}\n", encoding="utf-8")
    # Its own mount namespace, with its own resolv.conf, then exec the server.
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(resolv),
            PYTHON, "-m", "clusterdns", *out]


def run(command: str) -> dict[str, Any]:
    start = time.monotonic()
    try:
        p = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = -1, str(e.stdout or ""), f"timed out after {COMMAND_TIMEOUT}s"
    return {"command": command, "rc": rc, "stdout": out, "stderr": err, "seconds": round(time.monotonic() - start, 3)}


def main() -> int:
    work = Path(sys.argv[1])
    checks: dict[str, str] = json.load(sys.stdin)
    lab = read_lab()
    report: dict[str, Any] = {"host_nsswitch_hosts": "", "results": {}}
    try:
        with open("/etc/nsswitch.conf", encoding="utf-8") as f:
            report["host_nsswitch_hosts"] = next((line.strip() for line in f if line.startswith("hosts:")), "")
    except OSError:
        pass

    report["network"] = setup_network(lab)
    bind_file(work, "/etc/resolv.conf", lab.resolv_conf())
    # `hosts: files dns` whatever the machine says: `mdns4_minimal [NOTFOUND=return]` before
    # `dns` (Ubuntu, Fedora desktops) would stop every *.local name before it reaches DNS.
    bind_file(work, "/etc/nsswitch.conf", "hosts: files dns\n")
    bind_file(work, "/etc/hosts", "127.0.0.1\tlocalhost\n")

    _, health = healthcheck()
    if health[0] == "python":
        health[0] = PYTHON  # the image's python has dnspython; here the venv's does
    health_command = shlex.join(health)
    names = lab.embedded_names()
    with Upstream(HOST_RESOLVER_RECORDS) as host_resolvers:
        for_clusterdns = EmbeddedDNS((CLUSTERDNS_EMBEDDED, 53), names, host_resolvers.address, ndots_set=False)
        report["health_before"] = run(health_command)
        server = Server(server_argv(lab, work), env={"CLUSTERDNS_READY": "127.0.0.1:8181"})  # the image's default /ready
        try:
            client_nameservers = [(ip, 53) for ip in lab.client.get("dns", [])]
            ndots_set = any(o.startswith("ndots:") for o in lab.client.get("dns_opt", []))
            for_client = EmbeddedDNS((EMBEDDED_DNS, 53), names, client_nameservers[0], ndots_set=ndots_set)
            report["health_after"] = run(health_command)
            report["resolv_conf"] = Path("/etc/resolv.conf").read_text(encoding="utf-8")
            for key, command in checks.items():
                report["results"][key] = run(command)
            report["client_embedded_log"] = for_client.log
            report["clusterdns_embedded_log"] = for_clusterdns.log
            report["upstream_queries"] = [f"{q[1]} {dns.rdatatype.to_text(q[2])}" for q in host_resolvers.queries]
        finally:
            server.stop()
            report["server_output"] = server.output
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
