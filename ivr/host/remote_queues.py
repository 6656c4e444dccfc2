"""The engine's agent queue (:class:`~ivr.engine.queueing.Queues`) over the machine's queue
authority in another process (``ivr serve --workers N``: the supervisor's
:class:`~ivr.acd.service.AcdService`), spoken to in the JSON lines of :mod:`ivr.acd.wire`.

It behaves as :class:`~ivr.host.queues.AuthorityQueues` does in-process, with the answers coming
later: :meth:`RemoteQueues.join` gives the caller's place at once (or ``no_queue`` for a queue the
authority did not name in its hello); an exit the authority answers the join with, or takes
later, reaches the caller's step as ``on_queue_exit``; ``figures()`` answers when the authority
has. One connection per worker process, made by :meth:`RemoteQueues.connect`, on the worker's
event loop.

Callbacks: a caller who keeps their place and hangs up (:meth:`_Place.callback`) is a ``callback``
message; the authority offers an agent for the ticket, at the head of the line, to a worker (the
caller's, or another one when that worker died), with what the ticket holds; the worker hands it
to its dialer (:attr:`RemoteQueues.callbacks`, :class:`~ivr.serve.callbacks.CallbackDialer`),
which reports back through :meth:`RemoteQueues.result`, :meth:`~RemoteQueues.ended` and
:meth:`~RemoteQueues.again` as a caller's step does.

There is no reconnecting: a lost connection ends the wait of every caller in line with the
``no_agents`` exit (the flow's way on when nobody can take the call) and a log line, and later
callers take that exit at once. The authority, for its part, drops the worker's callers and frees
its agents when the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.acd import wire
from ivr.acd.agentline import UNAVAILABLE, LineRequest
from ivr.acd.model import Offer, Ticket
from ivr.acd.service import DEFAULT_SOCKET
from ivr.config import Config
from ivr.engine.queueing import AgentOffer, QueuePlace, QueueRequest, QueueWaiter

log = logging.getLogger("ivr.acd")

NO_QUEUE = "no_queue"
# what a callback offer carries besides an offer's fields (the ticket)
CALLBACK_FIELDS = ("queue", "priority", "skills", "tier", "language", "waited")
LOST = "no_agents"  # the exit of a caller whose queue authority is gone
Figures = Callable[[int | None, float | None], None]
LineDone = Callable[[dict[str, Any]], None]


def authority_socket(config: Config) -> Path:
    """Where this machine's queue authority listens: ivr.yaml ``acd: control:`` where the
    config has it, else ``var/acd.sock`` under the config's folder."""
    acd = getattr(config, "acd", None)
    control = getattr(acd, "control", None) if acd is not None else None
    path = Path(control) if control else Path(DEFAULT_SOCKET)
    return path if path.is_absolute() else config.root / path


