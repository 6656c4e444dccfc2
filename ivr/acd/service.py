"""The machine's queue authority on a Unix socket (docs/ACD.md, "One queue authority per
machine").

:class:`AcdService` serves one :class:`~ivr.acd.authority.QueueAuthority` to the engine
processes of the machine and to ``ivr agents``, in the JSON lines of :mod:`ivr.acd.wire`. It is
the authority's listener: an offer, a withdrawal or an exit goes to the worker that carries the
call (the one whose connection said ``hello(worker)``), or to an in-process listener added with
:meth:`AcdService.add_local` (a single ``ivr serve``, whose host uses
:class:`~ivr.host.queues.AuthorityQueues` directly and serves only the control side here).

A worker's connection that closes is that worker gone: :meth:`QueueAuthority.worker_gone` drops
its callers and frees its agents; its callback tickets (callers who hung up and keep their place)
go to the lowest live worker, or wait until the next worker says hello
(:meth:`QueueAuthority.adopt`). A callback offer carries the ticket, so whichever worker gets it
can place it. A peer that breaks the framing (a line past
:data:`~ivr.acd.wire.MAX_LINE`, not JSON) is dropped; one that sends what the authority cannot
take (an unknown op, a bad field, a refused change) is answered with an error. Nothing a peer
sends stops the service.

The socket file is made with mode 0600 (only the user running ``ivr serve`` may talk to it),
beside a ``.lock`` file held while the service runs: a second server on the same path is
refused, a socket file left by a dead one is replaced.

Where it runs: on the event loop of the process that owns the authority. ``ivr serve
--workers N``'s supervisor is synchronous (it waits on its processes' sentinels and takes the
signals), so there the service runs in :class:`ServiceThread`: a thread of its own with its own
event loop, which is the only thread touching the authority (no locks). A single ``ivr serve``
runs it on its own loop beside the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ivr.acd import wire
from ivr.acd.agentline import AgentLine, LineRequest
from ivr.acd.authority import AgentStatus, AuthorityListener, QueueAuthority, QueueError
from ivr.acd.config import AgentLineConfig
from ivr.acd.model import TIERS, AgentState, ExitReason, Offer, Outcome, Ticket
from ivr.core.clock import Clock, LoopClock

log = logging.getLogger("ivr.acd")

DEFAULT_SOCKET = "var/acd.sock"  # under the project's root (ivr.yaml's folder)
MAX_BUFFERED = 1 << 20  # bytes waiting to be sent to a peer that does not read: it is dropped
MAX_PATH = 107  # bytes in a Unix socket's path (sun_path, with its NUL)
NO_QUEUE = "no_queue"
MAX_EXPIRES = 7 * 86400.0  # seconds a registration is believed at most

T = TypeVar("T")


class ServiceError(RuntimeError):
    """The service cannot listen where it was asked to (another server owns the socket, the path
    is not a socket or too long)."""


class _Peer:
    """One connection: a worker once it said hello, else a control client."""

    def __init__(self, number: int, writer: asyncio.StreamWriter) -> None:
        self.number = number
        self.writer = writer
        self.worker: int | None = None
        self.closed = False

    def __str__(self) -> str:
        return f"worker {self.worker}" if self.worker is not None else f"peer {self.number}"

    def send(self, msg: wire.Message) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            log.warning("call -: queue authority: %s reads nothing (%d bytes waiting): dropped",
                        self, transport.get_write_buffer_size())  # fmt: skip
            self.close(abort=True)
            return
        self.writer.write(wire.encode(msg))

    def close(self, abort: bool = False) -> None:
        self.closed = True
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()


class AcdService(AuthorityListener):
    """The authority's socket server (see the module docstring).

    Args:
        authority: The queue authority; it becomes this service's (it must live on the loop
            :meth:`start` runs on).
        path: The socket file (the folder is made if missing).
        agent_line: The phone agent line's guard (wrong PINs, lockout, pause reasons).
    """

    def __init__(self, authority: QueueAuthority, path: str | Path,
                 agent_line: AgentLineConfig | None = None) -> None:  # fmt: skip
        self.authority = authority
        self.path = Path(path)
        self.line = AgentLine(authority, agent_line or AgentLineConfig())
        self._workers: dict[int, _Peer] = {}
        self._local: dict[int, AuthorityListener] = {}
        self._peers: set[_Peer] = set()
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._lock_fd: int | None = None
        self._inode: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # What the authority says while a peer's message is handled goes after the answer to it
        # (a worker hears joined(c) before offer(c)).
        self._handling = False
        self._deferred: list[tuple[_Peer, wire.Message]] = []
        self._started_at = authority.clock.now()
        self._stopping = False
        authority.listener = self

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the socket.

        Raises:
            ServiceError: another server owns it, or the path cannot be a socket.
            OSError: the folder cannot be made, or the bind failed.
        """
        sock = self._bind()
        try:
            self._server = await asyncio.start_unix_server(self._session, sock=sock)
        except BaseException:
            sock.close()
            self._release()
            raise
        log.info("call -: queue authority listening on %s", self.path)

    async def stop(self) -> None:
        """Stop listening, close every connection, remove the socket file."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            peer.close(abort=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._release()

    def add_local(self, worker: int, listener: AuthorityListener) -> None:
        """Route the calls of ``worker`` to ``listener`` in this process (a single ``ivr serve``'s
        :class:`~ivr.host.queues.AuthorityQueues`); the authority's listener stays this service."""
        self._local[worker] = listener
        self.authority.listener = self

    @property
    def workers(self) -> list[int]:
        """The workers connected now."""
        return sorted(self._workers)

    def _bind(self) -> socket.socket:
        path = self.path
        if len(os.fsencode(str(path))) > MAX_PATH:
            raise ServiceError(f"{path}: too long for a Unix socket ({len(os.fsencode(str(path)))} "
                               f"bytes, at most {MAX_PATH}): choose a shorter path")  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise ServiceError(f"another queue authority is serving on {path}") from None
        self._lock_fd = lock
        try:
            self._clear_stale(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(str(path))
                # Before listen() every connect is refused, so no one gets in before the mode
                # is right, whatever the umask.
                os.chmod(path, 0o600)
                sock.listen(64)
                sock.setblocking(False)
            except BaseException:
                sock.close()
                raise
            self._inode = os.stat(path).st_ino
            return sock
        except BaseException:
            self._release()
            raise

    @staticmethod
    def _clear_stale(path: Path) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ServiceError(f"{path} exists and is not a socket: not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("call -: replacing %s, left by a queue authority that is gone", path)
            path.unlink(missing_ok=True)
            return
        except OSError as exc:
            raise ServiceError(f"{path}: cannot tell whether a server listens there: "
                               f"{exc}") from exc  # fmt: skip
        finally:
            probe.close()
        raise ServiceError(f"another queue authority is serving on {path} (it holds no lock)")

    def _release(self) -> None:
        if self._inode is not None:
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()
            self._inode = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- connections ------------------------------------------------------------------------

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = _Peer(next(self._numbers), writer)
        self._peers.add(peer)
        decoder = wire.LineDecoder(wire.MAX_LINE)
        try:
            while not peer.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for line in decoder.feed(data):
                    self._line(peer, line)
                    if peer.closed:
                        break
        except wire.WireError as exc:
            log.warning("call -: queue authority: %s dropped: %s", peer, exc)
        except (ConnectionError, OSError):
            pass
        finally:
            self._gone(peer)
            if task is not None:
                self._tasks.discard(task)

    def _gone(self, peer: _Peer) -> None:
        self._peers.discard(peer)
        if not peer.closed:
            peer.close()
        worker = peer.worker
        if worker is not None and self._workers.get(worker) is peer:
            del self._workers[worker]
            if self._stopping:
                return
            tickets = [w.ticket for w in self.authority.waiting.values()
                       if w.ticket.worker == worker]  # fmt: skip
            callbacks = sum(1 for t in tickets if t.callback is not None)
            heir = min(self._workers, default=None)  # a live worker places its callbacks
            to = f"worker {heir}" if heir is not None else "the next worker to connect"
            log.warning("call -: queue authority: worker %d is gone: %d waiting callers leave, "
                        "its agents are freed, %d callbacks go to %s", worker,
                        len(tickets) - callbacks, callbacks, to)  # fmt: skip
            self._guarded(lambda: self.authority.worker_gone(worker, heir))

    def _line(self, peer: _Peer, line: bytes) -> None:
        msg = wire.decode(line)  # WireError: the peer is dropped
        self._handling = True
        try:
            wire.check(msg, wire.TO_AUTHORITY)
            handler = getattr(self, f"_on_{msg['op']}")
            self._guarded(lambda: handler(peer, msg), reraise=True)
        except wire.BadMessage as exc:
            peer.send(wire.message("error", error=str(exc), code=exc.code))
            if exc.fatal:
                log.warning("call -: queue authority: %s dropped: %s", peer, exc)
                peer.close()
        except QueueError as exc:
            peer.send(wire.message("error", error=str(exc), code="refused"))
        except Exception:
            peer.send(wire.message("error", error="the queue authority failed on this message "
                                   "(see its log)", code="internal"))  # fmt: skip
        finally:
            self._handling = False
            deferred, self._deferred = self._deferred, []
            for target, out in deferred:
                target.send(out)

    def _post(self, peer: _Peer, msg: wire.Message) -> None:
        """Send what the authority says (after the answer to the message in hand, if any)."""
        if self._handling:
            self._deferred.append((peer, msg))
        else:
            peer.send(msg)

    def _guarded(self, call: Callable[[], None], reraise: bool = False) -> None:
        """Run ``call``; an unexpected exception is logged (and re-raised with ``reraise``),
        never let out to stop the server."""
        try:
            call()
        except (wire.BadMessage, QueueError):
            raise
        except Exception:
            log.exception("call -: queue authority: unexpected failure")
            if reraise:
                raise

    @staticmethod
    def _worker_of(peer: _Peer, op: str) -> int:
        if peer.worker is None:
            raise wire.BadMessage(f"{op}: say hello(worker) first", "no_hello")
        return peer.worker

    # --- worker -> authority ----------------------------------------------------------------

    def _on_hello(self, peer: _Peer, msg: wire.Message) -> None:
        worker = msg["worker"]
        if peer.worker is not None:
            raise wire.BadMessage(f"hello: this connection is worker {peer.worker} already")
        if worker < 0 or worker in self._local:
            raise wire.BadMessage(f"hello: worker {worker} cannot be served here")
        old = self._workers.get(worker)
        if old is not None:  # the process is new; the old connection's close is still to come
            log.warning("call -: queue authority: worker %d connected again: its old "
                        "connection's callers leave", worker)  # fmt: skip
            old.worker = None
            old.close(abort=True)
        peer.worker = worker
        self._workers[worker] = peer
        if old is not None:  # its callbacks stay with it: the new process places them
            self.authority.worker_gone(worker, heir=worker)
        log.info("call -: queue authority: worker %d connected", worker)
        peer.send(wire.message("hello", queues=sorted(self.authority.queues)))
        adopted = self.authority.adopt(worker)  # its offers go after the hello (deferred)
        if adopted:
            log.warning("call -: queue authority: worker %d takes %d callbacks of workers "
                        "that died", worker, adopted)  # fmt: skip

    def _on_join(self, peer: _Peer, msg: wire.Message) -> None:
        worker = self._worker_of(peer, "join")
        call_id = msg["call_id"]

        def refuse(exit_: str, error: str) -> None:
            log.warning("call %s: queue join refused: %s", call_id, error)
            peer.send(wire.message("joined", call_id=call_id, exit=exit_, error=error))

        if msg["queue"] not in self.authority.queues:
            refuse(NO_QUEUE, f"no queue {msg['queue']!r} is configured")
            return
        if msg["tier"] not in TIERS:
            refuse(ExitReason.NO_AGENTS.value, f"unknown tier {msg['tier']!r}")
            return
        ticket = Ticket(call_id, msg["queue"], max(0, min(10, msg["priority"])),
                        tuple(msg["skills"]), msg["tier"], msg["language"], worker)  # fmt: skip
        number = msg["callback"]
        if number is not None:
            _check_number("join", number)
        try:
            exit_now = self.authority.join(ticket)
        except QueueError as exc:
            refuse(ExitReason.NO_AGENTS.value, str(exc))
            return
        if exit_now is None and number is not None:
            self.authority.callback(call_id, number)
        elif number is not None:
            log.warning("call %s: a callback tried again left the queue at once (%s)",
                        call_id, exit_now)  # fmt: skip
        peer.send(wire.message("joined", call_id=call_id,
                               exit=None if exit_now is None else exit_now.value))  # fmt: skip

    def _on_callback(self, peer: _Peer, msg: wire.Message) -> None:
        worker = self._worker_of(peer, "callback")
        _check_number("callback", msg["number"])
        waiting = self.authority.waiting.get(msg["call_id"])
        if waiting is None or waiting.ticket.worker != worker:
            raise QueueError(f"callback: call {msg['call_id'][:80]!r} is not waiting here")
        if waiting.ticket.callback is not None:  # again: it would withdraw the callback's ring
            raise QueueError(f"callback: call {msg['call_id'][:80]!r} is a callback already")
        self.authority.callback(msg["call_id"], msg["number"])

    def _on_leave(self, peer: _Peer, msg: wire.Message) -> None:
        worker = self._worker_of(peer, "leave")
        waiting = self.authority.waiting.get(msg["call_id"])
        if waiting is not None and waiting.ticket.worker == worker:
            self.authority.leave(msg["call_id"])

    def _on_result(self, peer: _Peer, msg: wire.Message) -> None:
        self._worker_of(peer, "result")
        try:
            outcome = Outcome(msg["outcome"])
        except ValueError:
            raise wire.BadMessage(f"result: unknown outcome {msg['outcome'][:40]!r}") from None
        self.authority.result(msg["offer_id"], outcome)

    def _on_ended(self, peer: _Peer, msg: wire.Message) -> None:
        worker = self._worker_of(peer, "ended")
        agent = self.authority.agents.get(msg["agent"])
        if agent is None:
            raise QueueError(f"no agent {msg['agent']!r}")
        if agent.offer is not None and agent.offer.worker != worker:
            log.warning("call -: queue authority: worker %d ended agent %s, who is on a call "
                        "of worker %d: ignored", worker, agent.spec.id, agent.offer.worker)
            return
        self.authority.ended(agent.spec.id)

    def _on_registered(self, peer: _Peer, msg: wire.Message) -> None:
        self._worker_of(peer, "registered")
        expires = min(float(msg["expires"] or 0.0), MAX_EXPIRES)
        self.authority.registered(msg["agent"], msg["contact"], expires)

    def _on_figures(self, peer: _Peer, msg: wire.Message) -> None:
        call_id = msg["call_id"]
        wait = self.authority.expected_wait(call_id)
        peer.send(wire.message("figures", req=msg["req"], position=self.authority.position(call_id),
                               wait=None if wait is None else round(wait, 3)))  # fmt: skip

    def _on_line(self, peer: _Peer, msg: wire.Message) -> None:
        self._worker_of(peer, "line")
        answer = self.line.handle(LineRequest(msg["call_id"], msg["agent"], msg["pin_ok"],
                                              msg["action"], msg["reason"] or ""))  # fmt: skip
        peer.send(wire.message("line", req=msg["req"], **answer))

    # --- control ----------------------------------------------------------------------------

    def _on_agents(self, peer: _Peer, msg: wire.Message) -> None:
        action, agent_id = msg["action"], msg["agent"]
        if action not in wire.AGENT_ACTIONS:
            raise wire.BadMessage(f"agents: unknown action {action[:40]!r} (one of "
                                  f"{', '.join(wire.AGENT_ACTIONS)})")  # fmt: skip
        if action == "list":
            peer.send(wire.message("agents", agents=self.agents_json()))
            return
        if not agent_id:
            raise wire.BadMessage(f"agents: {action} needs an agent")
        agent = self.authority.agents.get(agent_id)
        if agent is None:
            peer.send(wire.message("error", error=f"no agent {agent_id!r}", code="unknown_agent",
                                   agents=list(self.authority.agents)))  # fmt: skip
            return
        before = (agent.state, agent.reason, agent.pending)
        reason = msg["reason"] or ""
        if action == "login":
            self.authority.login(agent_id)
        elif action == "logout":
            self.authority.logout(agent_id, reason)
        elif action == "pause":
            self.authority.pause(agent_id, reason)  # QueueError when logged out
        elif agent.state == AgentState.LOGGED_OUT:
            raise QueueError(f"agent {agent_id} is logged out: log in first")
        else:
            self.authority.resume(agent_id)
        after = (agent.state, agent.reason, agent.pending)
        log.info("call -: agent %s: %s%s -> %s", agent_id, action,
                 f" ({reason})" if reason else "", agent.state.value)  # fmt: skip
        [status] = [a for a in self.authority.agent_status() if a.id == agent_id]
        peer.send(wire.message("agents", agent=self._agent_json(status),
                               changed=before != after))  # fmt: skip

    def _on_status(self, peer: _Peer, msg: wire.Message) -> None:
        peer.send(wire.message("status", agents=self.agents_json(), queues=self.queues_json()))

    def _on_callers(self, peer: _Peer, msg: wire.Message) -> None:
        callers = self.authority.caller_status(wire.MAX_CALLERS)
        peer.send(wire.message("callers", callers=[
            {"call_id": c.call_id, "queue": c.queue, "position": c.position,
             "waited": round(c.waited, 3), "priority": c.priority, "ringing": c.ringing,
             "callback": c.callback} for c in callers]))  # fmt: skip

    def _on_move(self, peer: _Peer, msg: wire.Message) -> None:
        """A supervisor's move (QueueError: refused, answered as an error)."""
        queue = msg["queue"] or None
        if queue is not None and queue not in self.authority.queues:
            raise QueueError(f"no queue {queue[:40]!r}")
        old = self.authority.waiting.get(msg["call_id"])
        old_queue = old.ticket.queue if old is not None else ""
        ticket = self.authority.move(msg["call_id"], queue, bool(msg["head"]))
        peer.send(wire.message("moved", call_id=ticket.call_id, queue=ticket.queue,
                               position=self.authority.position(ticket.call_id),
                               **{"from": old_queue}))  # fmt: skip

    def agents_json(self) -> list[dict[str, Any]]:
        """Every agent as ``ivr agents`` shows it."""
        return [self._agent_json(a) for a in self.authority.agent_status()]

    def _agent_json(self, status: AgentStatus) -> dict[str, Any]:
        clock = self.authority.clock
        now, wall = clock.now(), clock.wall()
        since = max(status.since, self._started_at)  # never changed: since the service began
        pending = self.authority.agents[status.id].pending
        return {"id": status.id, "name": status.name, "state": status.state.value,
                "reason": status.reason, "since": round(wall - (now - since), 3),
                "in_state": round(now - since, 3), "calls": status.calls,
                "registered": status.registered, "call_id": status.call_id,
                "pending": pending[0].value if pending is not None else None}  # fmt: skip

    def queues_json(self) -> list[dict[str, Any]]:
        """Every queue: callers waiting, the longest wait, agents able to take its calls."""
        return [{"name": q.name, "waiting": q.waiting, "longest_wait": round(q.longest_wait, 3),
                 "able_agents": q.able_agents, "handle_mean": round(q.handle_mean, 3)}
                for q in self.authority.queue_status()]  # fmt: skip

    # --- authority -> workers (AuthorityListener) -------------------------------------------

    def offer(self, offer: Offer) -> None:
        local = self._local.get(offer.worker)
        if local is not None:
            local.offer(offer)
            return
        peer = self._workers.get(offer.worker)
        if peer is None:  # cannot happen while worker_gone drops a dead worker's callers
            log.warning("call %s: agent %s offered for worker %d, which is not connected",
                        offer.call_id, offer.agent, offer.worker)  # fmt: skip
            self.authority.result(offer.id, Outcome.CALLER_GONE)
            return
        msg = wire.message("offer", id=offer.id, agent=offer.agent, contact=offer.contact,
                           ring_timeout=offer.ring_timeout, whisper=None, call_id=offer.call_id)
        waiting = self.authority.waiting.get(offer.call_id)
        if offer.callback is not None and waiting is not None:
            ticket = waiting.ticket  # the worker places the callback: all it needs to know
            msg.update(callback=offer.callback, queue=ticket.queue, priority=ticket.priority,
                       skills=list(ticket.skills), tier=ticket.tier, language=ticket.language,
                       waited=round(self.authority.clock.now() - ticket.joined_at, 3))
        self._post(peer, msg)

    def withdraw(self, offer: Offer) -> None:
        local = self._local.get(offer.worker)
        if local is not None:
            local.withdraw(offer)
            return
        peer = self._workers.get(offer.worker)
        if peer is not None:
            self._post(peer, wire.message("withdraw", offer_id=offer.id, call_id=offer.call_id))

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        local = self._local.get(ticket.worker)
        if local is not None:
            local.exit(ticket, reason)
            return
        peer = self._workers.get(ticket.worker)
        if peer is not None:
            self._post(peer, wire.message("exit", call_id=ticket.call_id, reason=reason.value))

    def moved(self, ticket: Ticket, old_queue: str) -> None:
        local = self._local.get(ticket.worker)
        if local is not None:
            QueueAuthority.tell_moved(local, ticket, old_queue)
            return
        peer = self._workers.get(ticket.worker)
        if peer is not None:
            self._post(peer, wire.message("moved", call_id=ticket.call_id, queue=ticket.queue,
                                          position=self.authority.position(ticket.call_id),
                                          **{"from": old_queue}))  # fmt: skip


def _check_number(op: str, number: str) -> None:
    """A number to call back: not empty, not longer than :data:`wire.MAX_NUMBER` (the dialler
    puts only digits and a + into a URI; this bounds what the authority keeps)."""
    if not number or len(number) > wire.MAX_NUMBER:
        raise wire.BadMessage(f"{op}: a number to call back has 1 to {wire.MAX_NUMBER} "
                              "characters")  # fmt: skip


class ServiceThread:
    """An :class:`AcdService` on a thread of its own with its own event loop, for a synchronous
    owner (the supervisor of ``ivr serve --workers N``).

    ``make_authority`` is called on that thread with the loop's clock (the authority's timers
    run there); nothing but that thread touches the authority: use :meth:`call` to look at it.
    """

    def __init__(self, make_authority: Callable[[Clock], QueueAuthority],
                 path: str | Path, agent_line: AgentLineConfig | None = None) -> None:  # fmt: skip
        self.make_authority = make_authority
        self.path = Path(path)
        self.agent_line = agent_line
        self.service: AcdService | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ivr-acd", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread; return once the socket listens.

        Raises:
            ServiceError, OSError: the service could not listen (the thread has ended).
        """
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the queue authority did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the service (connections close, the socket file goes) and the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)

    def call(self, fn: Callable[[AcdService], T], timeout: float = 5.0) -> T:
        """``fn(service)`` on the service's thread, and its result."""
        loop, service = self._loop, self.service
        if loop is None or service is None:
            raise RuntimeError("the queue authority is not running")

        async def run() -> T:
            return fn(service)

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by start(), or logged once running
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("call -: the queue authority stopped")

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        authority = self.make_authority(LoopClock(self._loop))
        service = AcdService(authority, self.path, self.agent_line)
        await service.start()
        self.service = service
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await service.stop()
