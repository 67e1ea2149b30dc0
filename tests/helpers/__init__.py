"""Helpers the tests share: reading manifests without the server, lab plumbing."""
