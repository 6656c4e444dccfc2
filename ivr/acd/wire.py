"""What the queue authority and its peers say to each other (docs/ACD.md, "One queue authority
per machine").

JSON lines over a Unix stream socket: one JSON object per line (UTF-8, ``\\n``-terminated), each
with ``op`` (what it is) and ``v`` (:data:`VERSION`). Peers are the engine processes (workers)
and the ``ivr agents`` command (control).

Worker -> authority::

    hello(worker)              a worker's first line; answered hello(queues)
    join(call_id, queue, priority, skills, tier, language, caller, callback)
                               answered joined(call_id, exit); with callback (a number) the
                               ticket is a callback's from the start (a callback tried again)
    leave(call_id)          result(offer_id, outcome)          ended(agent)
    registered(agent, contact, expires)             figures(call_id, req)
    callback(call_id, number)  the caller hangs up and keeps their place (error: not waiting here,
                               or a callback already)
    line(req, call_id, agent, pin_ok, action, reason)
                               the agent line (the worker checked the PIN: it is never on the
                               wire); answered line(req, ...)

Authority -> worker::

    joined(call_id, exit)          exit is null (waiting) or the exit taken at once
    offer(id, agent, contact, ring_timeout, whisper, call_id)     ring an agent
        for a callback ticket also: callback (the number), queue, priority, skills, tier,
        language, waited (seconds since the caller joined): the worker places the callback
    withdraw(offer_id, call_id)    exit(call_id, reason)    figures(req, position, wait)
    line(req, agent, name, state, reason, pending, changed, error, ...)

Control (anyone) -> authority::

    agents(action, agent, reason)  action list|login|logout|pause|resume; answered agents(...)
    status()                       answered status(agents, queues)
    callers()                      answered callers(callers): the callers waiting, served first
                                   first (call_id, queue, position, waited, priority, ringing,
                                   callback), at most MAX_CALLERS
    move(call_id, queue, head)     a supervisor moves a waiting caller to another queue and/or
                                   to the head of theirs; answered moved(call_id, queue, from,
                                   position), or error (not waiting, full, nobody to take them)

Authority -> the worker of a moved caller: moved(call_id, queue, from, position) (the record).

Errors: a line the receiver can read but not take (an unknown ``op``, a missing or ill-typed
field, a state change refused) is answered ``error(error, code)`` and the connection goes on;
another ``v`` is answered the same way and the connection is closed. A line past the limit, not
UTF-8, not JSON or not an object breaks the framing: the peer is dropped (:class:`WireError`).

Besides the codec this module has the two ends' framing (:class:`LineDecoder`, fed whatever a
socket delivered) and :func:`request`, one blocking request/answer for the command line.
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VERSION = 1
MAX_LINE = 64 * 1024  # bytes, newline included: what the authority takes from a peer
MAX_REPLY = 16 * 1024 * 1024  # what a peer takes from the authority (status of many agents)

Message = dict[str, Any]

# --- the messages ---------------------------------------------------------------------------

# Field kinds: str, int, num (int or float, finite), strs (a list of str), bool; a trailing "?"
# allows null; a leading "~" allows the field to be missing (it reads as null). Other fields are
# ignored (a newer peer may add some).
_STR, _INT, _NUM, _STRS, _BOOL = "str", "int", "num", "strs", "bool"

TO_AUTHORITY: dict[str, dict[str, str]] = {
    "hello": {"worker": _INT},
    "join": {"call_id": _STR, "queue": _STR, "priority": _INT, "skills": _STRS, "tier": _STR,
             "language": _STR, "caller": "~str", "callback": "~str?"},
    "leave": {"call_id": _STR},
    "callback": {"call_id": _STR, "number": _STR},
    "result": {"offer_id": _INT, "outcome": _STR},
    "ended": {"agent": _STR},
    "registered": {"agent": _STR, "contact": "str?", "expires": "~num"},
    "figures": {"call_id": _STR, "req": _INT},
    "line": {"req": _INT, "call_id": _STR, "agent": _STR, "pin_ok": _BOOL, "action": _STR,
             "reason": "~str"},
    "agents": {"action": _STR, "agent": "~str?", "reason": "~str"},
    "status": {},
    "callers": {},
    "move": {"call_id": _STR, "queue": "~str?", "head": "~bool"},
}  # fmt: skip
TO_PEER: dict[str, dict[str, str]] = {
    "hello": {"queues": _STRS},
    "joined": {"call_id": _STR, "exit": "str?", "error": "~str"},
    "offer": {"id": _INT, "agent": _STR, "contact": _STR, "ring_timeout": _NUM,
              "whisper": "~str?", "call_id": _STR, "callback": "~str?", "queue": "~str",
              "priority": "~int", "skills": "~strs", "tier": "~str", "language": "~str",
              "waited": "~num"},
    "withdraw": {"offer_id": _INT, "call_id": _STR},
    "exit": {"call_id": _STR, "reason": _STR},
    "figures": {"req": _INT, "position": "int?", "wait": "num?"},
    "line": {"req": _INT, "error": "~str?"},  # and the agent's state (ivr.acd.agentline)
    "agents": {},  # agents: [agent status], or agent: status (an action)
    "status": {},  # agents: [agent status], queues: [queue status]
    "callers": {},  # callers: [caller status]
    "moved": {"call_id": _STR, "queue": _STR, "from": _STR, "position": "~int?"},
    "error": {"error": _STR, "code": "~str"},
}  # fmt: skip
AGENT_ACTIONS = ("list", "login", "logout", "pause", "resume")
MAX_NUMBER = 64  # characters of a number to call back (it is checked again before dialling)
MAX_CALLERS = 1000  # callers listed by callers() (the first in line)


class WireError(ValueError):
    """The peer broke the framing (a line too long, not UTF-8, not a JSON object): drop it."""


class BadMessage(ValueError):
    """A line the receiver can read but not take; answered with an error.

    ``fatal``: the peer speaks another version of the protocol; close after the answer.
    """

    def __init__(self, message: str, code: str = "bad_message", fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal


def message(op: str, **fields: Any) -> Message:
    """A message of this version."""
    return {"v": VERSION, "op": op, **fields}


def encode(msg: Mapping[str, Any]) -> bytes:
    """One line: compact JSON (ASCII: a stray surrogate cannot break it) and a newline.

    Raises:
        ValueError: ``msg`` holds something JSON cannot say (NaN, an object).
    """
    body = json.dumps(msg, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return body.encode("ascii") + b"\n"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode(line: bytes) -> Message:
    """The object on one line (newline optional).

    Raises:
        WireError: not UTF-8, not JSON, not an object, or without a string ``op``.
    """
    try:
        text = line.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireError(f"not a JSON line: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise WireError(f"a line must hold a JSON object, not {type(value).__name__}")
    if not isinstance(value.get("op"), str):
        raise WireError("a line must name its op")
    return value


def check(msg: Message, ops: Mapping[str, Mapping[str, str]]) -> Message:
    """``msg`` when its version, op and fields are what ``ops`` says (missing optional fields
    filled with null); else :class:`BadMessage`."""
    version = msg.get("v")
    if version != VERSION:
        raise BadMessage(f"protocol version {version!r} is not spoken here (this side speaks "
                         f"{VERSION})", "version", fatal=True)  # fmt: skip
    op = msg["op"]
    fields = ops.get(op)
    if fields is None:
        raise BadMessage(f"unknown op {op[:40]!r}", "unknown_op")
    for name, kind in fields.items():
        if name not in msg:
            if kind.startswith("~"):
                msg[name] = None
                continue
            raise BadMessage(f"{op}: {name} is missing")
        if not _fits(msg[name], kind.lstrip("~")):
            raise BadMessage(f"{op}: {name} must be {kind.lstrip('~')}")
    return msg


def _fits(value: Any, kind: str) -> bool:
    if kind.endswith("?"):
        if value is None:
            return True
        kind = kind[:-1]
    if kind == _STR:
        return isinstance(value, str)
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == _NUM:
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value))  # fmt: skip
    if kind == _STRS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    if kind == _BOOL:
        return isinstance(value, bool)
    raise AssertionError(f"unknown field kind {kind}")


class LineDecoder:
    """Cuts a byte stream into lines of at most ``limit`` bytes (newline included)."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines now available, without their newlines.

        Raises:
            WireError: a line longer than the limit: drop the peer (lines before it in the
                same ``data`` are dropped with it).
        """
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        lines: list[bytes] = []
        offset = 0
        while True:
            end = buffer.find(b"\n", max(offset, start))
            if end < 0:
                break
            if end + 1 - offset > self.limit:
                raise WireError(f"a line of {end + 1 - offset} bytes (at most {self.limit})")
            lines.append(bytes(buffer[offset:end]))
            offset = end + 1
        del buffer[:offset]
        if len(buffer) >= self.limit:
            raise WireError(f"a line past {self.limit} bytes")
        return lines

    @property
    def pending(self) -> int:
        """Bytes of a line not yet complete."""
        return len(self._buffer)


# --- the command line's end -----------------------------------------------------------------


class NotListening(ConnectionError):
    """Nobody listens on the authority's socket (``ivr serve`` is not running there)."""


def request(path: str | Path, msg: Mapping[str, Any], timeout: float = 5.0) -> Message:
    """Send one message on a new connection and return the first answer (blocking).

    Raises:
        NotListening: no socket at ``path``, or nobody listening on it.
        PermissionError: the socket is another user's.
        WireError: the answer is not a line of this protocol.
        TimeoutError: no answer within ``timeout``.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NotListening(f"no queue authority is listening on {path}") from exc
        sock.sendall(encode(msg))
        decoder = LineDecoder(MAX_REPLY)
        while True:
            data = sock.recv(65536)
            if not data:
                raise WireError("the queue authority closed the connection without an answer")
            lines = decoder.feed(data)
            if lines:
                return decode(lines[0])
