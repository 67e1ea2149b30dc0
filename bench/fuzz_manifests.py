#!/usr/bin/env python3
"""The long campaign for bad manifests (`make fuzz-manifests`): no file stops the pipeline.

Each text is a manifest file made from the repository's own (zones/ and tests/clusters/),
its values replaced by odd ones (wrong types, numbers out of range, impossible dates, long
and invalid names, deep nesting) and its text cut and spliced, written as YAML or as JSON.
A third of each chunk's texts is read with each of three settings (SETTINGS), by one
Pipeline each, one text after the other as a server reloads edits, and for each the
pipeline must give a snapshot (every problem a Problem, never an exception) that
goes out in a zone transfer and answers the names it holds (fuzz_manifests.check) in
messages dnspython reads, so that no label over 63 octets or name over 255 reaches the
wire; the snapshot of a file without an error must be the one a fresh load gives. A text
that fails is saved, after the text read before it, to tests/fuzz_corpus/manifests/, which
tests/bench/test_fuzz_manifests.py replays.

    python bench/fuzz_manifests.py                        # 100,000 texts, every core
    python bench/fuzz_manifests.py --count 20000 --seed 7
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import random
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dns.message  # noqa: E402
import dns.reversename  # noqa: E402
from campaign import main as campaign_main  # noqa: E402

from clusterdns.codes import AAAA, A  # noqa: E402
from clusterdns.config.settings import Config  # noqa: E402
from clusterdns.pipeline import Pipeline, load  # noqa: E402
from clusterdns.serve import transfer  # noqa: E402
from clusterdns.serve.handler import Handler  # noqa: E402
from clusterdns.snapshot.table import Snapshot  # noqa: E402
from clusterdns.snapshot.xfr import zone_records  # noqa: E402
from clusterdns.wire import parse_query  # noqa: E402

CORPUS = ROOT / "tests" / "fuzz_corpus" / "manifests"
THEN = "\n#### fuzz-manifests: then\n"  # a saved failure: the text read before, THEN, the text
ODD = [None, True, 0, -1, 65536, 2**63, 1.5, "", "x" * 70, "a" * 300, "A_b", "-", "10.96.0.1", "::1", "1.2.3.4.5", "None",
       "é.example", "a..b", "web", "TCP", "Ready", [], {}, [1], ["x"], {"a": 1}, {"name": None}, [[[]]]]  # fmt: skip
SNIPPETS = ["2024-02-30", "1" * 4301, "0x" + "f" * 3600, "0o" + "7" * 5000, "0b" + "1" * 15000, "59:" * 2500 + "1", "!!int abc",
            "!!float abc", "!!bool maybe", "!!timestamp abc",
            "1e400", "-.inf", ".nan", "0x1F", "0o17", "1_0", "~", "!!binary aGk=", "&a x", "*a",
            "<<: {a: 1}", "\ufeff", "\x00", "\\ud800", "NaN", "[" * 300, "{}", "'", '"', "\t", "\r\n"]  # fmt: skip
ALPHABET = "\n -:#[]{}\",\\0a.eé"
LOOP = asyncio.new_event_loop()


def seeds() -> list[list[Any]]:
    """The documents of every tracked manifest under zones/ and tests/clusters/."""
    try:
        listed = subprocess.run(["git", "ls-files", "zones", "tests/clusters"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a checkout
        listed = [str(p.relative_to(ROOT)) for d in ("zones", "tests/clusters") for p in (ROOT / d).rglob("*")]
    found = []
    for rel in sorted(f for f in listed if f.endswith((".yaml", ".yml", ".json"))):
        try:
            documents = [d for d in yaml.safe_load_all((ROOT / rel).read_text()) if isinstance(d, dict)]
        except (OSError, yaml.YAMLError, ValueError):  # the fixtures of bad input: their text is mutated below anyway
            continue
        if documents:
            found.append(json.loads(json.dumps(documents, default=str)))  # plain data: dates as text
    return found


def odd_value(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """`value` with one field replaced by an odd value, removed, or changed further down."""
    if isinstance(value, dict) and value and depth < 8 and rng.random() < 0.8:
        key = rng.choice(list(value))
        out = dict(value)
        what = rng.randrange(5)
        if what == 0:
            del out[key]
        elif what == 1:
            out[key] = rng.choice(ODD)
        elif what == 2:
            out[rng.choice(["clusterIP", "hostname", "subdomain", "selector", "ports", "name", "namespace", "replicas", "podIP",
                            "addresses", "serviceName", "externalName", "type", "labels"])] = rng.choice(ODD)  # fmt: skip
        else:
            out[key] = odd_value(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 8:
        i = rng.randrange(len(value))
        return value[:i] + [odd_value(rng, value[i], depth + 1)] + value[i + 1 :]
    return rng.choice(ODD)


def written(rng: random.Random, documents: list[Any]) -> tuple[str, str]:
    """(text, ".yaml" or ".json"): the documents as multi-document YAML, a kubectl List in
    YAML or JSON, or one JSON document."""
    form = rng.randrange(4)
    if form == 0:
        return yaml.safe_dump_all(documents, default_flow_style=rng.choice([False, None, True]), explicit_start=True), ".yaml"
    listed = {"apiVersion": "v1", "kind": rng.choice(["List", "List", "ServiceList", "PodList"]), "items": documents}
    if form == 1:
        return yaml.safe_dump(listed), ".yaml"
    if form == 2 or len(documents) > 1:
        return json.dumps(listed, indent=rng.choice([4, 2, None])) + "\n", ".json"
    return json.dumps(documents[0], indent=2) + "\n", ".json"


def spliced(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(text) + 1)
        op = rng.random()
        values = [m.end() for m in re.finditer(": ", text)]
        if op < 0.3 and values:  # a value written as the snippet: `port: 1e400`
            at = rng.choice(values)
            end = text.find("\n", at)
            text = text[:at] + rng.choice(SNIPPETS) + (text[end:] if end >= 0 else "")
        elif op < 0.5:
            text = text[:at] + rng.choice(SNIPPETS) + text[at + rng.randrange(3) :]
        elif op < 0.75:
            text = text[:at] + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3))) + text[at:]
        else:
            text = text[:at] + text[at + rng.randint(1, 8) :]
    return text


def mutated(rng: random.Random, pool: list[list[Any]]) -> tuple[str, str]:
    documents = [doc for _ in range(rng.randint(1, 3)) for doc in rng.choice(pool)][:12]
    for _ in range(rng.randint(0, 4)):
        i = rng.randrange(len(documents))
        documents[i] = odd_value(rng, documents[i])
    text, suffix = written(rng, documents)
    return (spliced(rng, text) if rng.random() < 0.4 else text), suffix


def check(pipeline: Pipeline) -> None:
    """The reload's snapshot goes out whole in a zone transfer and answers the names it holds
    (the first 40 of them, and 20 of its addresses' PTRs), every message one dnspython reads;
    and, for a file without an error (one with an error serves its last good version), it
    is the snapshot a fresh load of the same file gives."""
    snapshot = pipeline.refresh().snapshot
    axfr = dns.message.make_query("cluster.local", "AXFR").to_wire()
    for message in transfer.messages(snapshot, axfr, parse_query(axfr), 2):
        dns.message.from_wire(message)
    handler = Handler(snapshot, pipeline.config)
    records = list(zone_records(snapshot))
    owners = sorted({".".join((*rr.owner.labels, "cluster.local")) if rr.owner else "cluster.local" for rr in records})
    addresses = sorted({ipaddress.ip_address(rr.rdata) for rr in records if rr.rtype in (A, AAAA)}, key=str)
    questions = [(name, qtype) for i, name in enumerate(owners[:40]) for qtype in (("A", "SRV") if i % 2 else ("ANY", "AAAA"))]
    questions += [(dns.reversename.from_address(str(address)).to_text(), "PTR") for address in addresses[:20]]
    # Pod names (spec 4.1): the Pods' own addresses where `pods verified` keeps them, and a few others
    pods = [(namespace, ip) for namespace, ips in sorted(snapshot.pod_ips.items())[:5] for ip in sorted(ips)[:4]]
    pods += [("default", str(address)) for address in addresses[:5]]
    questions += [(f"{ip.replace('.', '-').replace(':', '-')}.{namespace}.pod.cluster.local", "A" if "." in ip else "AAAA") for namespace, ip in pods]
    for name, qtype in questions:
        query = dns.message.make_query(name, qtype)
        result = handler.respond(query.to_wire(), tcp=True)
        if inspect.isawaitable(result):  # a CNAME chased out of the zone: to no upstream (SERVFAIL)
            result = LOOP.run_until_complete(result)[0]  # (reply, its counter key)
        reply = dns.message.from_wire(result)  # type: ignore[arg-type]
        assert reply.id == query.id, name
    if all(state.good for state in pipeline.store.files.values()):
        again = load(pipeline.config)
        assert (snapshot.state, snapshot.entries, snapshot.static, snapshot.problems) == (again.state, again.entries, again.static, again.problems)
        assert list(snapshot.contributions.items()) == list(again.contributions.items())


# The settings each chunk reads a third of its texts with: the default (kubeadm's), then the
# options that change names and answers (endpoint_pod_names, pods verified or disabled,
# ignore empty_service).
SETTINGS: list[dict[str, Any]] = [{}, {"endpoint_pod_names": True, "pods": "verified"}, {"pods": "disabled", "ignore_empty_service": True}]


def replay(record: str, scratch: Path) -> Snapshot:
    """A saved failure (see campaign()) read again: the text before, then the text, by one
    pipeline with the settings it failed with (check() after each); raises what check()
    finds, or gives the last snapshot."""
    head, _, texts = record.partition("\n")
    before, _, text = texts.partition(THEN)
    suffixes, settings = head.split(" ", 2)[:2], json.loads(head.split(" ", 2)[2]) if head.count(" ") >= 2 else {}
    config = Config(manifests=str(scratch), **settings)
    pipeline = Pipeline(scratch, config)
    for each, suffix in zip((before, text), suffixes, strict=True):
        for old in scratch.glob("m.*"):
            old.unlink()
        (scratch / f"m{suffix}").write_bytes(each.encode("utf-8", "surrogatepass"))
        check(pipeline)
    return pipeline.snapshot  # type: ignore[return-value]


def campaign(count: int, seed: int, chunk: int = 0, reading: Path | None = None) -> tuple[int, int, list[str]]:
    """(texts run, texts read without a problem, failures) for `count` texts of chunk `chunk`:
    a part with each of SETTINGS, one pipeline each."""
    rng, pool = random.Random(f"{seed}/{chunk}"), seeds()
    parts = [count // len(SETTINGS) + (i < count % len(SETTINGS)) for i in range(len(SETTINGS))]
    clean, failed = 0, []
    for settings, part in zip(SETTINGS, parts, strict=True):
        part_clean, part_failed = _part(rng, pool, part, settings, reading)
        clean, failed = clean + part_clean, failed + part_failed
    return count, clean, failed


def _part(rng: random.Random, pool: list[list[Any]], count: int, settings: dict[str, Any], reading: Path | None) -> tuple[int, list[str]]:
    failed: list[str] = []
    clean = 0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = Config(manifests=str(root), **settings)
        pipeline, before, before_suffix = Pipeline(root, config), "", ".yaml"
        for _ in range(count):
            text, suffix = mutated(rng, pool)
            record = f"{before_suffix} {suffix} {json.dumps(settings)}\n{before}{THEN}{text}"  # what replay() reads
            if reading is not None:
                reading.write_bytes(record.encode("utf-8", "surrogatepass"))
            if suffix != before_suffix:
                (root / f"m{before_suffix}").unlink(missing_ok=True)
            (root / f"m{suffix}").write_bytes(text.encode("utf-8", "surrogatepass"))
            try:
                check(pipeline)
                clean += not pipeline.snapshot.problems  # type: ignore[union-attr]
                before = text
            except Exception:  # noqa: BLE001 - what the campaign looks for
                failed.append(record)
                print(traceback.format_exc(limit=-3), file=sys.stderr)
                pipeline, before = Pipeline(root, config), ""  # start again from a fresh one, as replay() does
            before_suffix = suffix
    return clean, failed


if __name__ == "__main__":
    sys.exit(campaign_main("fuzz-manifests", __doc__, campaign, 100_000, CORPUS, ".txt", "read without a problem", "failed"))
