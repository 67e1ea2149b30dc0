"""The records of a zone transfer, as CoreDNS's `kubernetes` plugin hands them to its `transfer`
plugin (plugin/kubernetes/xfr.go), listed from the snapshot.

Between the two SOAs (RFC 5936 2.2): the NS records and their names' addresses (TTL 0, as
xfr.go builds them); then per Service, sorted by name, what its contribution holds for the
transfer: the ExternalName CNAME (the record a query is answered with) and its transfer rows
(contributions.py), which point at the very entries queries are answered from. Nothing is
named or checked here: a record the snapshot left out (a name that cannot be encoded) is not
in the rows. The rows weigh SRV records as xfr.go does, 100 on a ClusterIP Service and 100 /
the slice's ready addresses on endpoints; query answers weigh them per answer: that difference
is CoreDNS's.
"""

from __future__ import annotations

from collections.abc import Iterator

from clusterdns.codes import SRV
from clusterdns.records import RR, Name, address_rr
from clusterdns.snapshot.table import ADDRESS, Snapshot, transfer_rows


def zone_records(snap: Snapshot) -> Iterator[RR]:
    """Every record of the transfer between the two SOAs, owners relative to the zone."""
    yield from snap.apex_ns
    for glue in snap.apex_glue:
        # The NS names' addresses, as CoreDNS's xfr.go sends nsAddrs: TTL 0.
        yield RR(glue.owner, glue.rtype, 0, glue.rdata)
    ttl = snap.ttl
    # xfr.go sorts the Services by name; contributions are keyed (namespace, name).
    for _, (_, contrib) in sorted(snap.contributions.items(), key=lambda item: (item[0][1], item[0][0])):
        for (name, _), rrs in contrib.static:
            owner = Name(tuple(name.split(".")))
            yield from (RR(owner, rr.rtype, rr.ttl, rr.rdata) for rr in rrs)
        owners: dict[str, Name] = {}
        for name, entry, weight in transfer_rows(contrib.transfer):
            owner = owners.get(name) or owners.setdefault(name, Name(tuple(name.split("."))))
            if weight == ADDRESS:
                yield address_rr(owner, entry.host, ttl)
            else:
                yield RR(owner, SRV, ttl, (0, weight, entry.port, entry.target))
