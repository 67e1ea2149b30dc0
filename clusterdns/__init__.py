"""clusterdns: authoritative cluster DNS served from a directory of Kubernetes manifests."""

__version__ = "0.1.0"
