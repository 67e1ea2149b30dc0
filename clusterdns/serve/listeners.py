"""One process's DNS listeners by --listen address: served, turned to a reloaded configuration, closed."""

from __future__ import annotations

import asyncio

from clusterdns.config.addresses import Address
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError
from clusterdns.ops.counters import ListenerStats
from clusterdns.serve import querylog
from clusterdns.serve.answering import Answering
from clusterdns.serve.sockets import SocketPair, bind_pair, start
from clusterdns.serve.tcp import TCPServer
from clusterdns.serve.udp import UDPServer


class Listeners:
    """A UDP and a TCP listener per address as configured, with the address they are bound to
    (port 0 resolved) and their counters."""

    def __init__(self) -> None:
        self.servers: dict[Address, tuple[Address, UDPServer, TCPServer]] = {}
        self.stats: list[ListenerStats] = []

    @property
    def bound(self) -> list[Address]:
        return [bound for bound, _, _ in self.servers.values()]

    async def serve(self, address: Address, pair: SocketPair, config: Config, answering: Answering) -> None:
        """Answer on a bound socket pair with `answering`."""
        log_query = querylog.record if config.log_queries else None
        udp, tcp = await start(pair[0], pair[1], answering.handler, answering.limiter, log_query, config.tcp_max_queries,
                               config.loadbalance == "round_robin")
        self.servers[address] = ((address[0], pair[0].getsockname()[1]), udp, tcp)
        self.stats += [udp.stats, tcp.stats]

    async def open(self, config: Config, answering: Answering) -> list[Address]:
        """Bind and serve the --listen addresses of `config` not served yet; all or none
        (ConfigError naming the address). Returns those added."""
        added: list[Address] = []
        for host, port in config.listen:
            if (host, port) in self.servers:
                continue
            try:
                pair = bind_pair(host, port, reuse_port=config.workers > 1)
            except OSError as e:
                self.close(added)
                raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
            await self.serve((host, port), pair, config, answering)
            added.append((host, port))
        return added

    def use(self, config: Config, answering: Answering) -> None:
        """Every listener answers its next query with `answering` and `config`'s options."""
        log_query = querylog.record if config.log_queries else None
        balance = config.loadbalance == "round_robin"
        for _, udp, tcp in self.servers.values():
            udp.use(answering.handler, answering.limiter, balance, log_query)
            tcp.use(answering.handler, config.tcp_max_queries, balance, log_query)

    def close(self, addresses: list[Address]) -> None:
        for address in addresses:
            _, udp, tcp = self.servers.pop(address)
            self.stats = [ls for ls in self.stats if ls is not udp.stats and ls is not tcp.stats]
            udp.close()
            tcp.close()

    async def drain(self) -> None:
        """Close every listener, giving the answers in progress up to 3 s."""
        for _, udp, tcp in self.servers.values():
            udp.close()
            tcp.close()
            pending = list(udp.tasks) + [t for c in tcp.connections for t in c.tasks]
            if pending:
                await asyncio.wait(pending, timeout=3)
