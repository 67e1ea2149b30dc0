"""Ops: what operators probe and scrape: /health, /ready, /status (http.py), /metrics (metrics.py),
and the per-listener counters they are made from (counters.py)."""
