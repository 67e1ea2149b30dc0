"""`clusterdns serve --config FILE` (or CLUSTERDNS_CONFIG): every setting from a YAML file,
below flags and CLUSTERDNS_* variables, above the defaults."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterdns.config.settings import Config, settings
from clusterdns.config.sources import load_config_file, setting_keys
from clusterdns.errors import ConfigError
from tests.helpers.process import clusterdns_argv, config_of


def write(tmp_path: Path, text: str, name: str = "clusterdns.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_list_and_scalar_forms(tmp_path: Path) -> None:
    path = write(tmp_path, """
manifests: /srv/manifests
listen: "[::1]:5353"          # one value for a repeatable setting
zones: [cluster.local, in-addr.arpa]
ttl: 30
pods: verified
namespaces: [default, kube-system]
endpoint-pod-names: true      # - or _
ignore_empty_service: yes
fallthrough: in-addr.arpa
upstream:
  - 10.0.0.2
  - "[fd00::53]:53"
health: none
ready: 0.0.0.0:8182
lameduck: 5
poll_interval: 0.5
transfer_to: "*"
notify: [10.0.0.5, "10.0.0.6:5300"]
""")
    c = config_of("--config", str(path))
    assert c.manifests == "/srv/manifests"
    assert c.listen == (("::1", 5353),)
    assert c.zones == ("cluster.local", "in-addr.arpa")
    assert (c.ttl, c.pods) == (30, "verified")
    assert c.namespaces == ("default", "kube-system")
    assert c.endpoint_pod_names and c.ignore_empty_service and not c.noendpoints
    assert c.fallthrough == ("in-addr.arpa",)
    assert c.upstream == ("10.0.0.2", "[fd00::53]:53")
    assert c.health is None and c.ready == ("0.0.0.0", 8182)
    assert c.lameduck == 5.0 and c.poll_interval == 0.5
    assert c.transfer_to == ("*",)
    assert c.notify == (("10.0.0.5", 53), ("10.0.0.6", 5300))
    assert c.metrics == Config().metrics  # not in the file: the default


def test_list_forms_of_comma_settings(tmp_path: Path) -> None:
    """A repeatable setting also takes one comma-separated string, as its CLUSTERDNS_ variable does;
    so does `namespaces`, whose flag takes a comma-separated word."""
    path = write(tmp_path, "listen: 127.0.0.1:5353,127.0.0.2:5353\nnamespaces: a,b\nzone: cluster.local\n")
    c = config_of("--config", str(path))
    assert c.listen == (("127.0.0.1", 5353), ("127.0.0.2", 5353))
    assert c.namespaces == ("a", "b")
    assert c.zones == ("cluster.local",)  # `zone`, the flag's name, works too


def test_every_setting_can_come_from_the_file(tmp_path: Path) -> None:
    """Driven by settings(): each default, written as YAML under the setting's name and under
    its flag's name, loads back as that default."""
    for name, default, s in settings():
        value: Any
        if isinstance(default, tuple) and len(default) == 2 and isinstance(default[1], int) and isinstance(default[0], str):
            value = f"[{default[0]}]:{default[1]}" if ":" in default[0] else f"{default[0]}:{default[1]}"  # an address
        elif isinstance(default, tuple):
            value = [f"{d[0]}:{d[1]}" if isinstance(d, tuple) else d for d in default]
        elif default is None:
            value = "none"
        else:
            value = default
        for key in (name, s.flag.lstrip("-")):
            path = write(tmp_path, yaml.safe_dump({key: value}))
            assert load_config_file(str(path)) == {name: default}, key
    assert set(setting_keys().values()) == {name for name, _, _ in settings()}


