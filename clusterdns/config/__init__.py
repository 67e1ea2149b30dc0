"""Settings: one definition per setting (settings.py), read from flags, CLUSTERDNS_* variables,
a YAML file (sources.py) or a CoreDNS Corefile (corefile.py)."""
