"""`clusterdns serve --corefile`: CoreDNS's Corefile (the subset in docs/corefile.md) mapped onto
the settings, below flags, CLUSTERDNS_* variables and --config in precedence."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clusterdns.config.corefile import corefile_values
from clusterdns.config.corefile_syntax import parse_duration
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from tests.helpers.cases import BASE, DATA, FIXTURE, PROFILES
from tests.helpers.process import CASES, ROOT, clusterdns_argv, config_of

KUBEADM_COREFILE = CASES / "corefiles" / "kubeadm.Corefile"


def kubeadm_corefile() -> str:
    """kubeadm's stock Corefile (tests/cases/README.md)."""
    return KUBEADM_COREFILE.read_text()


def with_manifests(corefile: str, directory: Path | str) -> str:
    """The stock Corefile plus our own `manifests DIR` inside the kubernetes block."""
    out, n = re.subn(r"(\n(\s*)ttl 30\n)", rf"\1\2manifests {directory}\n", corefile)
    assert n == 1
    return out


def write(tmp_path: Path, text: str, name: str = "Corefile") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def values(text: str, environ: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    return corefile_values(text, "Corefile", environ or {})


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        values(text, environ)
    return str(e.value)


def test_kubeadm_stock_corefile_maps_onto_the_settings(tmp_path: Path) -> None:
    corefile = write(tmp_path, with_manifests(kubeadm_corefile(), ROOT / "zones"))
    config = config_of("--corefile", str(corefile))
    assert config.manifests == str(ROOT / "zones")
    assert config.listen == (("127.0.0.1", 53),)  # .:53, on loopback (no `bind`)
    assert config.zones == ("cluster.local", "in-addr.arpa", "ip6.arpa")
    assert (config.pods, config.ttl) == ("insecure", 30)
    assert config.fallthrough == ("in-addr.arpa", "ip6.arpa")
    assert config.upstream == ()  # forward . /etc/resolv.conf: the default
    assert config.max_concurrent == 1000
    assert config.health == ("127.0.0.1", 8080) and config.lameduck == 5.0
    assert config.ready == ("127.0.0.1", 8181)
    assert config.metrics == ("127.0.0.1", 9153)  # prometheus :9153
    assert config.cache == 30 and config.loop_detect == "on" and config.loadbalance == "round_robin"
    assert not config.log_queries and config.transfer_to == ()


def test_kubeadm_corefile_loads_without_a_warning() -> None:
    # Issue 15: every line of kubeadm's Corefile takes effect; `reload` re-reads it every 30s ± 7.5s.
    config, warnings = values(with_manifests(kubeadm_corefile(), "zones"))
    assert warnings == []
    assert (config["reload"], config["reload_jitter"]) == (30.0, 15.0)


COREFILE_PROFILES = [name for name, p in DATA["profiles"].items() if "corefile" in p]
MOCK = "127.0.0.1:5300"


def profile_corefile(name: str, upstream: str = MOCK) -> str:
    return DATA["profiles"][name]["corefile"].replace("<mock-upstream-interwebs>", upstream)


def without_ns_address(flags: list[str]) -> list[str]:
    """PROFILES' flags minus --ns-address (CoreDNS takes that from the Pod's IP, not the Corefile)."""
    out, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag == "--ns-address":
            skip = True
        else:
            out.append(flag)
    return out


def test_the_cases_file_has_corefiles() -> None:
    assert {"default", "unit-ns-testns", "unit-upstream", "unit-axfr"} <= set(COREFILE_PROFILES)


@pytest.mark.parametrize("profile", COREFILE_PROFILES)
def test_profile_corefile_maps_to_the_profile_flags(tmp_path: Path, profile: str) -> None:
    corefile = write(tmp_path, profile_corefile(profile))
    got = config_of("--corefile", str(corefile), "--manifests", str(FIXTURE))
    upstream = MOCK if profile == "unit-upstream" else "none"
    # What the Corefile also says by leaving plugins out: no health/ready/prometheus, no cache, no loop, no loadbalance.
    absent = ["--health", "none", "--ready", "none", "--metrics", "none", "--cache", "0", "--loop-detect", "off", "--loadbalance", "off"]
    # A block for cluster.local answers only names under it (CoreDNS REFUSES the others).
    serve = [] if profile == "unit-upstream" else ["--serve-zone", "cluster.local"]
    want = config_of("--manifests", str(FIXTURE), "--upstream", upstream, *absent, *serve, *BASE, *without_ns_address(PROFILES[profile]))
    assert got == want


def test_comments_quotes_and_nested_blocks() -> None:
    got, warnings = values(
        '# a comment line\n'
        'cluster.local:1053 {   # after a server key\n'
        '    kubernetes "cluster.local" {\n'
        '        namespaces "team a" team-b   # quoted: one word with a space\n'
        '        ttl 60\n'
        '    }\n'
        '    health {\n'
        '        lameduck 1m30s\n'
        '    }\n'
        '}\n'
    )
    assert got["listen"] == (("127.0.0.1", 1053),)
    assert got["namespaces"] == ("team a", "team-b")
    assert got["ttl"] == 60 and got["lameduck"] == 90.0
    assert warnings == []


def test_environment_substitution() -> None:
    env = {"ZONE": "example.cluster", "DNS_PORT": "1054", "PODS": "verified"}
    got, warnings = values(
        "{$ZONE}:{$DNS_PORT} {\n"
        "    kubernetes {$ZONE} {\n"
        "        pods {$PODS}\n"
        "        ttl {$TTL:45}\n"
        "        manifests /srv/{$CLUSTER}/manifests\n"
        "    }\n"
        "    prometheus 127.0.0.1:{$METRICS_PORT:9253}\n"
        "}\n",
        env,
    )
    assert got["zones"] == ("example.cluster",)
    assert got["listen"] == (("127.0.0.1", 1054),)
    assert got["pods"] == "verified"
    assert got["ttl"] == 45  # {$TTL:45}: the default, TTL being unset
    assert got["metrics"] == ("127.0.0.1", 9253)
    assert got["manifests"] == "/srv//manifests"
    assert warnings == ["Corefile:5: environment variable CLUSTER is not set; {$CLUSTER} is empty"]


def test_environment_substitution_reads_the_process_environment(tmp_path: Path) -> None:
    corefile = write(tmp_path, "cluster.local {\n    kubernetes {\n        ttl {$CF_TTL}\n    }\n}\n")
    assert config_of("--corefile", str(corefile), environ={"CF_TTL": "77"}).ttl == 77


def test_unset_variable_in_an_argument_list_drops_the_word() -> None:
    got, warnings = values("cluster.local {\n    kubernetes cluster.local {$EXTRA_ZONES}\n}\n")
    assert got["zones"] == ("cluster.local",)
    assert len(warnings) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        ("cluster.local {\n    kubernetes\n", "Corefile:1: this '{' is never closed (missing '}')"),
        ("cluster.local {\n    kubernetes\n}\n}\n", "Corefile:4: unexpected '}'"),
        ("cluster.local {\n    kubernetes cluster.local\n    {\n    }\n}\n", "Corefile:3: unexpected '{'"),
        ('cluster.local {\n    kubernetes "cluster.local\n}\n', "Corefile:2: unterminated quoted string"),
        ("(common) {\n    errors\n}\n", "Corefile: no server block"),  # a snippet alone is no server
        ("tls://cluster.local {\n    kubernetes\n}\n", "Corefile:1: server block 'tls://cluster.local': tls:// is not supported"),
        ("cluster.local:99999 {\n    kubernetes\n}\n", "Corefile:1: server block 'cluster.local:99999': bad port"),
        (". {\n    forward . 1.1.1.1\n}\n", "Corefile: no server block has the kubernetes plugin"),
        (". {\n    kubernetes\n}\n", "Corefile:2: kubernetes: clusterdns cannot serve the root zone"),
        ("", "Corefile: no server block"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert message in error_of(text)


def test_durations() -> None:
    assert parse_duration("5s") == 5.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m") == 60.0
    assert parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("0") == 0.0
    for bad in ("5", "5 s", "s", "-5s", "5d", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert "Corefile:3: health lameduck: bad duration '5'" in error_of("cluster.local {\n    kubernetes\n    health { lameduck 5 }\n}\n")


def test_unsupported_kubernetes_option_names_its_line(tmp_path: Path) -> None:
    text = "cluster.local {\n    kubernetes cluster.local {\n        pods insecure\n        ttl 30\n        labels app=web\n    }\n}\n"
    corefile = write(tmp_path, text)
    run = subprocess.run(clusterdns_argv("export-zone", "--corefile", str(corefile)), capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 2
    assert f'clusterdns: {corefile}:5: kubernetes option "labels" is not supported' in run.stderr


@pytest.mark.parametrize(
    "body, message",
    [
        ("kubernetes {\n ttl 4000\n }", 'Corefile:3: kubernetes option "ttl": \'4000\' must be a whole number of seconds, 0-3600'),
        ("kubernetes {\n pods everything\n }", "Corefile:3: kubernetes option \"pods\": 'everything' is not one of disabled, insecure, verified"),
        ("kubernetes {\n ignore nothing\n }", "Corefile:3: kubernetes option \"ignore\": only `ignore empty_service` exists"),
        # A misspelled plugin or option: the one meant, when one is close (a walk through the docs found none offered).
        ("kubernetes {\n podz insecure\n }", 'Corefile:3: kubernetes option "podz" is not supported by clusterdns (did you mean "pods"?)'),
        ("kubernetes\n forwrd . 127.0.0.1", 'Corefile:3: plugin "forwrd" is not supported by clusterdns (did you mean "forward"?)'),
        ("kubernetes\n forward . 127.0.0.1 {\n  max_fail 3\n }", 'Corefile:4: forward option "max_fail" is not supported by clusterdns (did you mean "max_fails"?)'),
        ("kubernetes\n cache {\n  prefech 10\n }", 'Corefile:4: cache option "prefech" is not supported by clusterdns (did you mean "prefetch"?)'),
        ("kubernetes {\n ttl\n }", 'Corefile:3: kubernetes option "ttl" takes 1 argument, not 0'),
        ("kubernetes {\n ttl 5\n ttl 6\n }", 'Corefile:4: kubernetes option "ttl" is given twice (also at Corefile:3)'),
        ("kubernetes\n kubernetes", "Corefile:3: kubernetes: only one server block may contain kubernetes (it is already at Corefile:2)"),
        ("kubernetes\n forward . tls://1.1.1.1", "Corefile:3: forward tls://1.1.1.1: tls:// is not supported"),
        ("kubernetes\n forward . /etc/hosts", "Corefile:3: forward /etc/hosts: the only file"),
        ("kubernetes\n forward . /etc/resolv.conf 1.1.1.1", "Corefile:3: forward: give either /etc/resolv.conf or addresses"),
        ("kubernetes\n forward . 1.1.1.1 {\n bogus 1\n }", 'Corefile:4: forward option "bogus" is not supported'),
        ("kubernetes\n forward . 1.1.1.1 {\n policy fastest\n }", "Corefile:4: 'fastest' is not one of random, round_robin, sequential"),
        ("kubernetes\n forward . nowhere.example", "Corefile:3: forward: bad address 'nowhere.example'"),
        ("kubernetes\n health {\n timeout 5s\n }", 'Corefile:4: health option "timeout" is not supported'),
        ("kubernetes\n bind eth0", "Corefile:3: bind eth0: clusterdns binds IP addresses only"),
        ("kubernetes\n transfer", "Corefile:3: transfer needs a block"),
        ("kubernetes\n cache {\n bogus\n }", 'Corefile:4: cache option "bogus" is not supported'),
        ("kubernetes\n prometheus :9153\n prometheus :9154", "Corefile:4: prometheus conflicts with Corefile:3"),
        ("kubernetes\n ready nowhere:1", "Corefile:3: bad address 'nowhere:1'"),
        # A digit that is not ASCII ("²".isdigit() is true, int("²") raises): refused as Go's Atoi refuses it.
        ("kubernetes {\n ttl ²\n }", 'Corefile:3: kubernetes option "ttl": \'²\' must be a whole number of seconds, 0-3600'),
        ("kubernetes\n cache {\n prefetch ²\n }", "Corefile:4: cache prefetch: prefetch amount should be positive"),
        ("kubernetes\n cache {\n success 100 ²\n }", "Corefile:4: cache success: cache TTL can not be zero or negative: ²"),
        # Numbers past Go's int (and Python's 4,300 digits for int()), found in review: a traceback before.
        ("kubernetes {\n ttl " + "1" * 5000 + "\n }", "Corefile:3: kubernetes option \"ttl\": '" + "1" * 59 + "... (5,000 characters) must be a whole"),
        ("kubernetes\n cache {\n serve_stale 1h immediate " + "9" * 400 + "s\n }", "Corefile:4: serve_stale: bad duration '999"),
        ("kubernetes\n cache {\n serve_stale 3000000h\n }", "(at most about 292 years)"),
    ],
)
def test_plugin_errors_name_their_line(body: str, message: str) -> None:
    assert message in error_of("cluster.local {\n" + body + "\n}\n")


@pytest.mark.parametrize(
    "corefile",
    [".:53 {\n kubernetes in-addr.arpa cluster.local ip6.arpa\n}\n", "in-addr.arpa cluster.local ip6.arpa {\n kubernetes\n}\n",
     ".:53 {\n kubernetes ip6.arpa 10.0.0.0/8 cluster.local in-addr.arpa\n}\n"],
)
def test_the_cluster_domain_is_the_first_zone_that_is_not_reverse(corefile: str) -> None:
    """setup.go's primaryZoneIndex, but for the bare reverse roots, which CoreDNS's IsReverse
    does not count as reverse (it would serve the cluster under in-addr.arpa): the zone the
    user meant, with a warning (found by the Corefile mutation test; the settings refused it
    as `--zone in-addr.arpa`)."""
    got, warnings = values(corefile)
    first = corefile.split()[3] if corefile.startswith(".") else "in-addr.arpa"
    assert got["zones"][0] == "cluster.local" and {"cluster.local", "in-addr.arpa", "ip6.arpa"} <= set(got["zones"])
    assert [w.split(": ", 1)[1] for w in warnings if "CoreDNS would take" in w] == [
        f"kubernetes: {first} is written first, which CoreDNS would take as the cluster domain"
        f" (its IsReverse wants a label before {first}); clusterdns takes cluster.local: write it first"]


def test_the_zone_flag_still_wants_the_cluster_domain_first() -> None:
    """docs/corefile.md: only the Corefile reorders; `--zone` takes what is written."""
    with pytest.raises(ConfigError) as e:
        Config(zones=("in-addr.arpa", "cluster.local"))
    assert "the first zone is the cluster domain and cannot be a reverse zone" in str(e.value)


def test_a_cidr_reverse_zone_written_first_is_what_coredns_skips_too() -> None:
    got, warnings = values(".:53 {\n kubernetes 10.0.0.0/8 cluster.local\n}\n")
    assert got["zones"] == ("cluster.local", "10.in-addr.arpa") and not [w for w in warnings if "cluster domain" in w]


def test_a_kubernetes_block_of_reverse_zones_only_is_refused() -> None:
    assert "Corefile:2: kubernetes: only reverse zones: name the cluster domain too" in error_of(".:53 {\n kubernetes in-addr.arpa ip6.arpa\n}\n")


def test_kubernetes_options() -> None:
    got, _ = values(
        "cluster.local in-addr.arpa {\n"
        "    kubernetes {\n"
        "        pods verified\n"
        "        endpoint_pod_names\n"
        "        noendpoints\n"
        "        ignore empty_service\n"
        "        namespaces default kube-system\n"
        "        fallthrough\n"
        "        ttl 0\n"
        "        manifests ./k8s\n"
        "    }\n"
        "}\n"
    )
    assert got["zones"] == ("cluster.local", "in-addr.arpa")  # the server block's zones
    assert got["pods"] == "verified"
    assert got["endpoint_pod_names"] and got["noendpoints"] and got["ignore_empty_service"]
    assert got["namespaces"] == ("default", "kube-system")
    assert got["fallthrough"] == (".",)  # no zones: every zone of the plugin
    assert got["ttl"] == 0
    assert got["manifests"] == "./k8s"


def test_kubernetes_plugin_defaults_not_kubeadms() -> None:
    """A Corefile means what CoreDNS would do with it: pods disabled, ttl 5, no fallthrough."""
    got, _ = values("cluster.local {\n    kubernetes\n}\n")
    assert (got["pods"], got["ttl"], got["fallthrough"]) == ("disabled", 5, ("none",))


def test_kubernetes_zones_may_be_cidrs_as_in_coredns() -> None:
    got, _ = values(". {\n    kubernetes cluster.local 10.0.0.0/8 fd00::/8 {\n        fallthrough 10.0.0.0/8\n    }\n}\n")
    assert got["zones"] == ("cluster.local", "10.in-addr.arpa", "d.f.ip6.arpa")
    assert got["fallthrough"] == ("10.in-addr.arpa",)


def test_kubernetes_api_options_are_ignored_with_a_warning() -> None:
    got, warnings = values("cluster.local {\n    kubernetes {\n        endpoint https://10.0.0.1:6443\n        kubeconfig /root/.kube/config\n    }\n}\n")
    assert got["zones"] == ("cluster.local",)
    assert [w.split(": ", 1)[0] for w in warnings] == ["Corefile:3", "Corefile:4"]
    assert "talks to no API server" in warnings[0]


def test_absent_plugins_are_off() -> None:
    got, _ = values("cluster.local {\n    kubernetes\n}\n")
    assert got["health"] is None and got["ready"] is None and got["metrics"] is None
    assert got["upstream"] == ("none",)  # no forward: REFUSED, as CoreDNS without forward
    assert got["cache"] == 0 and got["loop_detect"] == "off" and got["lameduck"] == 0.0
    assert not got["log_queries"] and got["transfer_to"] == () and got["notify"] == ()
    assert "listen" not in got  # no port: clusterdns's default --listen (127.0.0.1:5353)


def test_endpoint_plugins_and_log() -> None:
    got, warnings = values(
        "cluster.local {\n    kubernetes\n    health 0.0.0.0:8081\n    ready [::1]:8182\n    prometheus\n    log\n    errors\n}\n"
    )
    assert got["health"] == ("0.0.0.0", 8081)
    assert got["ready"] == ("::1", 8182)
    assert got["metrics"] == ("127.0.0.1", 9153)  # the plugin's default, localhost:9153
    assert got["log_queries"]
    assert warnings == []
    got, _ = values("cluster.local {\n    kubernetes\n    health :8080\n    ready\n}\n")
    assert got["health"] == ("127.0.0.1", 8080)  # ':8080' binds loopback in clusterdns
    assert got["ready"] == ("127.0.0.1", 8181)


def test_forward() -> None:
    got, warnings = values(
        ". {\n    kubernetes cluster.local\n    forward . 10.0.0.2 dns://10.0.0.3:5353 [fd00::53]:53 {\n"
        "        policy sequential\n        max_fails 3\n        max_concurrent 50\n        force_tcp\n        health_check 5s\n    }\n}\n"
    )
    assert got["upstream"] == ("10.0.0.2", "10.0.0.3:5353", "[fd00::53]:53")
    assert (got["upstream_policy"], got["max_fails"], got["max_concurrent"]) == ("sequential", 3, 50)
    assert got["force_tcp"] and got["health_check"] == 5.0
    assert warnings == []
    got, _ = values(". {\n    kubernetes cluster.local\n    forward . /etc/resolv.conf\n}\n")
    assert "upstream" not in got  # /etc/resolv.conf is the default


def test_cache() -> None:
    got, warnings = values(
        ". {\n    kubernetes cluster.local\n    cache {\n        success 5000\n        disable success cluster.local\n"
        "        disable denial example.org\n        prefetch 10\n    }\n}\n"
    )
    assert got["cache"] == 3600 and got["cache_size"] == 5000 and got["cache_prefetch"] == 10
    assert got["cache_disable_denial"] == ("example.org",)
    assert "cache_disable_success" not in got  # our own zone: never cached anyway
    assert warnings == []


def test_transfer() -> None:
    got, _ = values("cluster.local {\n    kubernetes\n    transfer {\n        to * 10.1.0.0/16\n        to 10.0.0.5 [fd00::5]:5300\n    }\n}\n")
    assert got["transfer_to"] == ("*", "10.1.0.0/16", "10.0.0.5/32", "fd00::5/128")
    assert got["notify"] == (("10.0.0.5", 53), ("fd00::5", 5300))  # addresses also get NOTIFY, as in CoreDNS


def test_bind_gives_the_listen_addresses_with_the_blocks_port() -> None:
    got, _ = values("cluster.local:1053 {\n    bind 127.0.0.2 ::1\n    kubernetes\n}\n")
    assert got["listen"] == (("127.0.0.2", 1053), ("::1", 1053))
    got, _ = values("cluster.local {\n    bind 10.0.0.10\n    kubernetes\n}\n")
    assert got["listen"] == (("10.0.0.10", 5353),)  # no port: clusterdns's own default


def test_server_blocks_sharing_a_port_are_merged() -> None:
    got, warnings = values(
        ".:1053 {\n    forward . 10.0.0.2\n    log\n}\n"
        "cluster.local:1053 in-addr.arpa:1053 {\n    kubernetes {\n        pods insecure\n    }\n    prometheus :9153\n}\n"
    )
    assert got["zones"] == ("cluster.local", "in-addr.arpa")
    assert got["upstream"] == ("10.0.0.2",) and got["log_queries"]
    assert got["listen"] == (("127.0.0.1", 1053),)
    assert got["metrics"] == ("127.0.0.1", 9153)
    assert warnings == []


def test_conflicting_ports_are_an_error() -> None:
    message = error_of(".:53 {\n    forward . 10.0.0.2\n}\ncluster.local:1053 {\n    kubernetes\n}\n")
    assert message == "Corefile:1: server blocks on different ports (Corefile:1 :53, Corefile:4 :1053): clusterdns serves every zone on the same port(s)"
    assert "ports 53, 54 conflict" in error_of("cluster.local:53 example.org:54 {\n    kubernetes cluster.local\n}\n")


def test_conflicting_forwards_are_an_error() -> None:
    message = error_of(". {\n    kubernetes cluster.local\n    forward . 10.0.0.2\n}\n.:53 {\n    forward . 10.9.9.9\n}\n")
    assert message.startswith("Corefile:6: forward conflicts with Corefile:3")


# Server blocks as CoreDNS picks them (core/dnsserver/server.go ServeDNS; kube-dns stubDomains
# as dns-custom-nameservers.md translates them): a block without kubernetes that forwards
# `.` is a stub domain for its zones; `forward ZONE ...` anywhere is one for ZONE.
STUB_CASES = [
    ("cluster.local {\n    kubernetes\n}\nconsul.local {\n    forward . 10.150.0.1\n}\n",
     ("cluster.local",), (("consul.local", "10.150.0.1"),), ("none",)),
    (".:53 {\n    kubernetes cluster.local\n    forward . 172.16.0.1\n}\nabc.com:53 {\n    errors\n    cache 30\n    forward . 1.2.3.4\n}\n"
     "my.cluster.local:53 {\n    forward . 2.3.4.5 2.3.4.6\n}\n",
     (".",), (("abc.com", "1.2.3.4"), ("my.cluster.local", "2.3.4.5"), ("my.cluster.local", "2.3.4.6")), ("172.16.0.1",)),
    (". {\n    kubernetes cluster.local\n    forward consul 10.0.0.9\n    forward . 10.0.0.1\n}\n",
     (".",), (("consul", "10.0.0.9"),), ("10.0.0.1",)),
    ("a.test b.test {\n    forward . 10.0.0.7\n}\n. {\n    kubernetes cluster.local\n}\n",
     (".",), (("a.test", "10.0.0.7"), ("b.test", "10.0.0.7")), ("none",)),
]


@pytest.mark.parametrize(("text", "serve", "stubs", "upstream"), STUB_CASES)
def test_server_blocks_become_stub_domains(text: str, serve: tuple[str, ...], stubs: tuple[tuple[str, str], ...], upstream: tuple[str, ...]) -> None:
    got, warnings = values(text)
    assert got["serve_zones"] == serve
    assert got.get("stub_domains", ()) == stubs
    assert got["upstream"] == upstream
    assert warnings == []


def test_a_stub_block_holds_only_forwarding_plugins() -> None:
    message = error_of("cluster.local {\n    kubernetes\n}\nconsul.local {\n    transfer {\n        to *\n    }\n    forward . 10.150.0.1\n}\n")
    assert message.startswith("Corefile:5: transfer in server block consul.local: clusterdns serves a block without kubernetes as a stub domain")


def test_a_single_server_block_without_braces() -> None:
    got, _ = values("cluster.local:1053\nkubernetes\nlog\n")
    assert got["listen"] == (("127.0.0.1", 1053),) and got["log_queries"]


def test_flags_and_environment_beat_the_corefile(tmp_path: Path) -> None:
    corefile = write(tmp_path, "cluster.local:1053 {\n    kubernetes {\n        ttl 30\n        pods insecure\n    }\n    log\n}\n")
    assert config_of("--corefile", str(corefile)).ttl == 30
    assert config_of("--corefile", str(corefile), "--ttl", "7").ttl == 7
    assert config_of("--corefile", str(corefile), environ={"CLUSTERDNS_TTL": "8"}).ttl == 8
    assert config_of("--corefile", str(corefile), "--ttl", "7", environ={"CLUSTERDNS_TTL": "8"}).ttl == 7
    assert config_of("--corefile", str(corefile), "--listen", "127.0.0.1:0").listen == (("127.0.0.1", 0),)
    assert config_of("--corefile", str(corefile), environ={"CLUSTERDNS_LOG_QUERIES": "0"}).log_queries is False
    # CLUSTERDNS_COREFILE names the file when --corefile does not
    assert config_of(environ={"CLUSTERDNS_COREFILE": str(corefile)}).ttl == 30


def test_the_config_file_beats_the_corefile(tmp_path: Path) -> None:
    corefile = write(tmp_path, "cluster.local {\n    kubernetes {\n        ttl 30\n    }\n}\n")
    config = write(tmp_path, "ttl: 40\nmanifests: /srv/manifests\n", "clusterdns.yaml")
    got = config_of("--corefile", str(corefile), "--config", str(config))
    assert (got.ttl, got.manifests, got.pods) == (40, "/srv/manifests", "disabled")


def doc_blocks(kind: str) -> list[str]:
    text = (ROOT / "docs" / "corefile.md").read_text()
    parts = text.split("```")
    return [parts[i].split("\n", 1)[1] for i in range(1, len(parts), 2) if parts[i].split("\n", 1)[0].strip() == kind]


def test_the_docs_examples_load(tmp_path: Path) -> None:
    corefiles = [b for b in doc_blocks("") if "{" in b and not b.startswith("clusterdns:")]
    assert len(corefiles) == 4  # kubeadm's, a snippet, two blocks, a stub domain
    for text in corefiles:
        got, _ = values(text)
        assert got["zones"][0] == "cluster.local"
    from clusterdns.config.sources import load_config_file

    (yaml_example,) = doc_blocks("yaml")
    assert load_config_file(str(write(tmp_path, yaml_example, "c.yaml")))["transfer_to"] == ("*",)


def test_rewrite_rules_keep_their_order_and_block_form() -> None:
    """setup.go rewriteParse: with fewer than two words on the line, the block's words complete the rule."""
    got, _ = values(
        ". {\n    kubernetes cluster.local\n    rewrite name api.example.com api.default.svc.cluster.local\n"
        "    rewrite stop {\n        name regex (.*)-(us-west-1)\\.example\\.org {1}.service.{2}.consul\n"
        "        answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.example.org\n    }\n}\n"
    )
    assert got["rewrite"] == (
        "name api.example.com api.default.svc.cluster.local",
        "stop name regex '(.*)-(us-west-1)\\.example\\.org' '{1}.service.{2}.consul' answer name '(.*)\\.service\\.(us-west-1)\\.consul'"
        " '{1}-{2}.example.org'",
    )
    assert "Corefile:3: rewrite: name rule supports only exact" in error_of(". {\n    kubernetes cluster.local\n    rewrite name a.com b.com c.com\n}\n")