class RemoteQueues:
    """Queues for the calls of worker ``worker``, decided by the authority at the other end.

    Made by :meth:`connect`. ``queue_names``: the queues the authority said it has.
    """

    def __init__(self, worker: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 queue_names: tuple[str, ...], path: str) -> None:  # fmt: skip
        self.worker = worker
        self.queue_names = queue_names
        self.path = path
        self.waiters: dict[str, QueueWaiter] = {}
        self._reader = reader
        self._writer = writer
        self._figures: dict[int, Figures] = {}
        self._lines: dict[int, LineDone] = {}  # agent line requests waiting for their answer
        # Calls whose join is not answered yet: what comes for them before joined() is about an
        # earlier place of the same call (left while the authority's exit was on its way).
        self._unconfirmed: dict[str, int] = {}  # call -> joins not answered yet
        self._reqs = itertools.count(1)
        self._closing = False
        self.connected = True
        self.closed = asyncio.Event()  # set once the connection is gone
        self._task: asyncio.Task[None] | None = None
        # Who calls back a caller who kept their place (None: callbacks are not offered): told
        # the offer and the ticket.
        self.callbacks: Callable[[Offer, Ticket], None] | None = None

    @classmethod
    async def connect(cls, path: str | Path, worker: int, timeout: float = 5.0) -> RemoteQueues:
        """Connect to the authority at ``path`` as worker ``worker``.

        Raises:
            wire.NotListening: nobody listens there.
            ConnectionError: the authority refused this worker, or closed.
            TimeoutError: no answer within ``timeout``.
        """
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(str(path)), timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise wire.NotListening(f"no queue authority is listening on {path}") from exc
        decoder = wire.LineDecoder(wire.MAX_REPLY)
        try:
            writer.write(wire.encode(wire.message("hello", worker=worker)))
            lines: list[bytes] = []
            async with asyncio.timeout(timeout):
                while not lines:
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionError(f"the queue authority at {path} closed the "
                                              "connection")  # fmt: skip
                    lines = decoder.feed(data)
            first = wire.decode(lines[0])
            if first.get("op") == "error":
                raise ConnectionError(f"the queue authority at {path} refused worker {worker}: "
                                      f"{first.get('error')}")  # fmt: skip
            wire.check(first, wire.TO_PEER)
            if first["op"] != "hello":
                raise ConnectionError(f"the queue authority at {path} answered hello with "
                                      f"{first['op']}")  # fmt: skip
        except BaseException:
            writer.close()
            raise
        queues = cls(worker, reader, writer, tuple(first["queues"]), str(path))
        for line in lines[1:]:
            queues._line(line)
        queues._task = asyncio.get_running_loop().create_task(queues._read(decoder))
        log.info("call -: worker %d (pid %d): connected to the queue authority at %s", worker,
                 os.getpid(), path)  # fmt: skip
        return queues

    async def close(self) -> None:
        """Close the connection (callers still in line take the ``no_agents`` exit)."""
        self._closing = True
        self._writer.close()
        if self._task is not None:
            await self._task

    # --- the engine's side ------------------------------------------------------------------

    def join(self, call_id: str, request: QueueRequest,
             waiter: QueueWaiter) -> QueuePlace | str:  # fmt: skip
        if not self.connected:
            log.warning("call %s: the queue authority is unreachable: %s", call_id, LOST)
            return LOST
        if request.queue not in self.queue_names:
            log.warning("call %s: no queue %r is configured", call_id, request.queue)
            return NO_QUEUE
        self.waiters[call_id] = waiter
        self._unconfirmed[call_id] = self._unconfirmed.get(call_id, 0) + 1
        self._send(wire.message("join", call_id=call_id, queue=request.queue,
                                priority=request.priority, skills=list(request.skills),
                                tier=request.tier, language=request.language,
                                caller=request.caller))  # fmt: skip
        return _Place(self, call_id)

    def agent_line(self, req: LineRequest, done: LineDone) -> Callable[[], None]:
        """Ask the authority for an agent line request; ``done(answer)`` on the loop when it
        answers (``error: unavailable`` when it cannot). Returns what forgets the request (the
        caller hung up: the change is made all the same, nobody is told)."""
        if not self.connected:
            done({"error": UNAVAILABLE})
            return lambda: None
        number = next(self._reqs)
        self._lines[number] = done
        self._send(wire.message("line", req=number, call_id=req.call_id, agent=req.agent,
                                pin_ok=req.pin_ok, action=req.op, reason=req.reason))  # fmt: skip

        def forget() -> None:
            self._lines.pop(number, None)

        return forget

    def registered(self, agent: str, contact: str | None, expires: float = 0.0) -> None:
        """An agent's phone registered at ``contact`` for ``expires`` s (None or 0: gone)."""
        self._send(wire.message("registered", agent=agent, contact=contact, expires=expires))

    # --- the callback dialer's line (ivr.serve.callbacks.CallbackLine) -----------------------

    def result(self, offer_id: int, outcome: str) -> None:
        """How the agent's leg of a callback offer ended."""
        self._send(wire.message("result", offer_id=offer_id, outcome=str(outcome)))

    def ended(self, agent: str) -> None:
        """The agent's callback call is over."""
        self._send(wire.message("ended", agent=agent))

    def again(self, ticket: Ticket) -> None:
        """The callback ``ticket`` (a new call id) joins at the end of the line."""
        if not self.connected:
            log.error("call %s: the queue authority is unreachable: the callback to %s is not "
                      "tried again", ticket.call_id, ticket.callback)  # fmt: skip
            return
        self._send(wire.message("join", call_id=ticket.call_id, queue=ticket.queue,
                                priority=ticket.priority, skills=list(ticket.skills),
                                tier=ticket.tier, language=ticket.language,
                                callback=ticket.callback))  # fmt: skip

    def _send(self, msg: wire.Message) -> None:
        if self.connected and not self._writer.transport.is_closing():
            self._writer.write(wire.encode(msg))
        else:
            log.debug("call -: queue authority gone: not sent: %s", msg.get("op"))

    # --- from the authority -----------------------------------------------------------------

    async def _read(self, decoder: wire.LineDecoder) -> None:
        why = "it closed the connection"
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                for line in decoder.feed(data):
                    self._line(line)
        except wire.WireError as exc:
            why = f"it sent {exc}"
        except (ConnectionError, OSError) as exc:
            why = str(exc) or type(exc).__name__
        finally:
            self._lost(why)

    def _line(self, line: bytes) -> None:
        msg = wire.decode(line)
        try:
            wire.check(msg, wire.TO_PEER)
        except wire.BadMessage as exc:  # a newer authority: say so, go on
            log.warning("call -: queue authority: %s", exc)
            return
        handler = getattr(self, f"_on_{msg['op']}", None)
        if handler is None:
            return
        try:
            handler(msg)
        except Exception:  # one call's step failing must not cut every call off the queue
            log.exception("call %s: failed on the queue authority's %s",
                          msg.get("call_id", "-"), msg["op"])  # fmt: skip

    def _current(self, call_id: str) -> QueueWaiter | None:
        """The waiter a message about ``call_id`` is for (None: a place that is gone)."""
        return None if call_id in self._unconfirmed else self.waiters.get(call_id)

    def _on_joined(self, msg: wire.Message) -> None:
        call_id = msg["call_id"]
        left = self._unconfirmed.pop(call_id, 0) - 1
        if left > 0:  # another join of this call was sent since: this answer is an old one's
            self._unconfirmed[call_id] = left
            return
        if msg["exit"] is None:
            return
        if msg["error"]:
            log.warning("call %s: the queue authority refused the caller: %s", msg["call_id"],
                        msg["error"])  # fmt: skip
        waiter = self.waiters.pop(call_id, None)
        if waiter is not None:
            waiter.on_queue_exit(msg["exit"])

    def _on_offer(self, msg: wire.Message) -> None:
        if msg["callback"] is not None:
            self._callback_offer(msg)
            return
        waiter = self._current(msg["call_id"])
        if waiter is None:  # the caller is gone: the authority hears it from leave()
            self._send(wire.message("result", offer_id=msg["id"], outcome="caller_gone"))
            return
        waiter.on_offer(AgentOffer(msg["id"], msg["agent"], msg["contact"],
                                   float(msg["ring_timeout"]), msg["whisper"]))  # fmt: skip

    def _callback_offer(self, msg: wire.Message) -> None:
        """An agent for a callback ticket: this worker's dialer places it (the ticket comes
        whole: the caller may have been another worker's)."""
        missing = [f for f in CALLBACK_FIELDS if msg[f] is None]
        if missing or self.callbacks is None:
            log.warning("call %s: a callback offer this worker cannot place (%s)",
                        msg["call_id"], f"without {', '.join(missing)}" if missing
                        else "no acd.callback here")  # fmt: skip
            self._send(wire.message("result", offer_id=msg["id"], outcome="failed"))
            return
        offer = Offer(msg["id"], msg["call_id"], msg["agent"], msg["contact"], self.worker,
                      float(msg["ring_timeout"]), msg["callback"])  # fmt: skip
        joined_at = asyncio.get_running_loop().time() - max(0.0, float(msg["waited"]))
        ticket = Ticket(msg["call_id"], msg["queue"], msg["priority"], tuple(msg["skills"]),
                        msg["tier"], msg["language"], self.worker, msg["callback"],
                        joined_at)  # fmt: skip
        self.callbacks(offer, ticket)

    def _on_withdraw(self, msg: wire.Message) -> None:
        waiter = self._current(msg["call_id"])
        if waiter is not None:
            waiter.on_withdraw(msg["offer_id"])

    def _on_exit(self, msg: wire.Message) -> None:
        if self._current(msg["call_id"]) is None:
            return
        waiter = self.waiters.pop(msg["call_id"])
        waiter.on_queue_exit(msg["reason"])

    def _on_moved(self, msg: wire.Message) -> None:
        waiter = self._current(msg["call_id"])
        if waiter is not None:
            waiter.on_queue_moved(msg["queue"], msg["from"])

    def _on_figures(self, msg: wire.Message) -> None:
        done = self._figures.pop(msg["req"], None)
        if done is not None:
            wait = msg["wait"]
            done(msg["position"], None if wait is None else float(wait))

    def _on_line(self, msg: wire.Message) -> None:
        done = self._lines.pop(msg["req"], None)
        if done is not None:
            done({k: v for k, v in msg.items() if k not in ("v", "op", "req")})

    def _on_error(self, msg: wire.Message) -> None:
        log.warning("call -: queue authority: %s", msg["error"])

    def _lost(self, why: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self._writer.close()
        waiters, self.waiters = self.waiters, {}
        figures, self._figures = self._figures, {}
        lines, self._lines = self._lines, {}
        self._unconfirmed.clear()
        if self._closing:
            log.info("call -: worker %d: queue authority connection closed", self.worker)
        else:
            log.error("call -: worker %d: lost the queue authority at %s (%s): %d callers in "
                      "line leave by the %s exit", self.worker, self.path, why, len(waiters),
                      LOST)  # fmt: skip
        for call_id, waiter in waiters.items():
            try:
                waiter.on_queue_exit(LOST)
            except Exception:
                log.exception("call %s: failed leaving the queue", call_id)
        for done in figures.values():
            with contextlib.suppress(Exception):
                done(None, None)
        for answer in lines.values():
            with contextlib.suppress(Exception):
                answer({"error": UNAVAILABLE})
        self.closed.set()


class _Place:
    """One caller's place (see :class:`~ivr.engine.queueing.QueuePlace`)."""

    def __init__(self, queues: RemoteQueues, call_id: str) -> None:
        self.queues = queues
        self.call_id = call_id

    def figures(self, done: Figures) -> None:
        queues = self.queues
        if not queues.connected:
            done(None, None)
            return
        req = next(queues._reqs)
        queues._figures[req] = done
        queues._send(wire.message("figures", call_id=self.call_id, req=req))

    def result(self, offer_id: int, outcome: str) -> None:
        self.queues._send(wire.message("result", offer_id=offer_id, outcome=outcome))

    def agent_done(self, agent: str) -> None:
        self.queues.waiters.pop(self.call_id, None)
        self.queues._send(wire.message("ended", agent=agent))

    def leave(self) -> None:
        self.queues.waiters.pop(self.call_id, None)
        self.queues._send(wire.message("leave", call_id=self.call_id))

    def callback(self, number: str) -> bool:
        queues = self.queues
        if queues.callbacks is None or not queues.connected:
            return False  # no acd.callback (or no authority): the caller keeps waiting
        if not number or len(number) > wire.MAX_NUMBER:
            return False  # the authority would refuse it: better keep waiting than be let down
        queues.waiters.pop(self.call_id, None)
        queues._send(wire.message("callback", call_id=self.call_id, number=number))
        return True
