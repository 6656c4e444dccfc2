"""A step-event sink that writes one log line per event, each carrying the call id.

Event data is already masked by the session (secrets never reach events), so the log line can
show it as it is.
"""

from __future__ import annotations

import json
import logging

from ivr.core.events import Event

log = logging.getLogger("ivr.calls")


def log_event(event: Event) -> None:
    """Log ``event`` at DEBUG (INFO for the start and end of a call)."""
    level = logging.INFO if event.kind in ("call_start", "call_end") else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    data = json.dumps(event.data, ensure_ascii=False, default=str, sort_keys=True)
    log.log(level, "call %s t=%.2f %s %s %s", event.call_id, event.t, event.kind,
            event.node or "-", data)
