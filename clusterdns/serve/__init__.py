"""Serve: wire in, wire out. The handler sends each question through the answer chain (sources.py);
UDP and TCP listeners frame it and keep their replies; server.py runs it all, workers.py forks."""
