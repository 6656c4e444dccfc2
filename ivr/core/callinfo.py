"""Who is calling whom: known to the engine, the transports and the SIP stack alike."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.core.textsafe import printable


@dataclass(frozen=True)
class CallInfo:
    """Who is calling whom, as the transport saw it."""

    call_id: str
    caller: str = ""
    called: str = ""
    transport: str = "sim"

    def __post_init__(self) -> None:
        # The caller chooses both (From and Request-URI): they reach logs, records and flows
        # only as printable text (control characters escaped, length bounded).
        object.__setattr__(self, "caller", printable(self.caller))
        object.__setattr__(self, "called", printable(self.called))
