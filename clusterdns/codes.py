"""The DNS vocabulary, defined once: record types, classes, opcodes, RCODEs, header flags."""

from __future__ import annotations

# Record types (RFC 1035 3.2.2; AAAA RFC 3596, SRV RFC 2782, OPT RFC 6891; the query-only
# types IXFR RFC 1995, AXFR RFC 5936, ANY RFC 8482).
A, NS, CNAME, SOA, PTR, HINFO, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 13, 15, 16, 28, 33, 41
IXFR, AXFR, ANY = 251, 252, 255

# Classes (RFC 1035 3.2.4, RFC 2136 for NONE).
IN, CH, HS, NONE, ANY_CLASS = 1, 3, 4, 254, 255

# Opcodes (RFC 1035 4.1.1, NOTIFY RFC 1996, UPDATE RFC 2136).
QUERY, NOTIFY, UPDATE = 0, 4, 5

# RCODEs (RFC 1035 4.1.1); BADVERS is an extended RCODE carried in the OPT record (RFC 6891 6.1.3).
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16

# Header flags as bits of the 16-bit word after the ID (RFC 1035 4.1.1, RFC 4035 3.1.6).
# Byte 2 of a message holds QR, the opcode, AA, TC and RD; byte 3 RA, AD, CD and the RCODE:
# `wire[2] & (TC >> 8)` tests one bit of byte 2, `wire[3] & CD` one of byte 3.
QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
OPCODE_MASK = 0x7800
RCODE_MASK = 0x000F  # the low four bits of byte 3
DO = 0x8000  # the DNSSEC OK bit, in the OPT record's TTL field (RFC 3225 3)

# Mnemonics, for metrics labels, logs and listings: the types CoreDNS's metrics name
# (plugin/metrics/vars/monitor.go); any other is "other" there, TYPEnnn in listings.
TYPE_LABELS = {A: "A", AAAA: "AAAA", MX: "MX", SOA: "SOA", CNAME: "CNAME", PTR: "PTR", TXT: "TXT", NS: "NS", SRV: "SRV",
               43: "DS", 48: "DNSKEY", 46: "RRSIG", 47: "NSEC", 50: "NSEC3", 65: "HTTPS", IXFR: "IXFR", AXFR: "AXFR", ANY: "ANY"}
RCODE_LABELS = {NOERROR: "NOERROR", FORMERR: "FORMERR", SERVFAIL: "SERVFAIL", NXDOMAIN: "NXDOMAIN", NOTIMP: "NOTIMP",
                REFUSED: "REFUSED", BADVERS: "BADVERS"}
CLASS_LABELS = {IN: "IN", CH: "CH", HS: "HS", NONE: "NONE", ANY_CLASS: "ANY"}
FLAG_LABELS = ((QR, "qr"), (AA, "aa"), (TC, "tc"), (RD, "rd"), (RA, "ra"), (AD, "ad"), (CD, "cd"))


def type_text(rtype: int) -> str:
    """A type's mnemonic, or TYPEnnn (RFC 3597 5)."""
    return TYPE_LABELS.get(rtype) or f"TYPE{rtype}"


def rcode_of(message: bytes) -> int:
    """The header RCODE of a message (the extended bits live in its OPT record)."""
    return message[3] & RCODE_MASK
