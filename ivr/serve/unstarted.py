"""The record of an answered call whose flow never started.

A session (and with it the call's record) begins at the ACK of our 200. A caller that never
sends the ACK, hangs up before it, or whose media cannot be started was still answered: it
held a slot and must be accounted for. Such a call gets a record of its own, a ``call_start``
and a ``call_end`` with no node, when it ends.
"""

from __future__ import annotations

import time

from ivr.core import events as ev
from ivr.core.events import Event, EventSink
from ivr.sip.call import SipCall

NO_ACK = "no_ack"  # answered, the ACK never came (the 2xx timed out)
FAILED = "failed"  # answered, then media or the session could not start
ABANDONED = "abandoned"  # answered, the caller hung up before confirming


def outcome_for(call: SipCall) -> str:
    """What the record says about an answered call that ended without a session."""
    if call.end_reason == "no ack":
        return NO_ACK
    if call.end_reason in ("remote bye", "cancelled"):
        return ABANDONED
    return FAILED


def record_unstarted(sink: EventSink, call: SipCall, flow_id: str, answered_at: float) -> None:
    """Write ``call``'s record: answered at ``answered_at`` (monotonic), ended now."""
    duration = round(max(time.monotonic() - answered_at, 0.0), 3)
    info = call.info()
    start = Event(info.call_id, 1, 0.0, ev.CALL_START, None, {
        "caller": info.caller, "called": info.called, "flow": flow_id, "flow_version": "",
        "transport": info.transport, "wall": round(time.time() - duration, 3),
        "sip_call_id": info.sip_call_id})  # fmt: skip
    end = Event(info.call_id, 2, duration, ev.CALL_END, None, {
        "outcome": outcome_for(call), "duration": duration, "last_node": None,
        "flow": flow_id, "language": None, "reason": call.end_reason})  # fmt: skip
    sink(start)
    sink(end)
