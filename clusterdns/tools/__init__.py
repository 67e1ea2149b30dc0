"""Tools: the commands besides `serve`, reading the snapshot and the resolver's grammar: check,
records and export-zone (offline.py), records --explain, compare, status."""
