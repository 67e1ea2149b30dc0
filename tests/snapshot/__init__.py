"""Tests of snapshot."""
