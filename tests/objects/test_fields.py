"""Reader.ip: every address as ipaddress's canonical text, every non-address an error naming it."""

from __future__ import annotations

import ipaddress
import random

import pytest

from clusterdns.errors import ManifestError
from clusterdns.manifests.documents import Document
from clusterdns.objects.fields import Reader, Reading


def _ipaddress(text: str) -> str | None:
    """What the API server's own parsing accepts, as the canonical text (ipaddress), or None."""
    try:
        return None if "%" in text else ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        return None


def _read(text: str) -> str | None:
    reader = Reader(Document("pods.yaml", "0", 1, {}), "Pod", [], Reading())
    try:
        return reader.ip(text, "status.podIP")
    except ManifestError as e:
        assert f"{text!r} is not an IP address" in e.problem.message
        return None


CORNERS = ["10.244.0.5", " 10.244.0.5 ", "010.244.0.5", "10.244.0.05", "10.244.0", "10.244.0.256", "10.244.0.5.1", "0.0.0.0",
           "255.255.255.255", "0x1.2.3.4", "1..3.4", "1.2.3.-4", "1.2.3.+4", "１.2.3.4", "1.2.3.4\x00", "\udcff", "", "::1",
           "::ffff:10.244.0.5", "2001:DB8::1", "fe80::1%eth0"]


@pytest.mark.parametrize("text", CORNERS)
def test_corners_as_ipaddress(text: str) -> None:
    assert _read(text) == _ipaddress(text)


def test_random_dotted_as_ipaddress() -> None:
    """The IPv4 shortcut (inet_pton, then inet_ntoa's text) against ipaddress on random dotted numbers."""
    rnd = random.Random(7)
    for _ in range(5000):
        parts = [str(rnd.randint(0, 300)) if rnd.random() < 0.8 else f"0{rnd.randint(0, 99)}" for _ in range(rnd.choice([3, 4, 4, 4, 5]))]
        text = ".".join(parts)
        assert _read(text) == _ipaddress(text), text
