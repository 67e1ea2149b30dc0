"""--workers: forked processes that share each port (SO_REUSEPORT), and the channel over which
the first process asks each one for its counts when /metrics is scraped."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import struct
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from clusterdns.ops.metrics import Counts

log = logging.getLogger("clusterdns")

REPORT_TIMEOUT = 2.0  # seconds a child has to send its counts for a /metrics scrape


@dataclass
class Worker:
    """A child as the first process sees it: its channel, and what it last reported."""

    pid: int
    channel: socket.socket | None  # None once it stopped answering
    last: Counts | None = None


class Workers:
    """The first process's children; in a child, its channel back to the first process."""

    def __init__(self) -> None:
        self.children: list[Worker] = []
        self.report_to: socket.socket | None = None  # set in a child
        self._asking = asyncio.Lock()
        self._sends: set[asyncio.Task[None]] = set()

    def fork(self, count: int, child: Callable[[], None], before: Callable[[], None]) -> None:
        """Start `count` children. Each runs `before()` (to let go of what it must not hold),
        then `child()`, then exits; only the first process returns from here."""
        for number in range(1, count + 1):
            mine, theirs = socket.socketpair()  # for /metrics: the first process asks, the child reports
            pid = os.fork()
            if pid == 0:
                for channel in [w.channel for w in self.children] + [mine]:
                    channel.close()  # type: ignore[union-attr]
                self.children = []
                theirs.setblocking(False)
                self.report_to = theirs
                code = 0
                try:
                    before()
                    child()
                except BaseException:
                    log.exception("worker %d failed", number)
                    code = 1
                os._exit(code)
            theirs.close()
            mine.setblocking(False)
            self.children.append(Worker(pid, mine))

    def signal(self, sig: int) -> None:
        for worker in self.children:
            with suppress(ProcessLookupError):
                os.kill(worker.pid, sig)

    def stop(self) -> None:
        """SIGTERM every child, then wait for each."""
        self.signal(signal.SIGTERM)
        for worker in self.children:
            with suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)

    async def counts(self) -> list[Counts]:
        """Every child's counts, asked for now.

        A child that does not answer within REPORT_TIMEOUT, or has exited, is not asked
        again (with a warning), but its last counts stay in the sums: Prometheus counters
        must not go down, or rate() would read a reset.
        """
        async with self._asking:  # one scrape at a time talks to the children
            live = [w for w in self.children if w.channel is not None]
            replies = await asyncio.gather(*(asyncio.wait_for(_ask(w.channel), REPORT_TIMEOUT) for w in live), return_exceptions=True)  # type: ignore[arg-type]
            for worker, reply in zip(live, replies):
                if isinstance(reply, BaseException):
                    log.warning("worker %d did not report its counts (%s): /metrics keeps its last counts and stops asking it",
                                worker.pid, str(reply) or type(reply).__name__)
                    worker.channel.close()  # type: ignore[union-attr]
                    worker.channel = None  # a late reply is never read as the next one
                else:
                    worker.last = reply
            return [w.last for w in self.children if w.last is not None]

    def report(self, counts: Callable[[], Counts]) -> None:
        """In a child: answer the first process's asks (one byte per scrape) with `counts()`."""
        if self.report_to is not None:
            asyncio.get_running_loop().add_reader(self.report_to.fileno(), self._report, counts)

    def _report(self, counts: Callable[[], Counts]) -> None:
        channel = self.report_to
        assert channel is not None
        try:
            request = channel.recv(64)
        except BlockingIOError:
            return
        except OSError:
            request = b""
        if not request:  # the first process has gone, or closed this channel after a timeout
            asyncio.get_running_loop().remove_reader(channel.fileno())
            channel.close()
            self.report_to = None
            return
        try:
            payload = pickle.dumps(counts())
        except Exception:  # a bug here must not stop this worker from answering DNS
            log.exception("worker could not gather its counts for /metrics")
            return
        # Sent from a task: a large reply never blocks this worker's DNS while the first process reads it.
        task = asyncio.get_running_loop().create_task(_send(channel, struct.pack("!I", len(payload)) + payload))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)


async def _send(channel: socket.socket, data: bytes) -> None:
    with suppress(OSError):  # the first process gave up on this reply: it closed its end
        await asyncio.get_running_loop().sock_sendall(channel, data)


async def _ask(channel: socket.socket) -> Counts:
    """One child's counts over its channel: a byte out, a length-prefixed pickle back.
    (pickle is safe here: the other end is our own forked process.)"""
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(channel, b"?")
    size = struct.unpack("!I", await _read_exactly(channel, 4))[0]
    return pickle.loads(await _read_exactly(channel, size))  # type: ignore[no-any-return]


async def _read_exactly(channel: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = bytearray()
    while len(data) < n:
        chunk = await loop.sock_recv(channel, n - len(data))
        if not chunk:
            raise EOFError("the worker exited")
        data += chunk
    return bytes(data)
