"""Tests of the resolver."""