@pytest.mark.parametrize(
    "text, message",
    [
        ("ttl: thirty\n", "ttl: expected a whole number, not 'thirty'"),
        # Values YAML's constructors could not make (a traceback before): their text, refused by the setting.
        ("ttl: 2024-02-30\n", "ttl: expected a whole number, not '2024-02-30'"),
        ("ttl: " + "1" * 5000 + "\n", "ttl: '" + "1" * 59 + "... (5,000 characters) is out of range"),
        ("ttl: 0x" + "f" * 5000 + "\n", "ttl: expected a whole number, not '0x" + "f" * 57 + "... (5,002 characters)"),
        ("lameduck: 1e400x\n", "lameduck: expected a number, not '1e400x'"),
        ("ttl: !!float abc\n", ":1: not valid YAML: 'abc' is not a valid float"),
        ("pods: all\n", "pods: 'all' is not one of disabled, insecure, verified"),
        ("listen: nowhere:53\n", "listen: bad address 'nowhere:53'"),
        ("health:\n", "health: no value given"),
        ("health: off\n", "health: YAML reads this as false; write none to turn it off"),  # the docs' word for it
        ("zones: off\n", "zones: expected a word or number, not false (quote it if you mean the text)"),
        ("noendpoints: maybe\n", "noendpoints: expected true or false, not 'maybe'"),
        ("ttl: [1, 2]\n", "ttl: expected one value, not a list"),
        ("zones: {a: b}\n", "zones: expected a word or number, not a mapping"),
        ("- ttl\n", "expected a mapping of setting: value, not a list"),
        ("ttl: 5\nttl: 6\n", ":2: setting 'ttl' given twice"),
        ("ttl: [\n", "not valid YAML"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config_file(str(path))
    assert str(e.value).startswith(str(path)) and message in str(e.value)


def test_duplicate_keys_are_caught_by_yaml_or_us(tmp_path: Path) -> None:
    # `zone` and `zones` name the same setting
    path = write(tmp_path, "zone: a.local\nzones: [b.local]\n")
    with pytest.raises(ConfigError, match="setting 'zones' given twice"):
        load_config_file(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        config_of("--config", str(tmp_path / "nope.yaml"))


def test_empty_file_is_no_settings(tmp_path: Path) -> None:
    assert config_of("--config", str(write(tmp_path, "# nothing yet\n"))) == Config()


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    path = write(tmp_path, "ttl: 30\npods: verified\nupstream: [10.0.0.2]\nlog_queries: true\n")
    assert config_of("--config", str(path)).ttl == 30  # file > default
    assert config_of("--config", str(path), environ={"CLUSTERDNS_TTL": "40"}).ttl == 40  # env > file
    assert config_of("--config", str(path), "--ttl", "50", environ={"CLUSTERDNS_TTL": "40"}).ttl == 50  # flag > env
    c = config_of("--config", str(path), "--upstream", "10.0.0.9", environ={"CLUSTERDNS_PODS": "disabled"})
    assert (c.upstream, c.pods, c.log_queries) == (("10.0.0.9",), "disabled", True)
    assert config_of("--config", str(path), environ={"CLUSTERDNS_LOG_QUERIES": "no"}).log_queries is False
    # CLUSTERDNS_CONFIG names the file; --config beats it
    assert config_of(environ={"CLUSTERDNS_CONFIG": str(path)}).ttl == 30
    other = write(tmp_path, "ttl: 60\n", "other.yaml")
    assert config_of("--config", str(other), environ={"CLUSTERDNS_CONFIG": str(path)}).ttl == 60


def test_environment_variables_are_read_like_the_file() -> None:
    """CLUSTERDNS_* values go through the same converter as the config file's."""
    c = config_of(environ={"CLUSTERDNS_UPSTREAM": "10.0.0.2, 10.0.0.3:5353", "CLUSTERDNS_NS_ADDRESS": "10.0.0.1, 10.0.0.2",
                           "CLUSTERDNS_LOG_QUERIES": "on", "CLUSTERDNS_WATCH": "poll"})
    assert c.upstream == ("10.0.0.2", "10.0.0.3:5353")
    assert c.ns_address == ("10.0.0.1", "10.0.0.2")
    assert (c.log_queries, c.watch) == (True, "poll")
    assert config_of(environ={"CLUSTERDNS_LOG_QUERIES": ""}).log_queries is False  # set but empty: off
    with pytest.raises(ConfigError, match=r"CLUSTERDNS_WATCH='bogus': 'bogus' is not one of auto, poll, off"):
        config_of(environ={"CLUSTERDNS_WATCH": "bogus"})
    with pytest.raises(ConfigError, match=r"CLUSTERDNS_LOG_QUERIES='banana': expected true or false"):
        config_of(environ={"CLUSTERDNS_LOG_QUERIES": "banana"})
    with pytest.raises(ConfigError, match=r"CLUSTERDNS_TTL='x':"):
        config_of(environ={"CLUSTERDNS_TTL": "x"})


def test_relaxed_service_names_from_the_flag_the_environment_and_the_file(tmp_path: Path) -> None:
    """--relaxed-service-names, CLUSTERDNS_RELAXED_SERVICE_NAMES and `relaxed-service-names:`
    (off by default): a Service named `7up` is served only with one of them."""
    manifests = tmp_path / "m"
    manifests.mkdir()
    (manifests / "s.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: 7up}\nspec: {clusterIP: 10.96.7.7, ports: [{port: 80}]}\n")
    path = write(tmp_path, "relaxed-service-names: true\n")
    assert not config_of().relaxed_service_names
    for config in (config_of("--relaxed-service-names"), config_of(environ={"CLUSTERDNS_RELAXED_SERVICE_NAMES": "true"}),
                   config_of("--config", str(path))):
        assert config.relaxed_service_names
    check = [*clusterdns_argv("check", str(manifests))]
    refused = subprocess.run(check, capture_output=True, text=True)
    assert refused.returncode == 1 and "'7up' is not a valid Service name" in refused.stdout, refused.stdout
    served = subprocess.run(check, capture_output=True, text=True, env={**os.environ, "CLUSTERDNS_RELAXED_SERVICE_NAMES": "1"})
    assert served.returncode == 0 and "1 services" in served.stdout, served.stdout


@pytest.mark.parametrize(("text", "message"), [
    ("rate_limit: -5\n", "--rate-limit -5: cannot be negative (0: off)"),  # was taken, and every answer dropped
    ("poll_interval: -1\n", "--poll-interval -1: must be more than 0"),  # was taken, and a core spun polling
    ("upstream_timeout: .nan\n", "--upstream-timeout nan: must be a finite number"),
])
def test_numbers_out_of_their_range_are_refused_from_a_file_too(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_of("--config", str(write(tmp_path, text)))
