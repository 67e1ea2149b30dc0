"""A question under `rewrite name`: asked of the chain with its new name, and the reply given back
with the client's question (and names mapped back), as CoreDNS's rewrite plugin wraps the
chain after it (plugin/rewrite/rewrite.go ServeDNS, reverter.go)."""

from __future__ import annotations

import logging
import struct

import dns.exception
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from clusterdns.codes import SERVFAIL
from clusterdns.ops.counters import CounterKey
from clusterdns.rewrite import OWNER, ResponseRule, Rewritten
from clusterdns.serve.request import Request, Result
from clusterdns.wire import FormErr, error_reply, parse_query, truncate_forwarded

log = logging.getLogger("clusterdns")

T = dns.rdatatype.RdataType
# The one name in each rdata that `answer value` and auto rules rewrite (reverter.go getRecordValueForRewrite);
# SOA means the MNAME only, not the RNAME.
VALUE_FIELDS = {T.SRV: "target", T.MX: "exchange", T.CNAME: "target", T.NS: "target", T.DNAME: "target", T.NAPTR: "replacement", T.SOA: "mname", T.PTR: "target"}


def renamed(request: Request, rewritten: Rewritten) -> Request | None:
    """The request with the rewritten question name; None if that name cannot be written."""
    wire, query = request.wire, request.query
    labels = rewritten.name.rstrip(".").split(".") if rewritten.name.strip(".") else []
    name = b"".join(bytes([len(raw)]) + raw for raw in (label.encode("latin-1") for label in labels)) + b"\0"
    new = wire[:12] + name + wire[query.qname_end :]
    try:
        return Request(new, parse_query(new), request.tcp, request.peer, request.limit, rewritten=True)
    except (FormErr, UnicodeEncodeError):
        return None


def mapped_back(result: Result, original: Request, rewritten: Rewritten) -> Result:
    """The chain's reply for the rewritten question, as the client gets it."""
    if result.__class__ is bytes:
        return _back(result, original, rewritten)  # type: ignore[arg-type]
    if result is None or isinstance(result, list):
        return result
    return _later(result, original, rewritten)  # type: ignore[arg-type]


async def _later(pending: object, original: Request, rewritten: Rewritten) -> tuple[bytes, CounterKey]:
    reply, key = await pending  # type: ignore[misc]
    return _back(reply, original, rewritten), key


def _back(reply: bytes, original: Request, rewritten: Rewritten) -> bytes:
    if not rewritten.restore and not rewritten.rules:
        return reply
    query = original.query
    try:
        out = reverse(reply, original.wire[12 : query.qname_end + 4], rewritten)
    except (dns.exception.DNSException, ValueError) as e:
        # A reply the rules cannot map back (a name they make invalid): SERVFAIL, as CoreDNS
        # fails to pack it. Logged, since a rule is at fault.
        log.warning("rewrite: cannot map the reply for %s back: %s", ".".join(query.labels), e)
        return error_reply(original.wire, SERVFAIL, query.qname_end + 4, query.edns)
    return truncate_forwarded(out, original.wire, query, original.limit)  # mapped names may make it longer


# --- the reply, mapped back (reverter.go WriteMsg): parsed once with dnspython, rendered once;
# with one_rr_per_rrset each record stays where it was. Header and OPT are carried over as parsed.


def reverse(reply: bytes, original_question: bytes, rewritten: Rewritten) -> bytes:
    """The reply to send the client.

    `original_question` is the client's question section entry on the wire (name as the client
    wrote it, then type and class). With `rewritten.restore` it replaces the reply's first question
    (or becomes it, if the reply has none); with response rules, owner and value names are mapped
    in Ns, Answer, Extra order, the rules last to first (reverter.go WriteMsg). When there is
    nothing to do the reply comes back as it was. Raises dns.exception.DNSException when the reply
    does not parse or a mapped name is not a valid domain name; answer SERVFAIL then.
    """
    if not rewritten.restore and not rewritten.rules:
        return reply  # rewrite.go ServeDNS: continue-only matches without response rules skip the reverter
    message = dns.message.from_wire(reply, one_rr_per_rrset=True)
    if rewritten.restore:
        question = _question(original_question)
        message.question[:1] = [question]
    if rewritten.rules:
        rules = rewritten.rules[::-1]
        for section in (message.authority, message.answer, message.additional):
            section[:] = [_mapped(rrset, rules) for rrset in section]
    return message.to_wire()


def _question(wire: bytes) -> dns.rrset.RRset:
    """The client's question (case, type and class as sent), from its wire form."""
    name, used = dns.name.from_wire(wire, 0)
    if len(wire) < used + 4:
        raise dns.exception.FormError("original question has no type and class")
    rdtype, rdclass = struct.unpack_from("!HH", wire, used)
    return dns.rrset.RRset(name, dns.rdataclass.RdataClass.make(rdclass), dns.rdatatype.RdataType.make(rdtype))


def _mapped(rrset: dns.rrset.RRset, rules: tuple[ResponseRule, ...]) -> dns.rrset.RRset:
    """One record (a one-record RRset) with its owner and value names run through the rules in the order given."""
    rdata = rrset[0] if len(rrset) else None  # an RR with no rdata (UPDATE's deletes) has only an owner
    field = VALUE_FIELDS.get(rrset.rdtype) if rdata is not None else None
    owner = old_owner = rrset.name.to_text()
    value = old_value = getattr(rdata, field).to_text() if field else ""
    for rule in rules:
        if rule.field == OWNER:
            owner = rule.mapper(owner)
        elif value:  # a type without a value name is left alone (reverter.go valueRewriterResponseRule)
            value = rule.mapper(value)
    if owner == old_owner and value == old_value:
        return rrset
    out = dns.rrset.RRset(dns.name.from_text(owner) if owner != old_owner else rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers, rrset.deleting)
    if rdata is not None:
        out.add(rdata.replace(**{field: dns.name.from_text(value)}) if field and value != old_value else rdata, rrset.ttl)
    return out
