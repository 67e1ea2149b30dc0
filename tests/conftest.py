"""Fixtures every test package may use; the helpers they are built on live in tests/helpers/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.process import Server, clusterdns_argv


@pytest.fixture
def serve() -> Iterator:
    """serve(manifests_dir, *flags, env=...) -> Server; stopped at the end of the test."""
    servers: list[Server] = []

    def start(manifests: str | Path, *flags: str, listen: str = "127.0.0.1:0", upstream: str | None = "none",
              env: dict[str, str] | None = None) -> Server:
        argv = clusterdns_argv("serve", "--manifests", str(manifests), "--listen", listen, *flags)
        if upstream is not None and "--upstream" not in flags:
            argv += ["--upstream", upstream]
        server = Server(argv, env=env)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
