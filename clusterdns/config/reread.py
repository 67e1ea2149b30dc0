"""Where the running settings came from, read again: a fingerprint of the Corefile (imports
expanded) and config file, and the Config they make now (CoreDNS's plugin/reload)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from clusterdns.config.corefile_syntax import parse_corefile
from clusterdns.config.settings import Config
from clusterdns.errors import ConfigError


@dataclass(frozen=True)
class ConfigSources:
    """The --corefile and --config a server was started with, and how its Config was made of
    them (with the same flags and environment), so a reload makes it the same way."""

    corefile: str | None
    config_file: str | None
    environ: Mapping[str, str]
    make: Callable[[], Config]

    def fingerprint(self) -> str:
        """SHA-512 of what the files say: the Corefile as parsed, its imports expanded (as
        reload.go hashes caddyfile.Parse's server blocks, so an edited imported file counts and
        a comment does not), and the config file's bytes. A file that cannot be read or parsed
        hashes as its error, so one broken edit is reported once, not at every check."""
        digest = hashlib.sha512()
        if self.corefile:
            try:
                with open(self.corefile, encoding="utf-8") as f:
                    text = f.read()
                digest.update(repr(parse_corefile(text, self.corefile, self.environ)[0]).encode())
            except (OSError, ConfigError, UnicodeDecodeError) as e:
                digest.update(f"unreadable: {e}".encode())
        if self.config_file:
            digest.update(b"\0config file\0")
            try:
                with open(self.config_file, "rb") as f:
                    digest.update(f.read())
            except OSError as e:
                digest.update(f"unreadable: {e}".encode())
        return digest.hexdigest()


def next_check(interval: float, jitter: float, rng: random.Random | None = None) -> float:
    """Seconds to the next look: INTERVAL moved by up to half of JITTER either way, JITTER capped
    at half the interval (setup.go: `rand.Int63n(j) - j/2`), so many servers started together
    do not all reload at once."""
    jitter = min(jitter, interval / 2)
    if jitter <= 0:
        return interval
    return interval + (rng or random).uniform(-jitter / 2, jitter / 2)

