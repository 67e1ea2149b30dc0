"""Known answers: the replies the _udpbatch extension's receive loop sends without calling
Python (a listener's cache of replies to exact query bytes, for the handler's current snapshot),
and the batched loop's error path. The loop is driven directly on loopback sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from clusterdns.ops.counters import DURATION_BUCKETS
from clusterdns.serve import udp as listeners
from tests.helpers.udp import drain, needs_extension


@needs_extension
def test_batched_loop_sends_what_is_ready_then_raises(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    for word in (b"one", b"two", b"boom", b"four"):
        c.sendto(word, listener.getsockname())

    def answer(data: bytes, peer: Any) -> bytes:
        if data == b"boom":
            raise ValueError("handler bug")
        return data.upper()

    time.sleep(0.05)  # all four queued, so one recvmmsg takes them together
    deadline = time.monotonic() + 5
    with pytest.raises(ValueError, match="handler bug"):
        while time.monotonic() < deadline:  # (should the kernel still be delivering some)
            listeners._serve_batched(listener, answer)
    assert [c.recvfrom(10)[0] for _ in range(2)] == [b"ONE", b"TWO"]
    # The loop is usable again afterwards (it is not left marked busy on the error path).
    c.sendto(b"again", listener.getsockname())
    drain(listener, 1, answer)
    assert c.recvfrom(10)[0] == b"AGAIN"


class Answers:
    """Stands for the handler as the extension sees it: only `current` is read."""

    def __init__(self) -> None:
        self.current = object()


def new_cell() -> list[Any]:
    return [0.0] + [0] * (len(DURATION_BUCKETS) + 1)


@needs_extension
def test_known_answers_get_the_query_id_and_are_counted_without_a_callback(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    answers, cell = Answers(), new_cell()
    known = {b"\x01\x00question": (b"\x81\x80known reply", cell)}
    called: list[bytes] = []
    for qid in (b"\x12\x34", b"\xab\xcd", b"\x00\x00"):
        c.sendto(qid + b"\x01\x00question", listener.getsockname())
    c.sendto(b"\x55\x55\x01\x00other", listener.getsockname())
    time.sleep(0.05)
    drain(listener, 4, lambda data, peer: called.append(data) or b"asked:" + data, answers, known, answers.current)
    replies = sorted(c.recvfrom(100)[0] for _ in range(4))
    assert replies == sorted([b"\x12\x34\x81\x80known reply", b"\xab\xcd\x81\x80known reply", b"\x00\x00\x81\x80known reply",
                              b"asked:\x55\x55\x01\x00other"])
    assert called == [b"\x55\x55\x01\x00other"], "only the unknown query reached Python"
    assert sum(cell[1:]) == 3, "three answers counted in the duration histogram"
    assert cell[0] > 0, "their durations are summed"


@needs_extension
def test_known_answers_are_not_used_for_another_snapshot(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    """A reload replaces handler.current: the dict filled from the old snapshot is not used."""
    c = clients()
    answers, cell = Answers(), new_cell()
    known = {b"\x01\x00question": (b"stale", cell)}
    c.sendto(b"\x00\x01\x01\x00question", listener.getsockname())
    time.sleep(0.05)
    drain(listener, 1, lambda data, peer: b"fresh", answers, known, object())
    assert c.recvfrom(100)[0] == b"fresh"
    assert cell[1] == 0


@needs_extension
def test_a_reload_during_a_batch_stops_known_answers_at_once(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    """The snapshot can only change while Python runs, so after each callback the extension
    looks again: the queries after the one whose callback saw the swap are asked too."""
    c = clients()
    answers, cell = Answers(), new_cell()
    known = {b"\x01\x00question": (b"old", cell)}
    for qid in (b"\x00\x01", b"\x00\x02", b"\x00\x03"):
        c.sendto(qid + b"\x01\x00question", listener.getsockname())
    c.sendto(b"\x00\x04\x01\x00reload now", listener.getsockname())
    for qid in (b"\x00\x05", b"\x00\x06"):
        c.sendto(qid + b"\x01\x00question", listener.getsockname())
    time.sleep(0.05)

    def answer(data: bytes, peer: Any) -> bytes:
        answers.current = object()  # the swap, as Server.load does it
        return data[:2] + b"new"

    drain(listener, 6, answer, answers, known, answers.current)
    assert sorted(c.recvfrom(100)[0] for _ in range(6)) == [
        b"\x00\x01old", b"\x00\x02old", b"\x00\x03old", b"\x00\x04new", b"\x00\x05new", b"\x00\x06new"]
    assert cell[1] == 3


@needs_extension
def test_known_answers_land_in_the_histogram_bucket_of_their_duration(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    answers, cell = Answers(), [0.0, 0, 0]
    query = b"\x00\x01" + bytes(10)  # a header's length: the shortest the extension looks up
    known = {query[2:]: (b"r", cell)}
    try:
        listeners._udpbatch.buckets([0.0])  # every real duration is above this bound: the +Inf bucket
        c.sendto(query, listener.getsockname())
        drain(listener, 1, lambda data, peer: None, answers, known, answers.current)
    finally:
        listeners._udpbatch.buckets(DURATION_BUCKETS)
    assert c.recvfrom(100)[0] == b"\x00\x01r"
    assert cell[1:] == [0, 1]


@needs_extension
def test_a_malformed_known_entry_raises_and_the_loop_stays_usable(listener: socket.socket, clients: Callable[..., socket.socket]) -> None:
    c = clients()
    answers = Answers()
    query = b"\x00\x01" + bytes(10)
    c.sendto(query, listener.getsockname())
    time.sleep(0.05)
    with pytest.raises(TypeError, match="known answer"):
        listeners._udpbatch.serve(listener.fileno(), lambda data, peer: b"x", answers, {query[2:]: b"not a pair"}, answers.current)
    with pytest.raises(TypeError, match="known must be a dict"):
        listeners._udpbatch.serve(listener.fileno(), lambda data, peer: b"x", answers, [], answers.current)
    c.sendto(query, listener.getsockname())
    time.sleep(0.05)
    drain(listener, 1, lambda data, peer: b"asked", answers, {}, answers.current)
    assert c.recvfrom(100)[0] == b"asked"


def _orders_in_a_child(known: dict[bytes, Any], query: bytes, out: Any) -> None:
    from clusterdns.serve.tcp import reply_in_c

    out.send([reply_in_c(known, query) for _ in range(6)])


@needs_extension
def test_forked_workers_shuffle_in_orders_of_their_own() -> None:
    """--workers children are forked after the extension is imported: each reseeds its
    generator (pthread_atfork), so two children's TCP replies (`reply`, which never goes
    through serve()) do not come in the parent's orders, nor in each other's."""
    import multiprocessing

    import dns.message
    import dns.rrset

    from clusterdns.serve.loadbalance import runs

    query = dns.message.make_query("web.default.svc.cluster.local.", "A", id=1)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("web.default.svc.cluster.local.", 5, "IN", "A", *(f"10.0.0.{i}" for i in range(1, 9))))
    wire = response.to_wire()
    spec = runs(wire)
    assert spec is not None
    known = {query.to_wire()[2:]: (wire[2:], new_cell(), spec)}  # 8 addresses: 40,320 orders
    context = multiprocessing.get_context("fork")
    seen = []
    for _ in range(2):
        parent_end, child_end = context.Pipe()
        child = context.Process(target=_orders_in_a_child, args=(known, query.to_wire(), child_end))
        child.start()
        seen.append(parent_end.recv())
        child.join(10)
        assert child.exitcode == 0
    assert seen[0] != seen[1]
    assert all(sorted(tail) == sorted(wire[2:]) for tail in seen[0])  # the same bytes, in another order
