"""Query log lines in the format of CoreDNS's `log` plugin (its "common" format).

    [INFO] 10.0.0.7:50759 - 29008 "A IN web.shop.svc.cluster.local. udp 56 false 512" NOERROR qr,aa,rd 106 0.0002s

Off by default (--log-queries): building a line costs far more than answering a cached
query, so the hot path only calls this when asked to.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from clusterdns.codes import CLASS_LABELS, FLAG_LABELS, RCODE_LABELS, RCODE_MASK, type_text
from clusterdns.config.addresses import hostport_text
from clusterdns.wire import FormErr, parse_query

log = logging.getLogger("clusterdns.query")


def line(peer: Any, proto: str, query: bytes, reply: bytes, seconds: float) -> str:
    host, port = (peer[0], peer[1]) if isinstance(peer, tuple) else (str(peer), 0)
    qid = struct.unpack_from("!H", query)[0] if len(query) >= 2 else 0
    try:
        q = parse_query(query)
        name = _spelled(query, q.qname_end)
        qtype, qclass = type_text(q.qtype), CLASS_LABELS.get(q.qclass, f"CLASS{q.qclass}")
        do = "true" if q.edns and q.edns.do else "false"
        bufsize = q.edns.udp_size if q.edns else 512
    except FormErr:
        name, qtype, qclass, do, bufsize = "-", "-", "-", "false", 512
    flags = struct.unpack_from("!H", reply, 2)[0] if len(reply) >= 4 else 0
    rcode = RCODE_LABELS.get(flags & RCODE_MASK, str(flags & RCODE_MASK))
    rflags = ",".join(text for bit, text in FLAG_LABELS if flags & bit)
    return (f'[INFO] {hostport_text(host, port)} - {qid} "{qtype} {qclass} {name} {proto} {len(query)} {do} {bufsize}" '
            f"{rcode} {rflags} {len(reply)} {seconds:.7f}s")


def _spelled(wire: bytes, end: int) -> str:
    """The question name as the client spelled it (CoreDNS logs it that way)."""
    labels, pos = [], 12
    while pos < end and wire[pos]:
        labels.append(wire[pos + 1 : pos + 1 + wire[pos]].decode("latin-1"))
        pos += 1 + wire[pos]
    return ".".join(labels) + "."


def record(peer: Any, proto: str, query: bytes, reply: bytes, seconds: float) -> None:
    log.info("%s", line(peer, proto, query, reply, seconds))
