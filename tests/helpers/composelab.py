"""The docker-compose lab as data: docker-compose.yml, the Dockerfile and docs/compose.md, read
without Docker. Shared by tests/lab/test_compose.py (static checks) and tests/helpers/netns_lab.py (which
replays the lab's resolver path inside Linux namespaces for tests/e2e/test_compose_lab.py).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.helpers import digout

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOC = ROOT / "docs" / "compose.md"
DNS_SERVICE = "clusterdns"
CLIENT_SERVICE = "client"
EMBEDDED_DNS = "127.0.0.11"  # what Docker writes into resolv.conf on a user-defined network
EXEC_PREFIX = f"docker compose exec {CLIENT_SERVICE} "
HOST_DIG_PREFIX = "dig @127.0.0.1 -p 5353 "


def compose() -> dict[str, Any]:
    with open(COMPOSE_FILE, encoding="utf-8") as f:
        data = yaml.safe_load(f)  # SafeLoader resolves the `<<: *pod-dns` merge keys
    assert isinstance(data, dict), f"{COMPOSE_FILE}: not a mapping"
    return data


# --- Dockerfile ----------------------------------------------------------------------------------


def dockerfile(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        word, _, rest = text.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD; asserts it is one."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def instruction(name: str) -> str:
    """The arguments of the last `name` instruction (the one that counts)."""
    found = [args for word, args in dockerfile() if word == name]
    assert found, f"{DOCKERFILE}: no {name}"
    return found[-1]


def healthcheck() -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's --options and its CMD in exec form."""
    text = instruction("HEALTHCHECK")
    options = dict(re.findall(r"--([a-z-]+)=(\S+)", text))
    m = re.search(r"\bCMD\s+(\[.*\])\s*$", text)
    assert m, f"HEALTHCHECK has no exec-form CMD: {text}"
    return options, exec_form(m.group(1))


# --- the lab -------------------------------------------------------------------------------------


@dataclass
class Lab:
    """What the lab's DNS path is made of, as docker-compose.yml and the Dockerfile say."""

    network: str
    subnet: ipaddress.IPv4Network
    dns_ip: str  # clusterdns's ipv4_address
    addresses: dict[str, str]  # service -> ipv4_address
    aliases: dict[str, list[str]]  # service -> network aliases
    server_argv: list[str]  # ENTRYPOINT + (compose `command:` or CMD)
    volumes: dict[str, Path]  # container path -> host path (clusterdns's bind mounts)
    published: list[tuple[str, int, int, str]]  # (host ip, host port, container port, protocol)
    client: dict[str, Any] = field(default_factory=dict)  # the client service

    def resolv_conf(self) -> str:
        """The resolv.conf Docker writes for the client: its embedded DNS, search list, options."""
        lines = [f"nameserver {EMBEDDED_DNS}"]
        if self.client.get("dns_search"):
            lines.append("search " + " ".join(self.client["dns_search"]))
        if self.client.get("dns_opt"):
            lines.append("options " + " ".join(self.client["dns_opt"]))
        return "\n".join(lines) + "\n"

    def embedded_names(self) -> dict[str, list[str]]:
        """Names Docker's embedded DNS answers itself: service names and network aliases."""
        names: dict[str, list[str]] = {}
        for service, ip in self.addresses.items():
            for name in [service, *self.aliases.get(service, [])]:
                names.setdefault(name.lower(), []).append(ip)
        return names


def service_networks(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nets = service.get("networks") or {}
    if isinstance(nets, list):
        return {n: {} for n in nets}
    return {n: (v or {}) for n, v in nets.items()}


def parse_port(spec: str) -> tuple[str, int, int, str]:
    """'127.0.0.1:5353:53/udp' -> ('127.0.0.1', 5353, 53, 'udp'); no host IP gives ''."""
    spec, _, proto = spec.partition("/")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        host_ip, host_port, container_port = parts
    elif len(parts) == 2:
        host_ip, (host_port, container_port) = "", parts
    else:
        host_ip, host_port, container_port = "", "", parts[0]
    return host_ip, int(host_port) if host_port else 0, int(container_port), proto or "tcp"


def lab() -> Lab:
    data = compose()
    services = data["services"]
    (network, net_def), = data["networks"].items()
    subnet = ipaddress.ip_network(net_def["ipam"]["config"][0]["subnet"])
    addresses, aliases = {}, {}
    for name, svc in services.items():
        net = service_networks(svc).get(network, {})
        if net.get("ipv4_address"):
            addresses[name] = net["ipv4_address"]
        if net.get("aliases"):
            aliases[name] = list(net["aliases"])
    dns_service = services[DNS_SERVICE]
    command = dns_service.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    argv = exec_form(instruction("ENTRYPOINT")) + (command if command is not None else exec_form(instruction("CMD")))
    volumes = {}
    for spec in dns_service.get("volumes", []):
        source, target = spec.split(":")[:2]
        volumes[target] = (ROOT / source).resolve()
    published = [parse_port(p) for p in dns_service.get("ports", [])]
    return Lab(network, subnet, addresses[DNS_SERVICE], addresses, aliases, argv, volumes, published, services[CLIENT_SERVICE])


# --- docs/compose.md -----------------------------------------------------------------------------


@dataclass
class Step:
    """One `$ command` of a ```console block of docs/compose.md and the lines shown after it."""

    command: str
    expected: list[str]
    line: int


def doc_steps(path: Path = DOC) -> list[Step]:
    """The `$ ...` commands of the doc's ```console blocks, with the lines shown after each."""
    return [Step(cmd, expected, number) for cmd, expected, number in digout.shell_steps(path.read_text(encoding="utf-8"), "console")]


def in_client(step: Step) -> str | None:
    """The command a `docker compose exec client ...` step runs inside the client, else None."""
    return step.command[len(EXEC_PREFIX) :] if step.command.startswith(EXEC_PREFIX) else None


def runnable(step: Step) -> str | None:
    """The shell command that replays a step in the namespace lab, or None if it needs Docker.

    `docker compose exec client X` runs X in the client's resolver setup; `dig @127.0.0.1 -p 5353`
    from the host runs as it is (the lab listens there too, standing in for the port publish).
    """
    inner = in_client(step)
    if inner is not None and inner.split()[0] in ("dig", "getent"):
        return inner
    if step.command.startswith(HOST_DIG_PREFIX):
        return step.command
    return None


def mismatch(step: Step, output: str) -> str | None:
    """Why `output` is not what the doc shows for `step`, or None if it is (tests/helpers/digout.py)."""
    return digout.mismatch(step.expected, output)
