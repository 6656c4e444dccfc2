"""Who is calling whom: known to the engine, the transports and the SIP stack alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallInfo:
    """Who is calling whom, as the transport saw it."""

    call_id: str  # ours: the key of the call's records and files (never a peer's string)
    caller: str = ""
    called: str = ""
    transport: str = "sim"
    sip_call_id: str = ""  # the caller's Call-ID (SIP transports), kept in call_start only
