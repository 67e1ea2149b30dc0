"""Wire in, wire out: read a query, send it through the answer chain, apply EDNS0 and sizes.

`Handler.respond` is synchronous on the hot path: it returns reply bytes (a repeated
question is an assembly of its cached answer), or a coroutine when the answer needs the
network (forwarding, or chasing an out-of-zone ExternalName target). What answers is an
ordered chain of sources (hosts.py, k8s_external.py, kubernetes.py, forward.py), as CoreDNS's
plugin chain: each may answer or pass the question on. Which chain is the server block's (chain.py): the default upstreams'
block holds every name, a stub domain's block the names under it. Listeners cache their
replies to exact query bytes (`fixed` says which replies they may keep); this module caches
the encoded answer to each question.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from typing import Any

import dns.message

from clusterdns.codes import AXFR, BADVERS, FORMERR, IN, IXFR, NOTIMP, OPCODE_MASK, QR, REFUSED, SERVFAIL, SOA, UPDATE, rcode_of
from clusterdns.config.settings import Config
from clusterdns.external import ExternalOptions
from clusterdns.names import zone_labels
from clusterdns.ops.counters import CounterKey, key
from clusterdns.resolver import Answer
from clusterdns.rewrite import Rewriter, Rewritten, parse_rule
from clusterdns.serve.chain import Block, Blocks, Source
from clusterdns.serve.forward import Upstream
from clusterdns.serve.hosts import HostsEntries
from clusterdns.serve.k8s_external import ExternalNames
from clusterdns.serve.kubernetes import ClusterZones
from clusterdns.serve.replies import ReplyCache
from clusterdns.serve.request import PASS, SKIP, Request, Result
from clusterdns.serve.rewriting import mapped_back, renamed
from clusterdns.serve.ttlcap import TTLCap
from clusterdns.snapshot.table import Snapshot
from clusterdns.upstream.exchange import lookup_query, parsed
from clusterdns.upstream.forwarder import Forwarder
from clusterdns.wire import MAX_UDP_SIZE, Body, Edns, FormErr, Query, assemble, encode, error_reply, parse_query, udp_limit

log = logging.getLogger("clusterdns")

class Handler:
    """Answers queries from the current snapshot through the chain of sources."""

    def __init__(self, snapshot: Snapshot | None = None, config: Config | None = None, forwarder: Forwarder | None = None,
                 stubs: Mapping[str, Forwarder] | None = None) -> None:
        self.current = snapshot  # replaced in one assignment by the server on every reload
        self.config = config or Config()
        self.forwarder = forwarder or Forwarder(())
        self.stubs = dict(stubs or {})  # --stub-domain: zone -> its own upstreams
        self.cluster = ClusterZones(self)
        # The main block's chain in CoreDNS's plugin order (kubernetes, then forward), then a
        # block per stub domain that forwards its zone (kube-dns stubDomains as CoreDNS writes them).
        rewriter = Rewriter([parse_rule(shlex.split(rule)) for rule in self.config.rewrite]) if self.config.rewrite else None
        main = Block(zone_labels(self.config.serve_zones), (*self._before_cluster(), self.cluster, Upstream(self, self.forwarder, self.config.forward_except)),
                     rewriter)
        stub_blocks = [Block(zone_labels([zone]), (Upstream(self, fwd),)) for zone, fwd in self.stubs.items()]
        self.blocks = Blocks([*stub_blocks, main])
        self.answers = ReplyCache()  # question key -> encoded Body, or where in its block's chain to start
        self.ttl_cap = TTLCap(self.config) if self.config.cache > 0 and self.config.cache_caps_own else None  # what CoreDNS's cache lets through (ttlcap.py)
        # What the last synchronous reply was (type, rcode, plugin, DO) for the listener's
        # counters, and whether it is a fixed function of the snapshot and the query bytes
        # (so the listener may keep it); answers that need the network return their key.
        self.last: CounterKey = key(0, 0, "")
        self.fixed = False
        # A forwarded reply rendered whole from a fresh cache entry: (entry, cache), which the
        # UDP listener may keep with its TTLs counting down (timed.py); None otherwise.
        self.hit: tuple[Any, Any] | None = None
        self.panics = 0  # answers that hit a bug (coredns_panics_total)

    def _before_cluster(self) -> list[Source]:
        """hosts and k8s_external, where they are on: before kubernetes, as in CoreDNS's plugin.cfg."""
        config = self.config
        sources: list[Source] = []
        if config.hosts_file is not None or config.hosts:
            sources.append(HostsEntries(self))
        if config.external_zones:
            sources.append(ExternalNames(self, ExternalOptions.of(config)))
        return sources

    def respond(self, wire: bytes, tcp: bool = False, peer: str | None = None) -> Result:
        """The reply to one query (None: drop it silently); `peer` is the client's address."""
        self.fixed = False
        self.hit = None
        if len(wire) < 12 or wire[2] & (QR >> 8):
            return None  # too short for a header, or a response: never answer those
        if wire[2] & (OPCODE_MASK >> 8):
            return self._notimp(wire)  # OPCODE other than QUERY (RFC 1035 4.1.1)
        try:
            query = parse_query(wire)
        except FormErr as e:
            return self.error_bytes(wire, FORMERR, e.question_end, edns=e.edns)
        snap = self.current
        limit = MAX_UDP_SIZE if tcp else udp_limit(query.edns)
        cached = self.answers.of(snap).get(query.key)
        if cached.__class__ is Body and not (query.edns and query.edns.version) and (cached.zone_spelling is None or wire[12 : query.qname_end].endswith(cached.zone_spelling)):
            return self.send(query, assemble(cached, wire, query, limit), cached.plugin)
        return self._through_chain(snap, Request(wire, query, tcp, peer, limit), cached)  # type: ignore[arg-type]

    def _through_chain(self, snap: Snapshot, request: Request, start: object) -> Result:
        query = request.query
        # The class first, then the EDNS version, in CoreDNS's order (core/dnsserver/server.go ServeDNS).
        if query.qclass != IN:
            return self.error(request, REFUSED)  # only class IN (C12)
        if query.edns and query.edns.version != 0:
            return self.error(request, BADVERS)  # RFC 6891 6.1.3
        if query.qtype in (AXFR, IXFR):
            return self.cluster.transfer(snap, request)
        block = self.blocks.find(query.labels)
        if block is None:
            return self.error(request, REFUSED)  # no server block holds the name (server.go ServeDNS)
        if block.rewriter is not None:
            rewritten = block.rewriter.rewrite(".".join(query.labels) + ".")
            if rewritten is not None:
                return self._rewritten(snap, block, request, rewritten)
        return self._sources(snap, block, request, start.__class__ is int and start or 0)  # type: ignore[arg-type]

    def _sources(self, snap: Snapshot, block: Block, request: Request, first: int) -> Result:
        """The block's sources from `first` on, until one answers."""
        for index in range(first, len(block.sources)):
            outcome = block.sources[index].serve(snap, request)
            if outcome is PASS:
                continue
            if outcome is SKIP:
                self.answers.put(snap, request.query.key, index + 1)  # not this source's: straight past it next time
                continue
            return outcome  # type: ignore[return-value]
        if request.fallback is not None:
            return request.fallback  # an NXDOMAIN that fell through, and no one took it
        # No source for this name: no forward plugin, so REFUSED, as CoreDNS does (C12).
        return self.error(request, REFUSED)

    def _rewritten(self, snap: Snapshot, block: Block, request: Request, rewritten: Rewritten) -> Result:
        """`rewrite name`: the chain answers the new name; the client gets its own question back."""
        if rewritten.servfail:
            log.warning("rewrite: %s", rewritten.error)
            return self.error(request, SERVFAIL, "rewrite")
        inner = renamed(request, rewritten)
        if inner is None:
            return self.error(request, SERVFAIL, "rewrite")
        result = mapped_back(self._sources(snap, block, inner, 0), request, rewritten)
        self.hit = None  # the reply is not the cache's as it stored it
        return result

    # --- what sources call ----------------------------------------------------------------------

    def upstreams_for(self, name: str) -> Forwarder:
        """The upstreams a name outside our zones goes to: its stub domain's, else the default."""
        block = self.blocks.find(tuple(name.lower().rstrip(".").split(".")))
        source = block.sources[-1] if block is not None else None
        return source.forwarder if isinstance(source, Upstream) else self.forwarder

    def local(self, snap: Snapshot, request: Request, answer: Answer, plugin: str = "kubernetes") -> bytes:
        """An answer from our own data: encoded once per question and snapshot, then assembled."""
        if self.ttl_cap is not None:
            answer = self.ttl_cap.apply(answer, request.query.key[:-4])
        body = encode(answer.rcode, (answer.answer, answer.authority, answer.additional), request.wire, request.query, answer.zone_labels,
                      plugin=plugin)
        if not request.rewritten:
            self.answers.put(snap, request.query.key, body)
        return self.send(request.query, assemble(body, request.wire, request.query, request.limit), plugin)

    async def ask(self, name: str, qtype: int) -> dns.message.Message | None:
        """`name` looked up through this server's own chain, from its first source, as CoreDNS's
        pkg/upstream re-enters the plugin chain (k8s_external's LoadBalancer hostnames)."""
        result = self.respond(lookup_query(name, qtype), tcp=True)
        if result is not None and not isinstance(result, (bytes, list)):
            result, _ = await result
        return parsed(result) if isinstance(result, bytes) else None

    def send(self, query: Query, reply: bytes, plugin: str = "kubernetes") -> bytes:
        """A reply that is a fixed function of the snapshot and the query bytes."""
        self.last = key(query.qtype, rcode_of(reply), plugin, bool(query.edns and query.edns.do))
        self.fixed = True
        return reply

    def error(self, request: Request, rcode: int, plugin: str = "") -> bytes:
        query = request.query
        return self.error_bytes(request.wire, rcode, query.qname_end + 4, query, plugin)

    def error_bytes(self, wire: bytes, rcode: int, question_end: int = 0, query: Query | None = None, plugin: str = "", edns: Edns | None = None) -> bytes:
        """An error reply, with our OPT when the query had one (RFC 6891 6.1.1, 7), even one
        that could not be read whole (`edns`)."""
        edns = query.edns if query else edns
        self.last = key(query.qtype if query else 0, rcode, plugin, bool(edns and edns.do))
        return error_reply(wire, rcode, question_end, edns)

    def _notimp(self, wire: bytes) -> bytes:
        """NOTIMP for an opcode we do not serve, with the question and OPT when they are readable.

        An UPDATE's question is its zone section, which must be class IN-like and type SOA
        (RFC 2136 2.3); any other is not echoed, so strict readers can parse the reply.
        """
        try:
            query: Query | None = parse_query(wire)
            end = query.qname_end + 4  # type: ignore[union-attr]
        except FormErr as e:
            query, end, edns = None, e.question_end, e.edns
        else:
            edns = None
        if end > 12 and wire[2] & (OPCODE_MASK >> 8) == UPDATE << 3 and (wire[end - 4 : end - 2] != SOA.to_bytes(2, "big") or wire[end - 2 : end] in (b"\0\xfe", b"\0\xff")):
            end = 0
        return self.error_bytes(wire, NOTIMP, end, query, edns=edns)

