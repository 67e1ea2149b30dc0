"""Derive: what the controllers would make of the objects: Pods of workloads, Pod IPs, ClusterIPs,
endpoints (cluster.py's derive() is the entry point)."""
