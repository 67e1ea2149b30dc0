"""Reading manifests as the server does, without a server: for tests that look at documents."""

from __future__ import annotations

from pathlib import Path

from clusterdns.config.settings import Config
from clusterdns.manifests.documents import ReadResult
from clusterdns.manifests.files import list_files, read_file
from clusterdns.model import ClusterState
from clusterdns.pipeline import Pipeline


def read_directory(root: str | Path) -> list[ReadResult]:
    """Every document of every manifest under `root`, recursively, sorted by path.

    Symlinked files and directories are followed (each real directory is entered once,
    so link loops end). Unparseable files or documents become error Problems naming the
    file and line; the other documents are still returned.
    """
    base = Path(root)
    if base.is_file():
        return read_file(base.parent, base.name)
    paths, problems = list_files(base)
    entries: list[ReadResult] = list(problems)
    for rel in paths:
        entries.extend(read_file(base, rel))
    return entries


def load_state(root: str | Path, config: Config) -> ClusterState:
    """The cluster `serve` would derive from the directory."""
    state = Pipeline(root, config).refresh(full=True).snapshot.state
    assert state is not None
    return state


def service_yaml(name: str, ip: str, port: int | str = 80) -> str:
    """A ClusterIP Service with a fixed ClusterIP and one named port (so it has an SRV)."""
    port_text = f'"{port}"' if isinstance(port, str) else str(port)
    return (
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  namespace: default\n"
        "spec:\n"
        f"  clusterIP: {ip}\n"
        "  ports:\n"
        "  - name: http\n"
        f"    port: {port_text}\n"
    )
