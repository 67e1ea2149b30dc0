"""What answers for one configuration: upstream groups, the handler's chain, the rate limiter;
made whole at start-up and again for each configuration reload (reconfigure.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from clusterdns.config.addresses import Address, parse_hostport
from clusterdns.config.settings import Config
from clusterdns.serve.handler import Handler
from clusterdns.serve.ratelimit import RateLimiter
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.forwarder import Forwarder
from clusterdns.upstream.resolvconf import resolve_upstreams


@dataclass(frozen=True)
class Answering:
    """What answers for one configuration: the default upstreams, one group per stub domain, the
    handler with its chain of sources, and the UDP rate limiter."""

    upstreams: tuple[Address, ...]
    forwarder: Forwarder
    stubs: dict[str, Forwarder]
    handler: Handler
    limiter: RateLimiter | None

    @classmethod
    def of(cls, config: Config, snapshot: Snapshot | None = None) -> Answering:
        upstreams = tuple(resolve_upstreams(config))
        forwarder = Forwarder(upstreams, config)
        # --stub-domain: each zone's own upstreams, with their own health, cache and counters.
        stubs = {zone: Forwarder([parse_hostport(a, 53) for a in addresses], replace(config, cache=0) if zone in config.uncached_stubs else config, zone)
                 for zone, addresses in config.stubs.items()}
        limiter = RateLimiter(config.rate_limit) if config.rate_limit else None  # one set of buckets for every UDP listener
        return cls(upstreams, forwarder, stubs, Handler(snapshot, config, forwarder, stubs), limiter)

    async def close(self, grace: float) -> None:
        """After `grace` seconds (what it forwards by then has had its deadline), stop the upstream groups."""
        await asyncio.sleep(grace)
        for fwd in (self.forwarder, *self.stubs.values()):
            await fwd.close()
