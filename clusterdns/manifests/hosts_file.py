"""A hosts file (and a Corefile's inline lines) read into a table, as CoreDNS's `hosts` plugin
reads it (plugin/hosts/hostsfile.go): an input of the pipeline beside the manifests."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import MappingProxyType

from clusterdns.config.settings import Config
from clusterdns.errors import shown
from clusterdns.names import under, unfit, zone_labels

Labels = tuple[str, ...]  # a name's lower-case labels without the root: ("example", "org"); the root is ()
Address = IPv4Address | IPv6Address
Fingerprint = tuple[int, int]  # (mtime in ns, size): all CoreDNS's readHosts compares
DEFAULT_TTL = 3600  # plugin/hosts/hostsfile.go newOptions
MAX_LINE = 64 * 1024  # bufio.Scanner's token limit: CoreDNS stops reading at a line this long
# Go's bytes.Fields splits on unicode.IsSpace (Python's str.split also splits on \x1c-\x1f).
_GO_SPACE = re.compile("[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


@dataclass(frozen=True, slots=True)
class HostsTable:
    """One source's parsed lines, CoreDNS's `Map` (plugin/hosts/hostsfile.go): IPv4 and IPv6
    addresses per exact name and per wildcard name (`*` first), and names per address for PTR.
    Lists keep file order and duplicates. `skipped` holds (line number, reason) for warnings."""

    v4: Mapping[Labels, tuple[IPv4Address, ...]]
    v6: Mapping[Labels, tuple[IPv6Address, ...]]
    wild4: Mapping[Labels, tuple[IPv4Address, ...]]
    wild6: Mapping[Labels, tuple[IPv6Address, ...]]
    reverse: Mapping[bytes, tuple[Labels, ...]]  # keyed by the packed address (4 or 16 bytes)
    entries: int = 0  # Map.Len(): every address of every name, wildcards and reverse names included
    skipped: tuple[tuple[int, str], ...] = ()


EMPTY = HostsTable(*(MappingProxyType({}),) * 5)


@dataclass(frozen=True, slots=True)
class Hosts:
    """The plugin's state: the file's table, the Corefile's inline table and the options
    (plugin/hosts/setup.go hostsParse). `zones` are the Origins, which also filter names at
    parse time; `fallthrough` is empty when off, `((),)` for a bare `fallthrough` (the root)."""

    zones: tuple[Labels, ...]
    file: HostsTable = EMPTY
    inline: HostsTable = EMPTY
    ttl: int = DEFAULT_TTL
    fallthrough: tuple[Labels, ...] = ()
    fallthrough_unsupported: bool = False
    auto_reverse: bool = True  # False with `no_reverse`; kept for re-parsing the file


def parse_hosts(text: str, origins: Iterable[str], auto_reverse: bool = True) -> HostsTable:
    """Parse hosts-file text (a file, or inline lines joined with newlines) for these Origins,
    as plugin/hosts/hostsfile.go Hostsfile.parse does."""
    return parse_bytes(text.encode("utf-8", "surrogateescape"), zone_labels(origins), auto_reverse)


def parse_bytes(data: bytes, zones: tuple[Labels, ...], auto_reverse: bool = True) -> HostsTable:
    """Parse a hosts file's bytes, line by line as CoreDNS's bufio.Scanner reads them."""
    builder = _Builder(zones, auto_reverse)
    for number, line in enumerate(data.split(b"\n"), 1):
        if len(line) >= MAX_LINE:
            builder.skipped.append((number, f"line of {len(line)} bytes: CoreDNS stops reading at 64 KiB (ErrTooLong), so the rest is ignored"))
            break
        builder.line(number, line)
    return builder.table()


def _fields(line: bytes) -> list[str]:
    """Go's bytes.Fields; bytes that are not UTF-8 survive as surrogates (never spaces)."""
    if line.isascii():
        return [f.decode("ascii") for f in line.split()]  # bytes.split: Go's six ASCII spaces
    return [f for f in _GO_SPACE.split(line.decode("utf-8", "surrogateescape")) if f]


def _name(field: str) -> Labels:
    """plugin.Name(n).Normalize(): lower case, fully qualified; as labels in wire form
    (UTF-8 bytes as latin-1 characters, as clusterdns/wire.py reads question labels)."""
    text = field.lower()
    if not text.isascii():
        text = text.encode("utf-8", "surrogateescape").decode("latin-1")
    return tuple(text.split(".")) if (text := text.removesuffix(".")) else ()


def _parse_ip(field: str) -> Address | None:
    """hostsfile.go parseIP: drop an IPv6 zone (`%lo0`), then parse. An IPv4-mapped IPv6
    address is IPv4 there (`addr.To4() != nil`), so it is here too."""
    try:
        ip = ip_address(field.split("%", 1)[0])
    except ValueError:
        return None
    return (ip.ipv4_mapped or ip) if isinstance(ip, IPv6Address) else ip


