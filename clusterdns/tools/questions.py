"""The questions `clusterdns compare` asks: from a case file, or every name and type a snapshot
serves with negative probes around them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

import dns.rdatatype

from clusterdns.codes import NOERROR
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.names import dashed_ip, port_labels, split
from clusterdns.resolver import resolve
from clusterdns.snapshot import xfr
from clusterdns.snapshot.table import Snapshot

PROBE = "clusterdns-compare-probe"  # a label no cluster object is expected to carry
TRANSFERS = ("AXFR", "IXFR")


@dataclass(frozen=True, order=True)
class AskedQuestion:
    """One question compare asks both servers (not upstream/exchange.py's wire-level Question)."""

    qname: str  # absolute, spelled as it will be sent
    qtype: str  # mnemonic: A, AAAA, SRV, ...

    def __str__(self) -> str:
        return f"{self.qname} {self.qtype}"


def questions_from_cases(path: str, profile: str | None, out: TextIO) -> list[AskedQuestion]:
    """The questions of a case file (tests/cases/README.md): cases without `config` (profile "default"), or of one profile."""
    import yaml

    from clusterdns.yaml_scalars import SafeLoader  # the scalars read as manifests read them (2024-02-30: its text)

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=SafeLoader)  # noqa: S506 (a SafeLoader)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"--cases {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"--cases {path}: no `cases:` list")
    wanted = profile or "default"
    profiles = set(data.get("profiles") or {}) | {c.get("config", "default") for c in data["cases"] if isinstance(c, dict)}
    if wanted not in profiles:
        raise ConfigError(f"--profile {wanted}: not in {path} (profiles: {', '.join(sorted(profiles))})")
    questions: dict[AskedQuestion, None] = {}
    skipped = 0
    for case in data["cases"]:
        if not isinstance(case, dict) or case.get("config", "default") != wanted:
            continue
        if str(case.get("qtype", "")).upper() in TRANSFERS:
            skipped += 1
            continue
        questions[AskedQuestion(str(case["qname"]), str(case["qtype"]).upper())] = None
    if skipped:
        print(f"note: {skipped} zone-transfer cases skipped (compare asks single questions)", file=out)
    return list(questions)


def questions_from_snapshot(snap: Snapshot, config: Config, positive_only: bool = False, zone_records: bool = False) -> list[AskedQuestion]:
    """Every name and type the snapshot serves, with negative probes around them.

    positive_only: only the questions clusterdns answers with records. zone_records: only the
    (name, type) pairs a zone transfer of the forward zones carries (what a secondary holds).
    Questions whose answer depends on an upstream (out-of-zone ExternalName targets,
    fallthrough) are left out: the two servers' upstreams are not being compared.
    """
    found: dict[AskedQuestion, None] = {}

    def add(name: str, qtype: str) -> None:
        found[AskedQuestion(name.rstrip(".").lower() + ".", qtype)] = None

    zones = config.forward_zones
    if zone_records:
        records = list(xfr.zone_records(snap))  # the same tree in every zone
        for zone in zones:
            add(zone, "SOA")
            for rr in records:
                owner = rr.owner.text(zone) if rr.owner is not None else zone + "."
                add(owner, dns.rdatatype.to_text(rr.rtype))
    else:
        for zone in zones:
            _forward_questions(snap, zone, add)
        for owner in snap.ptr_targets:
            labels = split(owner)
            if any(labels[len(labels) - len(z) :] == z for z in snap.reverse_zones):
                add(owner, "PTR")
        for zone in config.reverse_zones:
            add(zone, "SOA")
            add(zone, "NS")
            add(_unused_reverse_name(zone), "PTR")

    out = []
    for q in found:
        answer = resolve(snap, split(q.qname), dns.rdatatype.from_text(q.qtype))
        if answer is None or answer.chase or answer.fallthrough:
            continue  # not ours, or the upstream's to answer
        if positive_only and not (answer.rcode == NOERROR and answer.answer):
            continue
        out.append(q)
    return out


def _forward_questions(snap: Snapshot, zone: str, add: Any) -> None:
    z = zone
    for qtype in ("SOA", "NS", "A", "AAAA", "TXT", "MX"):
        add(z, qtype)
    for label in ("svc", "pod", "dns", "ns.dns", "dns-version"):
        add(f"{label}.{z}", "A")
    add(f"dns-version.{z}", "TXT")
    add(f"ns.dns.{z}", "AAAA")
    for (name, rtype), _ in snap.static.items():
        add(f"{name}.{z}", dns.rdatatype.to_text(rtype))
    for name in snap.externals:
        add(f"{name}.{z}", "CNAME")
        add(f"{name}.{z}", "A")  # followed only when the target is in one of our zones
        add(f"{name}.{z}", "SRV")
        add(f"{PROBE}.{name}.{z}", "A")  # below an ExternalName: NXDOMAIN (C3)
    for name in snap.entries:
        for qtype in ("A", "AAAA", "SRV"):
            add(f"{name}.{z}", qtype)
    add(f"{PROBE}.{PROBE}-ns.svc.{z}", "A")  # unknown namespace
    add(f"1-2-3-4.{PROBE}-ns.pod.{z}", "A")
    for ns in sorted(snap.namespaces):
        add(f"{ns}.svc.{z}", "A")  # NODATA (C2)
        add(f"{ns}.pod.{z}", "A")
        add(f"{PROBE}.{ns}.svc.{z}", "A")  # unknown Service
        add(f"{PROBE}.{ns}.pod.{z}", "A")  # not an IP
    state = snap.state
    for svc in state.services:
        if svc.namespace not in snap.namespaces:
            continue
        sname = f"{svc.name}.{svc.namespace}.svc.{z}"
        for qtype in ("A", "AAAA", "SRV", "TXT", "MX"):
            add(sname, qtype)
        add(f"{PROBE}.{sname}", "A")  # unknown endpoint
        add(f"_tcp.{sname}", "SRV")  # empty non-terminal: NXDOMAIN in CoreDNS (parse.go)
        add(f"_{PROBE}._tcp.{sname}", "SRV")
        for port in svc.ports:
            if port.name:
                add(".".join(port_labels(port.name, port.protocol)) + f".{sname}", "SRV")
        # resolv.conf search-path expansions of an FQDN (ndots:5)
        add(f"{sname}.{svc.namespace}.svc.{z}", "A")
        add(f"{sname}.svc.{z}", "A")
        add(f"{sname}.{z}", "A")
    for pod in state.pods:
        if pod.namespace in snap.namespaces:
            for ip in pod.ips:
                add(f"{dashed_ip(ip)}.{pod.namespace}.pod.{z}", "AAAA" if ":" in ip else "A")


def _unused_reverse_name(zone: str) -> str:
    """A full reverse name inside `zone` that no cluster address is likely to have."""
    labels = zone.split(".")
    if zone.endswith("in-addr.arpa"):
        have = len(labels) - 2
        return ".".join(["254"] * (4 - have) + labels) if have < 4 else zone
    have = len(labels) - 2
    return ".".join(["e"] * (32 - have) + labels) if have < 32 else zone
