"""Response-rate limiting per client prefix (--rate-limit), like BIND's RRL with `slip 2`.

A token bucket per client /24 (IPv4) or /56 (IPv6): it holds at most `rate` tokens and
refills at `rate` tokens a second, so a client gets a burst of `rate` responses and then
`rate` a second. Over the limit a UDP response is dropped, except that every `slip`-th
dropped response is sent truncated (TC=1, no records) instead: a real client whose
address is being spoofed by a flood retries over TCP and still gets its answer, while
the spoofed flood gets nothing bigger than the query back. TCP is never limited (its
source address cannot be spoofed). The transport asks only when the limit is on, so a
limit of 0 costs nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import struct
import time

from clusterdns.codes import TC
from clusterdns.wire import FormErr, skip_name

log = logging.getLogger("clusterdns")

SEND, DROP, SLIP = 0, 1, 2
MAX_PREFIXES = 100_000  # buckets kept; idle (full) buckets are swept when this is reached
LOG_EVERY = 10.0  # seconds between "rate limiting" log lines


def prefix(addr: str) -> str | bytes:
    """The client's /24 (IPv4) or /56 (IPv6): one bucket per prefix, as BIND's RRL."""
    if ":" not in addr:
        return addr[: addr.rfind(".")]
    try:
        ip = ipaddress.IPv6Address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if ip.ipv4_mapped is not None:
        text = str(ip.ipv4_mapped)
        return text[: text.rfind(".")]
    return ip.packed[:7]


class RateLimiter:
    """Token buckets keyed by client prefix. `check` says SEND, DROP or SLIP."""

    def __init__(self, rate: int, slip: int = 2, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)  # also the bucket size: a burst of `rate`, refilled in one second
        self.slip = slip
        self.clock = clock
        # prefix -> [tokens, last refill time, responses dropped since the bucket emptied]
        self.buckets: dict[str | bytes, list[float]] = {}
        self.dropped = 0
        self.slipped = 0
        self._logged = -LOG_EVERY

    def check(self, addr: str) -> int:
        now = self.clock()
        key = prefix(addr)
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_PREFIXES:
                self._sweep(now)
            self.buckets[key] = [self.rate - 1.0, now, 0.0]
            return SEND
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.rate:
            tokens = self.rate
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            bucket[2] = 0.0
            return SEND
        bucket[0] = tokens
        bucket[2] += 1.0
        if bucket[2] == 1.0 and now - self._logged >= LOG_EVERY:
            self._logged = now
            shown = key if isinstance(key, str) else ipaddress.IPv6Address(key + bytes(9)).compressed
            log.warning("rate limit: more than %d responses/s to %s/%d: dropping, every %s truncated (%d dropped, %d truncated so far)",
                        self.rate, shown + (".0" if isinstance(key, str) else ""), 24 if isinstance(key, str) else 56,
                        f"{self.slip}th" if self.slip else "none", self.dropped, self.slipped)
        if self.slip and int(bucket[2]) % self.slip == 0:
            self.slipped += 1
            return SLIP
        self.dropped += 1
        return DROP

    def gate(self, addr: str, reply: bytes) -> bytes | None:
        """What to send instead of `reply` to `addr`: the reply, a truncated copy, or nothing."""
        verdict = self.check(addr)
        if verdict == SEND:
            return reply
        if verdict == SLIP:
            return truncated(reply)
        return None

    def _sweep(self, now: float) -> None:
        """Forget buckets that have refilled (idle clients); everything if that is not enough."""
        for key in [k for k, b in self.buckets.items() if now - b[1] >= 1.0]:  # a bucket refills in one second
            del self.buckets[key]
        if len(self.buckets) >= MAX_PREFIXES // 2:
            self.buckets.clear()


def truncated(reply: bytes) -> bytes:
    """A reply cut to its header and question with TC set (a rate limiter's slip): no records."""
    if len(reply) < 12:
        return reply
    end = 12
    if reply[4:6] == b"\0\1":
        try:
            end = skip_name(reply, 12) + 4
        except FormErr:
            end = 12
        if end > len(reply):
            end = 12
    return reply[:2] + bytes((reply[2] | TC >> 8, reply[3])) + struct.pack("!HHHH", 1 if end > 12 else 0, 0, 0, 0) + reply[12:end]
