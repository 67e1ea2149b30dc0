"""Tests of derive."""
