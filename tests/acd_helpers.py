"""Helpers for the queue authority's tests: a short folder for sockets (a Unix socket's path has
at most 107 bytes; pytest's tmp_path can be longer), agents and queues, a listener that records
what the authority asked for, and a raw asyncio client speaking the JSON lines of
ivr/acd/wire.py."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr.acd import wire
from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentSpec, ExitReason, Offer, QueueSpec, Ticket
from ivr.core.clock import Clock

ANN = AgentSpec("ann", "Ann Lee", {"accounts": 7}, "accounts", ("en", "zh"), wrap_up=0.2)
BOB = AgentSpec("bob", "Bob Stone", {"accounts": 3}, "accounts", wrap_up=0.2)
GINA = AgentSpec("gina", "Gina", {}, "general", wrap_up=0)
GENERAL = QueueSpec("general", ring_timeout=15, retry_delay=0.2, max_wait=600)


@dataclass
class Recorder:
    """The authority's listener: what it asked for, in order (moves too: a MoveListener)."""

    offers: list[Offer] = field(default_factory=list)
    withdrawn: list[Offer] = field(default_factory=list)
    exits: list[tuple[str, ExitReason]] = field(default_factory=list)
    moves: list[tuple[str, str, str]] = field(default_factory=list)

    def offer(self, offer: Offer) -> None:
        self.offers.append(offer)

    def withdraw(self, offer: Offer) -> None:
        self.withdrawn.append(offer)

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        self.exits.append((ticket.call_id, reason))

    def moved(self, ticket: Ticket, old_queue: str) -> None:
        self.moves.append((ticket.call_id, old_queue, ticket.queue))


def make_authority(clock: Clock, *agents: AgentSpec, queue: QueueSpec = GENERAL
                   ) -> QueueAuthority:  # fmt: skip
    return QueueAuthority(agents or (ANN, BOB, GINA), [queue], clock)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="acd", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Client:
    """A peer of the authority over the real socket: a worker (after :meth:`hello`) or a control
    client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = wire.LineDecoder(wire.MAX_REPLY)
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, path: Path) -> Client:
        reader, writer = await asyncio.open_unix_connection(str(path))
        return cls(reader, writer)

    async def hello(self, worker: int) -> dict[str, Any]:
        await self.send("hello", worker=worker)
        return await self.expect("hello")

    async def send(self, op: str, **fields: Any) -> None:
        await self.raw(wire.encode(wire.message(op, **fields)))

    async def raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while not self.inbox:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError("the authority closed the connection")
                self.inbox += [wire.decode(line) for line in self.decoder.feed(data)]
        return self.inbox.pop(0)

    async def expect(self, op: str, timeout: float = 3.0) -> dict[str, Any]:
        msg = await self.recv(timeout)
        assert msg["op"] == op, msg
        return msg

    async def nothing(self, seconds: float = 0.2) -> None:
        """Nothing arrives within ``seconds``."""
        try:
            msg = await self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected {msg}")

    async def closed_by_peer(self, timeout: float = 3.0) -> bool:
        """The authority closes the connection (after what it still had to say)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    data = await self.reader.read(65536)
                    if not data:
                        return True
        except (ConnectionError, OSError):
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def settle(seconds: float = 0.05) -> None:
    """Let the other end of the socket take what was sent."""
    await asyncio.sleep(seconds)
