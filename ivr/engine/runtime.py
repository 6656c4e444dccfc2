"""What sessions share within one engine process: configuration values and action execution."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ivr.core.clock import TimerHandle
from ivr.engine.counters import Counters
from ivr.engine.queueing import Queues
from ivr.flow.model import ActionNode


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one self-service action.

    ``ok`` False takes the node's ``on_error``; ``data`` is the JSON reply or the function's
    return value (kept even when ``ok`` is False, e.g. a 2xx reply carrying ``error``).
    ``error`` is a short reason safe to log (never a request body: it may carry a PIN).
    """

    ok: bool
    data: Any = None
    error: str | None = None
    duration: float = 0.0


ActionDone = Callable[[ActionResult], None]


class ActionRunner(Protocol):
    """Runs action nodes (webhooks, Python functions) without blocking the session's loop."""

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> TimerHandle:
        """Start the action with variables ``scope``; call ``done`` exactly once on the session's
        loop unless the returned handle is cancelled first (hang-up)."""
        ...


@dataclass
class Runtime:
    """Per-process services a session needs besides its channel and clock."""

    actions: ActionRunner
    config_vars: dict[str, Any] = field(default_factory=dict)
    transfer_allow: tuple[str, ...] = ()
    actions_path: Path | None = None
    queues: Queues | None = None  # the agent queue (None: an enqueue takes its no-agents exit)
    counters: Counters | None = None  # counts across calls (None: each call counts its own)
