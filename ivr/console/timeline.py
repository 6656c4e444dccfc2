"""A call's timeline: its stored events as readable rows (time, what happened, where).

One row per event, in the order the engine emitted them (``seq``): prompts with their text and
language, keys and speech (with the recogniser's confidence), no-input/no-match, branches
taken, actions, transfers, the agent queue's and the agents' steps, recordings (numbered, for
the player), survey answers and the end. The values are the stored ones: a secret entry is
``****`` in the store and stays so here (:mod:`ivr.console.records`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ivr.console.records import Timeline

# kind -> the row's category (its colour and filter in the page)
CATEGORY = {
    "call_start": "call", "call_end": "call", "hangup": "call",
    "node_enter": "node", "match": "node", "global": "node", "var_set": "node",
    "prompt": "prompt", "input": "input", "no_input": "problem", "no_match": "problem",
    "error": "problem", "action": "action", "transfer": "transfer",
    "queue": "queue", "queue_announce": "queue", "queue_exit": "queue", "callback": "queue",
    "agent_ring": "agent", "agent_result": "agent", "agent_connected": "agent",
    "agent_done": "agent", "recording": "recording", "survey": "survey",
}  # fmt: skip
MAX_TEXT = 400  # characters of one row's text (a prompt can be long)


@dataclass(frozen=True)
class Row:
    """One event as the page shows it."""

    seq: int
    t: float  # seconds into the call
    at: str  # wall-clock time (UTC), HH:MM:SS.mmm
    kind: str
    category: str
    node: str
    flow: str
    text: str
    recording: int = 0  # the n-th recording of the call (1-based), 0: none

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "t": self.t, "at": self.at, "kind": self.kind,
                "category": self.category, "node": self.node, "flow": self.flow,
                "text": self.text, "recording": self.recording}  # fmt: skip


def _v(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    return default if value is None else str(value)


def _seconds(value: Any) -> str:
    return f"{float(value):.1f} s" if isinstance(value, int | float) else "?"


def _input(d: dict[str, Any]) -> str:
    if d.get("mode") == "speech":
        confidence = d.get("confidence")
        conf = f" (confidence {float(confidence):.2f})" if isinstance(confidence, int | float) \
            else ""  # fmt: skip
        return f"said “{_v(d, 'value')}”{conf}"
    return f"keys {_v(d, 'value')}"


def _action(d: dict[str, Any]) -> str:
    via = _v(d, "via", "action")
    state = "ok" if d.get("ok") else f"failed: {_v(d, 'error', 'error')}"
    return f"{via} {state} in {_seconds(d.get('duration'))}"


_TEXT: dict[str, Callable[[dict[str, Any]], str]] = {
    "call_start": lambda d: (f"call from {_v(d, 'caller', '?')} to {_v(d, 'called', '?')} "
                             f"({_v(d, 'transport', '?')}), flow {_v(d, 'flow', '?')}"
                             + (" · QA call" if d.get("qa") else "")),
    "node_enter": lambda d: f"enters ({_v(d, 'kind', '?')})",
    "prompt": lambda d: f"plays {_v(d, 'prompt')} [{_v(d, 'language')}] “{_v(d, 'text')}”",
    "input": _input,
    "no_input": lambda d: f"no input (#{_v(d, 'count', '1')})",
    "no_match": lambda d: (f"no match (#{_v(d, 'count', '1')})"
                           + (f": {_v(d, 'value')}" if d.get("value") is not None else "")),
    "match": lambda d: f"takes {_v(d, 'branch')}",
    "global": lambda d: f"global command {_v(d, 'command')} → {_v(d, 'target')}",
    "var_set": lambda d: f"sets {_v(d, 'name')} = {_v(d, 'value')}",
    "action": _action,
    "transfer": lambda d: (f"transfer to {_v(d, 'target')}: "
                           + ("ok" if d.get("ok") else f"failed ({_v(d, 'reason', '?')})")),
    "queue": lambda d: (f"queued in {_v(d, 'queue')}, priority {_v(d, 'priority')}"
                        + (f", skills {', '.join(map(str, d['skills']))}"
                           if isinstance(d.get("skills"), list) and d["skills"] else "")),
    "queue_announce": lambda d: (f"told position {_v(d, 'position', '?')}, "
                                 f"about {_v(d, 'minutes', '?')} min"),
    "queue_exit": lambda d: (f"leaves the queue: {_v(d, 'reason')} after "
                             f"{_seconds(d.get('queue_wait'))}"),
    "callback": lambda d: f"callback requested to {_v(d, 'number')}",
    "agent_ring": lambda d: f"rings agent {_v(d, 'agent')}",
    "agent_result": lambda d: f"agent {_v(d, 'agent')}: {_v(d, 'outcome')}",
    "agent_connected": lambda d: (f"agent {_v(d, 'agent')} answers after "
                                  f"{_seconds(d.get('queue_wait'))} in queue"),
    "agent_done": lambda d: f"agent {_v(d, 'agent')} done, talked {_seconds(d.get('talk'))}",
    "recording": lambda d: f"recording, {_seconds(d.get('duration'))}",
    "survey": lambda d: f"survey {_v(d, 'question')}: {_v(d, 'answer', 'skipped')}",
    "hangup": lambda d: f"hang-up by {_v(d, 'by', '?')}",
    "call_end": lambda d: (f"call ends: {_v(d, 'outcome', '?')} after "
                           f"{_seconds(d.get('duration'))}"),
    "error": lambda d: f"error: {_v(d, 'message')}",
}  # fmt: skip


def describe(kind: str, data: dict[str, Any]) -> str:
    """One event's text (an unknown kind: its fields as ``key=value``)."""
    render = _TEXT.get(kind)
    if render is not None:
        try:
            text = render(data)
        except (TypeError, ValueError, KeyError):
            text = ""
        if text:
            return text[:MAX_TEXT]
    fields = ", ".join(f"{k}={v}" for k, v in data.items() if k != "flow")
    return f"{kind} {fields}"[:MAX_TEXT]


def rows(record: Timeline) -> list[Row]:
    """The timeline's rows in order."""
    started = record.call.get("started_at")
    out: list[Row] = []
    recordings = 0
    for event in record.events:
        t = float(event["t"] or 0.0)
        number = 0
        if event["kind"] == "recording":
            recordings += 1
            number = recordings
        out.append(Row(int(event["seq"]), round(t, 3), _clock(started, t), str(event["kind"]),
                       CATEGORY.get(str(event["kind"]), "other"), str(event["node"] or ""),
                       str(event["flow"] or ""), describe(str(event["kind"]), event["data"]),
                       number))  # fmt: skip
    return out


def _clock(started: Any, t: float) -> str:
    if not isinstance(started, int | float):
        return ""
    moment = dt.datetime.fromtimestamp(started + t, dt.UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def when(epoch: Any) -> str:
    """A call's start as ``YYYY-MM-DD HH:MM:SS`` UTC (empty when unknown)."""
    if not isinstance(epoch, int | float):
        return ""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
