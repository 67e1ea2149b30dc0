"""The docker-compose lab, checked without Docker: docker-compose.yml, Dockerfile, .dockerignore,
zones/compose-lab/ and docs/compose.md must agree with each other and with the facts of
Docker's own rules for compose (`dns:` takes IPs only, port 53 inside, no `dns:` on the DNS
server itself, the host publish on loopback only). tests/e2e/test_compose_lab.py replays the lab's
resolver path for real.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

import pytest

from clusterdns.config.addresses import parse_hostport
from clusterdns.config.settings import Config
from tests.helpers.composelab import (
    CLIENT_SERVICE,
    COMPOSE_FILE,
    DNS_SERVICE,
    DOC,
    ROOT,
    compose,
    doc_steps,
    dockerfile,
    exec_form,
    healthcheck,
    in_client,
    instruction,
    lab,
    parse_port,
    runnable,
    service_networks,
)
from tests.helpers.manifests import load_state

LAB_MANIFESTS = ROOT / "zones" / "compose-lab"
POD_SEARCH = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
MDNS_PORT = 5353


@pytest.fixture(scope="module")
def data() -> dict:
    return compose()


@pytest.fixture(scope="module")
def services(data: dict) -> dict:
    return data["services"]


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_parses_with_a_user_defined_network(data: dict) -> None:
    assert set(data) >= {"services", "networks"}, COMPOSE_FILE
    (name, net), = data["networks"].items()
    assert not net.get("external"), "the lab's network must be created by compose, with its ipam subnet"
    subnets = [c["subnet"] for c in net["ipam"]["config"]]
    assert len(subnets) == 1 and ipaddress.ip_network(subnets[0]).is_private, subnets
    for svc_name, svc in data["services"].items():
        assert set(service_networks(svc)) == {name}, f"{svc_name} must be on the {name!r} network only"


def test_depends_on_names_existing_services_and_waits_for_health(services: dict) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        deps = {d: {} for d in deps} if isinstance(deps, list) else deps
        for dep, cond in deps.items():
            assert dep in services, f"{name} depends on {dep}, which is not a service"
            assert dep != name
            if dep == DNS_SERVICE:
                assert cond.get("condition") == "service_healthy", f"{name} must wait until clusterdns answers"
    others = [n for n in services if n != DNS_SERVICE]
    assert others and all(DNS_SERVICE in services[n].get("depends_on", {}) for n in others)
    assert "depends_on" not in services[DNS_SERVICE]


def test_fixed_addresses_inside_the_subnet_and_distinct() -> None:
    the_lab = lab()
    assert set(the_lab.addresses) == set(compose()["services"]), "every service needs a fixed ipv4_address"
    ips = [ipaddress.ip_address(ip) for ip in the_lab.addresses.values()]
    assert len(set(ips)) == len(ips), the_lab.addresses
    for name, ip in the_lab.addresses.items():
        assert ipaddress.ip_address(ip) in the_lab.subnet, f"{name}: {ip} is outside {the_lab.subnet}"
        assert ip != str(the_lab.subnet[1]), f"{name}: {ip} is the network's gateway"
    assert the_lab.dns_ip == "172.28.0.53", "docs/compose.md and the manifests' comments name 172.28.0.53"


def test_every_other_service_uses_clusterdns_by_ip(services: dict) -> None:
    dns_ip = lab().dns_ip
    for name, svc in services.items():
        if name == DNS_SERVICE:
            continue
        assert svc.get("dns") == [dns_ip], f"{name}: dns: must be exactly [{dns_ip}] (IPs only, no name, no port)"
        assert svc.get("dns_search") == POD_SEARCH, f"{name}: the search list of a Pod in namespace default"
        assert svc.get("dns_opt") == ["ndots:5"], f"{name}: ndots:5, as a Pod (older Docker wrote ndots:0)"


def test_clusterdns_has_no_dns_of_its_own(services: dict) -> None:
    svc = services[DNS_SERVICE]
    for key in ("dns", "dns_search", "dns_opt"):
        assert key not in svc, f"clusterdns must not set {key}: it would forward to itself (conventions 6.3)"
    assert not any("--upstream" in a for a in lab().server_argv), "the upstream comes from its resolv.conf (127.0.0.11)"


def test_host_publish_is_loopback_only_and_reaches_port_53(services: dict) -> None:
    ports = services[DNS_SERVICE].get("ports", [])
    assert all(isinstance(p, str) for p in ports), "use the short 'IP:HOST:CONTAINER/proto' form"
    published = [parse_port(p) for p in ports]
    assert {proto for *_, proto in published} == {"udp", "tcp"}, ports
    for host_ip, host_port, container_port, _ in published:
        assert host_ip == "127.0.0.1", f"{ports}: bind the host side to 127.0.0.1 (0.0.0.0:5353 is mDNS)"
        assert container_port == 53 and host_port == MDNS_PORT
    for name, svc in services.items():
        if name != DNS_SERVICE:
            assert not svc.get("ports"), f"{name} publishes ports; the lab publishes only clusterdns's"


def test_clusterdns_serves_the_mounted_zones_on_port_53(services: dict) -> None:
    the_lab = lab()
    argv = the_lab.server_argv
    assert argv[:2] == ["clusterdns", "serve"], argv
    manifests = flag_values(argv, "--manifests")
    assert manifests == ["/zones"], argv
    assert services[DNS_SERVICE]["volumes"] == ["./zones:/zones:ro"]
    assert the_lab.volumes["/zones"] == ROOT / "zones"
    listens = [parse_hostport(v) for v in flag_values(argv, "--listen")]
    assert listens == [("0.0.0.0", 53)], f"{argv}: dns: takes no port, so listen on 53 on every address"
    assert flag_values(argv, "--watch") == ["poll"], "inotify does not cross Docker Desktop's file sharing"
    assert flag_values(argv, "--ns-address") == [the_lab.dns_ip]
    # The compose command is the image's CMD plus --ns-address, nothing dropped.
    cmd = exec_form(instruction("CMD"))
    assert argv[2 : 2 + len(cmd)] == cmd, (argv, cmd)


def test_client_is_a_long_running_shell(services: dict) -> None:
    client = services[CLIENT_SERVICE]
    assert client.get("build") == "./lab/client" and (ROOT / "lab" / "client" / "Dockerfile").is_file()
    command = client["command"]
    assert (shlex.split(command) if isinstance(command, str) else command) == ["sleep", "infinity"]


def test_network_aliases_are_names_docker_answers(services: dict) -> None:
    aliases = lab().aliases
    assert aliases == {"db": ["db.example.test"]}, "db.yaml's ExternalName target is db's alias"


def test_dockerfile_runs_clusterdns_serve_on_port_53_from_zones() -> None:
    instructions = dockerfile()
    assert instructions[0][0] == "FROM" and re.fullmatch(r"python:3\.11-slim\S*", instructions[0][1]), instructions[0]
    assert exec_form(instruction("ENTRYPOINT")) == ["clusterdns", "serve"]
    cmd = exec_form(instruction("CMD"))
    assert cmd == ["--manifests", "/zones", "--listen", "0.0.0.0:53", "--watch", "poll", "--poll-interval", "1"]
    Config(manifests="/zones", listen=(parse_hostport("0.0.0.0:53"),), watch="poll", poll_interval=1.0)  # valid settings
    copies = [args for word, args in instructions if word == "COPY"]
    for src in ("pyproject.toml", "README.md", "clusterdns/", "zones/"):
        assert any(src in c.split()[:-1] for c in copies), f"COPY {src} missing"
    assert any(" /zones/" in f" {c}" for c in copies), "the example cluster is in the image at /zones"
    assert "EXPOSE" in dict(instructions) and "53/udp" in instruction("EXPOSE") and "53/tcp" in instruction("EXPOSE")


def test_dockerfile_runs_as_non_root_with_the_capability_to_bind_53() -> None:
    instructions = dockerfile()
    user = instruction("USER")
    assert user.split(":")[0] not in ("0", "root"), user
    runs = " ".join(args for word, args in instructions if word == "RUN")
    assert "setcap cap_net_bind_service=+ep" in runs and "readlink -f" in runs, "capability on the real python binary"
    last_user = max(i for i, (w, _) in enumerate(instructions) if w == "USER")
    assert [w for w, _ in instructions].index("ENTRYPOINT") > last_user, "ENTRYPOINT runs as the non-root user"


def test_image_builds_the_batched_udp_extension() -> None:
    runs = [args for word, args in dockerfile() if word == "RUN"]
    install = next(r for r in runs if "pip install /src" in r)
    assert "gcc" in install.split("pip install")[0], "a compiler before pip builds clusterdns/serve/_udpbatch.c"
    assert "import clusterdns.serve._udpbatch" in install, "the build fails if the extension was not built"


def test_healthcheck_asks_ready() -> None:
    options, argv = healthcheck()
    assert argv[:2] == ["python", "-c"], argv
    code = argv[2]
    assert "http://127.0.0.1:8181/ready" in code, code
    compile(code, "<healthcheck>", "exec")
    for key in ("interval", "timeout", "start-period", "retries"):
        assert key in options, f"HEALTHCHECK --{key}"
    assert int(options["timeout"].rstrip("s")) > 2, "the timeout must outlast the query's own 2 s"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "allow-list: exclude everything, then re-include what the Dockerfile copies"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert "**/*.so" in lines, "an extension built on the host never goes into the image"
    assert included == {"pyproject.toml", "README.md", "clusterdns", "zones"}, included


@pytest.fixture(scope="module")
def state():
    return load_state(ROOT / "zones", Config())


def endpoint_ips(svc) -> list[str]:
    return sorted(a.ip for g in svc.endpoints for a in g.addresses if a.ready)


def test_manifests_load_without_problems() -> None:
    state = load_state(LAB_MANIFESTS, Config())
    assert not state.problems, [str(p) for p in state.problems]
    assert {s.name for s in state.services} == {"web", "api", "db"}


def test_lab_names_do_not_clash_with_the_seed_labs(state) -> None:
    lab_files = {p.name for p in LAB_MANIFESTS.iterdir()}
    for svc in state.services:
        if svc.name in ("web", "api", "db") and svc.namespace == "default":
            assert svc.source.file.startswith("compose-lab/"), f"{svc.name} is also defined in {svc.source.file}"
    assert lab_files == {"web.yaml", "api.yaml", "db.yaml", "clusterdns.yaml"}


def test_manifest_addresses_are_the_containers_addresses(state) -> None:
    addresses = lab().addresses
    by_name = {s.name: s for s in state.services if s.namespace == "default"}
    web, api, db = by_name["web"], by_name["api"], by_name["db"]
    # Headless: the names answer the containers' addresses, not a ClusterIP nothing forwards.
    assert web.headless and api.headless and not web.cluster_ips and not api.cluster_ips
    assert endpoint_ips(web) == sorted([addresses["web-0"], addresses["web-1"]])
    assert endpoint_ips(api) == [addresses["api"]]
    pods = {p.name: p for p in state.pods if p.namespace == "default"}
    for name in ("web-0", "web-1"):
        assert pods[name].ips == (addresses[name],), f"Pod {name}'s status.podIP is the container's address"
        assert (pods[name].hostname, pods[name].subdomain) == (name, "web")
    dns_pod = next(p for p in state.pods if (p.namespace, p.name) == ("kube-system", "clusterdns"))
    assert dns_pod.ips == (addresses[DNS_SERVICE],), "the DNS Pod is the clusterdns container"
    kube_dns = next(s for s in state.services if (s.namespace, s.name) == ("kube-system", "kube-dns"))
    assert addresses[DNS_SERVICE] in endpoint_ips(kube_dns), "so --ns-address finds it among kube-dns's endpoints"
    hostnames = {a.hostname: a.ip for g in web.endpoints for a in g.addresses}
    assert hostnames == {"web-0": addresses["web-0"], "web-1": addresses["web-1"]}
    # The ExternalName's target is a name Docker's embedded DNS answers: a network alias.
    assert db.type == "ExternalName" and db.external_name in lab().aliases["db"]
    # Every lab address in the manifests is a container's.
    lab_ips = {ip for s in (web, api) for ip in endpoint_ips(s)}
    assert lab_ips <= set(addresses.values())


# Steps the namespace lab cannot replay: they need Docker itself.
DOCKER_ONLY = {"docker compose up -d", "docker compose exec client curl -s web"}


def test_doc_has_the_five_minute_commands() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "## The lab in five minutes" in text
    commands = [s.command for s in doc_steps()]
    for must in ("docker compose up -d", "docker compose exec client dig web.default.svc.cluster.local",
                 "docker compose exec client getent hosts web"):
        assert must in commands, must
    assert not re.search(r"^## Tour\s*$", text, re.M), "a '## Tour' section is read by test_seed_labs as dig commands"


def test_every_doc_command_is_replayed_or_needs_docker() -> None:
    """Every `$` line of docs/compose.md either runs in tests/e2e/test_compose_lab.py or is a known Docker step."""
    steps = doc_steps()
    assert len([s for s in steps if runnable(s)]) >= 10
    for step in steps:
        if runnable(step) is None:
            assert step.command in DOCKER_ONLY, f"docs/compose.md:{step.line}: {step.command!r} is not tested"
            assert not step.expected, f"docs/compose.md:{step.line}: output shown for a command no test runs"
        inner = in_client(step)
        if step.command.startswith("docker compose exec "):
            target = step.command.split()[3]
            assert target in compose()["services"], f"docs/compose.md:{step.line}: no service {target}"
        if inner is not None and runnable(step):
            assert step.expected, f"docs/compose.md:{step.line}: show what {inner!r} prints"


def test_doc_names_the_lab_addresses() -> None:
    text = DOC.read_text(encoding="utf-8")
    the_lab = lab()
    for name, ip in the_lab.addresses.items():
        assert re.search(rf"(?<![\d.]){re.escape(ip)}(?!\d)", text), f"docs/compose.md does not mention {name}'s address {ip}"
    assert str(the_lab.subnet) in text


def test_the_docs_say_what_the_healthcheck_asks() -> None:
    """docker-compose.yml and docs/compose.md describe the Dockerfile's HEALTHCHECK, not another one."""
    _, argv = healthcheck()
    url = re.search(r"http://[^'\"]+", argv[2])
    assert url, argv
    for path in (COMPOSE_FILE, DOC):
        text = " ".join(path.read_text(encoding="utf-8").split()).replace("# ", "")
        said = [text[m.start() : m.start() + 120] for m in re.finditer(r"HEALTHCHECK`? asks", text)]
        assert said, f"{path.name} does not say what the HEALTHCHECK asks"
        for sentence in said:
            assert url.group(0) in sentence and "dns-version" not in sentence, f"{path.name}: {sentence!r}"


def test_the_doc_asks_for_compose_v2_where_the_file_needs_it(data: dict) -> None:
    """Compose v1 rejects a top-level `name:`; the doc must say the lab needs Compose v2."""
    assert "name" in data, "the lab names its project"
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    assert "Compose v2" in text and "Compose v1" in text and "top-level `name:`" in text


def test_the_build_proves_the_capability_not_the_sysctl() -> None:
    """The legacy builder's RUN steps see ip_unprivileged_port_start=0, where any user binds
    port 53: the check after USER must read the capability itself (CAP_NET_BIND_SERVICE, bit 10
    of CapEff), and then bind."""
    instructions = dockerfile()
    last_user = max(i for i, (w, _) in enumerate(instructions) if w == "USER")
    checks = [args for word, args in instructions[last_user:] if word == "RUN" and "bind(" in args]
    assert len(checks) == 1, checks
    code = shlex.split(checks[0])[2]
    compile(code, "<build check>", "exec")
    assert "CapEff:" in code and ">> 10 & 1" in code and code.index("CapEff:") < code.index("bind(")
