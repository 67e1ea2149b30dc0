"""Generate a benchmark cluster: N Services (+ optional Deployments) and a dnsperf query file."""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterable
from pathlib import Path

SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: svc{i}
  namespace: {ns}
spec:
  selector:
    app: app{i}
  ports:
  - name: http
    port: 80
    targetPort: 8080
"""

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: app{i}
  template:
    metadata:
      labels:
        app: app{i}
    spec:
      containers:
      - name: app
        image: nginx
        ports:
        - containerPort: 8080
"""


def generate(out: Path, services: int, replicas: int, per_file: int, namespaces: int) -> list[str]:
    """Write the manifests; return the Service names (FQDNs)."""
    names = []
    groups = []
    for i in range(services):
        ns = "default" if namespaces <= 1 else f"ns{i % namespaces}"
        groups.append([SERVICE.format(i=i, ns=ns)] + ([DEPLOYMENT.format(i=i, ns=ns, replicas=replicas)] if replicas else []))
        names.append(f"svc{i}.{ns}.svc.cluster.local")
    write_parts(out, groups, per_file)
    return names


def write_parts(out: Path, groups: Iterable[list[str]], per_file: int) -> None:
    """Multi-document files part00000.yaml, ...: `per_file` groups (a Service and what goes with it) each."""
    out.mkdir(parents=True, exist_ok=True)
    docs: list[str] = []
    files = 0
    for n, group in enumerate(groups, 1):
        docs += group
        if n % per_file == 0:
            (out / f"part{files:05d}.yaml").write_text("---\n".join(docs))
            docs, files = [], files + 1
    if docs:
        (out / f"part{files:05d}.yaml").write_text("---\n".join(docs))


def query_file(path: Path, names: list[str], misses: float, seed: int = 42) -> None:
    """dnsperf input: every name (type A) plus `misses` × as many NXDOMAIN names, shuffled."""
    lines = [f"{n} A" for n in names]
    lines += [f"missing{i}.default.svc.cluster.local A" for i in range(int(len(names) * misses))]
    random.Random(seed).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=0, help="Deployment replicas per Service (0: no Deployments)")
    p.add_argument("--per-file", type=int, default=100)
    p.add_argument("--namespaces", type=int, default=1)
    p.add_argument("--queries", type=Path)
    p.add_argument("--misses", type=float, default=0.1)
    args = p.parse_args()
    names = generate(args.out, args.services, args.replicas, args.per_file, args.namespaces)
    if args.queries:
        query_file(args.queries, names, args.misses)


if __name__ == "__main__":
    main()
