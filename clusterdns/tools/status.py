"""`clusterdns status`: ask a running server how its last reload went (its /status endpoint)."""

from __future__ import annotations

import argparse
import json
import logging
import urllib.request

from clusterdns.config.addresses import HEALTH_PORT, parse_hostport

log = logging.getLogger("clusterdns")


def run_status(args: argparse.Namespace) -> int:
    """Print the last reload's status; exit 1 when the manifests have errors, 2 when unreachable."""
    host, port = parse_hostport(args.health, HEALTH_PORT)
    url = f"http://{host}:{port}/status"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = json.load(response)
    except OSError as e:
        log.error("cannot reach %s: %s", url, e)
        return 2
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        last = status.get("last_reload", {})
        print(f"ready: {'yes' if status.get('ready') else 'no'}; manifests {status.get('manifests')}; listening on {', '.join(status.get('listen', []))}")
        print(f"last reload: {last.get('change')}; {last.get('services')} services, {last.get('pods')} pods, {last.get('names')} names; "
              f"serial {last.get('serial')}; {last.get('seconds', 0) * 1000:.0f} ms; {status.get('reloads')} reloads, {status.get('reload_failures')} failed")
        for line in last.get("errors", []) + last.get("warnings", []):
            print(f"  {line}")
    return 1 if status.get("last_reload", {}).get("errors") else 0
