"""Snapshot: the derived cluster compiled into the frozen table every reader reads (table.py),
by build.py from per-Service contributions; xfr.py lists it for zone transfers."""
