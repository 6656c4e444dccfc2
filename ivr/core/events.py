"""Step events: everything a session does is told to its sinks (call records, QA, logs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Event kinds, in the order they usually happen.
CALL_START = "call_start"  # data: caller, called, flow, flow_version, transport
NODE_ENTER = "node_enter"  # node, data: kind, flow
PROMPT = "prompt"  # node, data: prompt (id), text, language
INPUT = "input"  # node, data: mode (dtmf|speech), value (masked when secret), confidence
NO_INPUT = "no_input"  # node, data: count
NO_MATCH = "no_match"  # node, data: count, value (masked when secret)
MATCH = "match"  # node, data: branch (the label of Node.targets() taken), value
GLOBAL = "global"  # node, data: command, target
VAR_SET = "var_set"  # node, data: name, value (masked when secret)
ACTION = "action"  # node, data: ok, duration, error, via (webhook|python); no bodies (secrets)
TRANSFER = "transfer"  # node, data: target, ok, reason
QUEUE = "queue"  # node, data: queue, priority, skills, tier
QUEUE_ANNOUNCE = "queue_announce"  # node, data: position, minutes, over
AGENT_RING = "agent_ring"  # node, data: agent
AGENT_RESULT = "agent_result"  # node, data: agent, outcome (rejected|no_answer|failed)
AGENT_CONNECTED = "agent_connected"  # node, data: agent, queue_wait (s)
AGENT_DONE = "agent_done"  # node, data: agent, talk (s)
QUEUE_MOVED = "queue_moved"  # node, data: queue, from (a supervisor's move), head, queue_wait
QUEUE_EXIT = "queue_exit"  # node, data: reason (max_wait|no_agents|full|key|no_queue), queue_wait
CALLBACK = "callback"  # node, data: number (the caller keeps their place and is called back)
RECORDING = "recording"  # node, data: path, duration
SURVEY = "survey"  # node, data: question, answer
HANGUP = "hangup"  # node, data: by (caller|flow); queue_wait (s) when after a queue's call_end
CALL_END = "call_end"  # data: outcome, duration, last node
ERROR = "error"  # node, data: message

MASK = "****"


@dataclass(slots=True)  # not frozen: a frozen dataclass is several times slower to create
class Event:
    """One step of one call. ``t`` is seconds since the call started (clock time).

    Treat events as read-only: every sink of a call receives the same object.
    """

    call_id: str
    seq: int
    t: float
    kind: str
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]
