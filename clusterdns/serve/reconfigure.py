"""A changed Corefile or config file applied to the running server without dropping a query (CoreDNS's reload).

What CoreDNS does on a reload (caddy's Instance.Restart, plugin/reload/reload.go) and what
clusterdns does the same way: the new configuration is built in full beside the running one
(its manifests pipeline, upstreams, caches and answer chain); only when every part of it
stands, and every new listening address is bound, is it swapped in; a file that does not load
leaves the running configuration as it was, logged with its line and counted in
coredns_reload_failed_total. Listeners whose address stays keep their sockets (queries queued
in the kernel are answered by the new chain); only added or removed addresses are bound or
closed. The old upstream groups finish what they started before they are closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import fields, replace
from typing import Protocol

from clusterdns.config.addresses import Address
from clusterdns.config.reread import ConfigSources, next_check
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.ops.listen import OpsListeners
from clusterdns.pipeline import Pipeline
from clusterdns.serve.answering import Answering
from clusterdns.serve.handler import Handler
from clusterdns.serve.listeners import Listeners
from clusterdns.serve.workers import Workers


class Server(Protocol):
    """What a reload reads and changes of the running server (serve/server.py's Server)."""

    config: Config
    pipeline: Pipeline
    answering: Answering
    dns: Listeners
    ops: OpsListeners
    serves_ops: bool  # the first process: it serves the HTTP routes
    bound: list[Address]
    reload_failures: int
    workers: Workers

    @property
    def handler(self) -> Handler: ...

    def swap(self, config: Config, pipeline: Pipeline, answering: Answering) -> None: ...

    def after_swap(self, old: Config, same_manifests: bool) -> None: ...

log = logging.getLogger("clusterdns")

# Settings a running process cannot take: the number of processes is fixed at start-up.
AT_START_ONLY = ("workers",)


def changed_settings(old: Config, new: Config) -> list[str]:
    return [f.name for f in fields(Config) if getattr(old, f.name) != getattr(new, f.name)]


class Reloader:
    """Looks at the Corefile and config file every --reload seconds (with jitter) and at SIGUSR1;
    when what they say changed, builds the new configuration and applies it."""

    def __init__(self, server: Server, sources: ConfigSources) -> None:
        self.server = server
        self.sources = sources
        self.seen = sources.fingerprint()  # what the running configuration was made of
        self.lock = asyncio.Lock()  # one reload at a time
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """The periodic look, if --reload is on (CoreDNS: only with the reload plugin), and SIGUSR1
        (CoreDNS reloads on SIGUSR1 with or without it)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self._usr1)
        self._schedule()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _schedule(self) -> None:
        if self.server.config.reload > 0 and (self.task is None or self.task.done()):
            self.task = asyncio.get_running_loop().create_task(self._every())

    def _usr1(self) -> None:
        self.server.workers.signal(signal.SIGUSR1)
        asyncio.get_running_loop().create_task(self.check(forced=True))

    async def _every(self) -> None:
        # A reload that turns `reload` off ends the looking (reload.go: the plugin is gone).
        while self.server.config.reload > 0:
            await asyncio.sleep(next_check(self.server.config.reload, self.server.config.reload_jitter))
            await self.check()

    async def check(self, forced: bool = False) -> bool:
        """Re-read the files if they changed (or `forced`) and apply them; whether a new
        configuration is in effect."""
        loop = asyncio.get_running_loop()
        async with self.lock:
            seen = await loop.run_in_executor(None, self.sources.fingerprint)
            if seen == self.seen and not forced:
                return False
            # reload.go keeps the new hash even when the reload fails: a broken file is
            # reported once, and tried again when it changes.
            self.seen = seen
            try:
                config = await loop.run_in_executor(None, self.sources.make)
                applied = await apply(self.server, config)
            except ConfigError as e:
                self.server.reload_failures += 1
                log.error("the configuration changed but does not load, still serving the previous one: %s", e)
                return False
            self._schedule()
            return applied


async def apply(server: Server, new: Config) -> bool:
    """Build everything `new` needs beside what runs, then swap it in; ConfigError (nothing
    changed) when a part cannot be built or an address cannot be bound."""
    old = server.config
    changed = changed_settings(old, new)
    for name in AT_START_ONLY:
        if name in changed:
            log.warning("--%s changed in the configuration: it takes effect at the next start", name)
            new = replace(new, **{name: getattr(old, name)})
            changed.remove(name)
    if not changed:
        log.info("configuration re-read: nothing changed")
        return False
    loop = asyncio.get_running_loop()
    same_manifests = new.manifests == old.manifests
    pipeline = Pipeline(new.manifests, new, server.pipeline.snapshot if same_manifests else None)
    snapshot = (await loop.run_in_executor(None, lambda: pipeline.refresh(full=True))).snapshot
    answering = Answering.of(new, snapshot)
    answering.handler.panics = server.handler.panics  # a counter: it never goes back
    added = await server.dns.open(new, answering)
    try:
        replaced = await server.ops.start(new) if server.serves_ops else {}
    except ConfigError:
        server.dns.close(added)
        raise
    previous = server.answering
    # The swap, in a thread that holds the reload lock, so a manifests reload running now
    # finishes on the old pipeline first and the next one uses the new one.
    await loop.run_in_executor(None, server.swap, new, pipeline, answering)
    server.dns.close([a for a in old.listen if a not in new.listen])
    server.bound = server.dns.bound
    server.ops.close(replaced)
    loop.create_task(previous.close(previous.forwarder.timeout + 1))
    server.after_swap(old, same_manifests)
    log.info("configuration reloaded: %s", ", ".join(changed))
    return True
