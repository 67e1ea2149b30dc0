"""Serve: wire in, wire out. The handler sends each question through its server block's answer
chain (chain.py) of sources (hosts.py, k8s_external.py, kubernetes.py, forward.py); UDP and TCP
listeners frame it and keep their replies; server.py runs it all, workers.py forks."""
