"""Generate a benchmark cluster: N Services (+ optional Deployments) and a dnsperf query file."""

from __future__ import annotations

import argparse
import random
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
    out.mkdir(parents=True, exist_ok=True)
    names = []
    docs: list[str] = []
    files = 0
    for i in range(services):
        ns = "default" if namespaces <= 1 else f"ns{i % namespaces}"
        docs.append(SERVICE.format(i=i, ns=ns))
        if replicas:
            docs.append(DEPLOYMENT.format(i=i, ns=ns, replicas=replicas))
        names.append(f"svc{i}.{ns}.svc.cluster.local")
        if len(docs) >= per_file * (2 if replicas else 1):
            (out / f"part{files:05d}.yaml").write_text("---\n".join(docs))
            docs, files = [], files + 1
    if docs:
        (out / f"part{files:05d}.yaml").write_text("---\n".join(docs))
    return names


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
