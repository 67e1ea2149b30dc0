"""Objects: each manifest document validated into a slim, frozen object of its kind (kinds.py),
file by file, with per-file last-good (store.py)."""
