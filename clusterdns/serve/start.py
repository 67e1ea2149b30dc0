"""Start-up: load the manifests before binding, bind, check for a forwarding loop, fork the
--workers children, serve until a signal, stop the children."""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine
from typing import Any

from clusterdns.config.reread import ConfigSources
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.serve.memory import one_arena
from clusterdns.serve.server import HELD_SIGNALS, Server
from clusterdns.serve.sockets import SocketPair
from clusterdns.upstream.loop import LOOP_CHECK_TIMEOUT, check_loop


def _close(sockets: list[SocketPair]) -> None:
    for udp, tcp in sockets:
        udp.close()
        tcp.close()


def run(config: Config, runner: Callable[[Coroutine[Any, Any, None]], None], sources: ConfigSources | None = None) -> None:
    """Load, bind, fork --workers - 1 children (each serving its own SO_REUSEPORT sockets
    and watching the manifests itself), serve, and stop the children on the way out."""
    # Until serve() handles SIGHUP and SIGUSR1, their default action would kill the process: a reload
    # asked for while loading, or a parent forwarding one to a worker still starting,
    # waits instead (the mask is inherited across fork, and by threads started meanwhile).
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    one_arena()  # before any thread starts
    server = Server(config, sources)
    server.load(full=True)  # before binding: a broken start fails before any port is taken
    sockets = server.bind(reuse_port=config.workers > 1)
    # Bound but not yet served: a probe sent through the upstreams that reaches our own UDP
    # sockets means a forwarding loop (CoreDNS's loop plugin); exit 2.
    every_upstream = list(dict.fromkeys([*server.upstreams, *(u for stub in server.stubs.values() for u in stub.upstreams)]))
    if config.loop_detect == "on" and every_upstream:
        try:
            check_loop([udp for udp, _ in sockets], every_upstream, min(config.upstream_timeout, LOOP_CHECK_TIMEOUT))
        except ConfigError:
            _close(sockets)
            raise
    # Each child: its own sockets on the same ports, its own event loop.
    server.workers.fork(config.workers - 1, child=lambda: runner(server.serve(server.bind(reuse_port=True), announce=False)),
                        before=lambda: _close(sockets))
    try:
        runner(server.serve(sockets))
    finally:
        server.workers.stop()
