"""Who is calling whom: known to the engine, the transports and the SIP stack alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallInfo:
    """Who is calling whom, as the transport saw it."""

    call_id: str
    caller: str = ""
    called: str = ""
    transport: str = "sim"
    qa: bool = False  # a QA call (ivr test): marked in the call record, left out of reports
