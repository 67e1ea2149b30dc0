"""The docker-compose lab, checked without Docker: docker-compose.yml, Dockerfile, .dockerignore,
zones/compose-lab/ and docs/compose.md must agree with each other and with the facts of
Docker's own rules for compose (`dns:` takes IPs only, port 53 inside, no `dns:` on the DNS
server itself, the host publish on loopback only). tests/e2e/test_compose_lab.py replays the lab's
resolver path for real.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers.composelab import DOC
from tests.helpers.process import Server, clusterdns_argv


def test_the_doc_quotes_the_load_and_reload_lines(tmp_path: Path) -> None:
    """docs/compose.md quotes `loaded /zones: ...` for the first load and `reloaded /zones: ...`
    for later ones; the server prints exactly those words."""
    text = DOC.read_text(encoding="utf-8")
    assert "`loaded /zones: ...`" in text and "`reloaded /zones: ...`" in text
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    server = Server(clusterdns_argv("serve", "--manifests", str(tmp_path), "--listen", "127.0.0.1:0", "--upstream", "none",
                                    "--watch", "poll", "--poll-interval", "0.2"))
    try:
        assert server.wait_for_output(rf"clusterdns: loaded {re.escape(str(tmp_path))}: ")
        (tmp_path / "b.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n")
        assert server.wait_for_output(rf"clusterdns: reloaded {re.escape(str(tmp_path))}: 1 added"), server.output
    finally:
        server.stop()