class _Builder:
    """The mutable maps one parse fills; frozen into a HostsTable at the end."""

    def __init__(self, zones: tuple[Labels, ...], auto_reverse: bool) -> None:
        self.zones, self.auto_reverse = zones, auto_reverse
        self.exact: tuple[dict[Labels, list[Address]], dict[Labels, list[Address]]] = ({}, {})
        self.wild: tuple[dict[Labels, list[Address]], dict[Labels, list[Address]]] = ({}, {})
        self.reverse: dict[bytes, list[Labels]] = {}
        self.skipped: list[tuple[int, str]] = []
        self.ips: dict[str, tuple[Address, bytes] | None] = {}  # blocklists repeat one address on every line
        self.everywhere = () in zones  # Origins "." (the usual case): no name is outside

    def line(self, number: int, raw: bytes) -> None:
        fields = _fields(raw.split(b"#", 1)[0])  # everything from the first `#` is a comment
        if len(fields) < 2:
            if fields:
                self.skipped.append((number, f"{shown(fields[0])} alone: a line needs an address and a name"))
            return
        if fields[0] not in self.ips:
            ip = _parse_ip(fields[0])
            self.ips[fields[0]] = None if ip is None else (ip, ip.packed)
        if (parsed := self.ips[fields[0]]) is None:
            self.skipped.append((number, f"{shown(fields[0])} is not an IP address"))
            return
        for field in fields[1:]:
            self.name(number, parsed, field)

    def name(self, number: int, parsed: tuple[Address, bytes], field: str) -> None:
        labels, (ip, packed) = _name(field), parsed
        if not self.everywhere and not under(labels, self.zones):
            self.skipped.append((number, f"{shown(field)} is outside the zones of hosts"))
            return
        if problem := _bad_name(labels):
            # Deviation: CoreDNS keeps such a name; no question can ask for it, and a PTR to it
            # cannot be packed (the reply is lost), so it is dropped here, with a warning.
            self.skipped.append((number, f"{shown(field)} is not a DNS name: {problem}"))
            return
        family = 0 if ip.version == 4 else 1
        if labels and labels[0] == "*":  # wildcard.go isWildcardName: `*.` first; never a PTR
            self.wild[family].setdefault(labels, []).append(ip)
            return
        self.exact[family].setdefault(labels, []).append(ip)
        if self.auto_reverse:
            self.reverse.setdefault(packed, []).append(labels)

    def table(self) -> HostsTable:
        maps = (*self.exact, *self.wild, self.reverse)
        frozen = [MappingProxyType({k: tuple(v) for k, v in m.items()}) for m in maps]
        entries = sum(len(v) for m in maps for v in m.values())
        return HostsTable(*frozen, entries=entries, skipped=tuple(self.skipped))  # type: ignore[arg-type]


def _bad_name(labels: Labels) -> str:
    """Why the labels cannot be a name on the wire (RFC 1035 2.3.4), or "" when they can."""
    if "" not in labels and sum(map(len, labels)) + len(labels) <= 254 and max(map(len, labels), default=0) <= 63:
        return ""  # the usual case, checked without names.unfit's loop (files can be long)
    return unfit(labels, 0)


def entries(hosts: Hosts) -> int:
    """coredns_hosts_entries: inline.Len() + hmap.Len() (plugin/hosts/hostsfile.go readHosts)."""
    return hosts.file.entries + hosts.inline.entries


def _read(path: str, last: Fingerprint | None) -> tuple[Fingerprint, bytes | None] | None:
    """None when the file cannot be opened; the data None when the fingerprint is `last`."""
    try:
        fd = os.open(path, os.O_RDONLY)  # opens a directory too, as Go's os.Open does
    except OSError:
        return None
    try:
        st = os.fstat(fd)  # of the file opened, as readHosts does (file.Stat)
        fingerprint = (st.st_mtime_ns, st.st_size)
        return fingerprint, None if fingerprint == last else _read_all(fd)
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    """What Go's scan reads: a read error ends it with what was read (a directory: nothing)."""
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks)


def reload(hosts: Hosts, path: str, last: Fingerprint | None) -> tuple[Hosts, Fingerprint | None, bool]:
    """hostsfile.go readHosts: (hosts, fingerprint, changed), re-parsing the file only when its
    (mtime, size) differs from `last`. A missing or unreadable file keeps the table parsed last
    time (CoreDNS serves it on); inline lines are never re-read; a change keeping both is missed."""
    read = _read(path, last)
    if read is None:
        return hosts, last, False
    fingerprint, data = read
    if data is None:
        return hosts, fingerprint, False
    return replace(hosts, file=parse_bytes(data, hosts.zones, hosts.auto_reverse)), fingerprint, True


def hosts_of(config: Config) -> Hosts | None:
    """The hosts plugin as the settings describe it, its inline lines parsed and its file not
    yet read (reload() reads it); None when it is off (no --hosts-file, no --host)."""
    if config.hosts_file is None and not config.hosts:
        return None
    zones = zone_labels(config.hosts_zones)
    auto_reverse = not config.hosts_no_reverse
    inline = parse_bytes("\n".join(config.hosts).encode(), zones, auto_reverse) if config.hosts else EMPTY
    return Hosts(zones, EMPTY, inline, config.hosts_ttl, zone_labels(config.hosts_fallthrough), config.hosts_fallthrough_unsupported, auto_reverse)


def describe(hosts: Hosts | None) -> str:
    """One line about a hosts table: its entries, and how many lines or names it left out with
    the first few (a repeated problem is one line with a count)."""
    if hosts is None:
        return "off"
    skipped = hosts.file.skipped + hosts.inline.skipped
    text = f"{entries(hosts)} entries"
    if skipped:
        first = "; ".join(f"line {number}: {reason}" for number, reason in skipped[:3])
        text += f", {len(skipped)} left out ({first}{'; ...' if len(skipped) > 3 else ''})"
    return text
