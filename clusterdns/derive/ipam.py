"""Address allocation: each address a pure function of its key unless hashes collide."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from clusterdns.derive.memo import ObjectKey

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ALLOCATION_ROUNDS = 32  # hashed candidates per key before a linear scan
_LOW_64 = 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Band:
    """A run of candidate addresses: integers first .. first+size-1."""

    first: int
    size: int


def allocate(keys: Sequence[ObjectKey], bands: Sequence[Band], taken: set[int]) -> list[int | None]:
    """Addresses for `keys` (sorted), in their order (None: every band is full), each a pure
    function of its key unless hashes collide.

    Round r gives every unplaced key the candidate h1 + r*h2 (double hashing) in the first
    band; a candidate that is taken, or wanted by an earlier key in the same round, sends
    the key to the next round. So adding or removing one key moves no other key's address
    unless their candidates collide. Keys still unplaced after the rounds (a nearly full
    band) scan linearly, then the other bands. `taken` is updated.
    """
    result: list[int | None] = [None] * len(keys)
    band = bands[0] if bands else Band(0, 0)
    # (key's index, h1 mod size, step from h2, h1): both hash terms reduced once per key, not once
    # per round ((h1 + r*step) % size is the same address); with plain tuples the loop is 2x faster.
    size = band.size or 1
    step_range = max(band.size - 1, 1)
    # h1, h2: the high and low 64 bits of a 16-byte BLAKE2b of "namespace/name".
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    numbers = [from_bytes(blake2b(f"{namespace}/{name}".encode(), digest_size=16).digest(), "big") for namespace, name in keys]
    pending = [(i, (n >> 64) % size, (n & _LOW_64) % step_range + 1, n >> 64) for i, n in enumerate(numbers)]
    if band.size > 0:
        first = band.first
        for round_ in range(_ALLOCATION_ROUNDS):
            claimed: dict[int, int] = {}
            later = []
            for item in pending:
                address = first + (item[1] + round_ * item[2]) % size
                if address in taken or address in claimed:
                    later.append(item)
                else:
                    claimed[address] = item[0]
            for address, i in claimed.items():
                result[i] = address
            taken.update(claimed)
            pending = later
            if not pending:
                break
    for i, _, _, h1 in pending:
        found = _scan(bands, h1, taken)
        if found is None:  # every band is full
            break
        result[i] = found
        taken.add(found)
    return result


def _scan(bands: Sequence[Band], h1: int, taken: set[int]) -> int | None:
    for i, band in enumerate(bands):
        start = h1 % band.size if i == 0 and band.size else 0
        for step in range(band.size):
            address = band.first + (start + step) % band.size
            if address not in taken:
                return address
    return None


def ip_family(ip: str) -> int:
    return 6 if ":" in ip else 4


def by_family(cidrs: Sequence[str]) -> dict[int, Network]:
    """The first configured CIDR of each IP family, in configuration order (primary first)."""
    networks: dict[int, Network] = {}
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        networks.setdefault(net.version, net)
    return networks


def to_int(ip: str) -> int:
    """An address (canonical text, as objects/ stores it) as a number: int(ipaddress.ip_address(ip)), 6x faster."""
    return int.from_bytes(socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip), "big")


def to_text(value: int, family: int) -> str:
    """Canonical text of an address (what ipaddress's `.compressed` gives, faster for IPv4)."""
    if family == 4:
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return ipaddress.IPv6Address(value).compressed
