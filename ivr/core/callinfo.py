"""Who is calling whom: known to the engine, the transports and the SIP stack alike."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.core.textsafe import printable


@dataclass(frozen=True)
class CallInfo:
    """Who is calling whom, as the transport saw it."""

    call_id: str  # ours: the key of the call's records and files (never a peer's string)
    caller: str = ""
    called: str = ""
    transport: str = "sim"
    sip_call_id: str = ""  # the caller's Call-ID (SIP transports), kept in call_start only
    # The X- headers of the SIP INVITE (a PBX's notes to us, e.g. Asterisk's channel name for
    # its queues, docs/ASTERISK.md): a few, bounded by the SIP side.
    x_headers: tuple[tuple[str, str], ...] = ()
    qa: bool = False  # a QA call (ivr test): marked in the call record, left out of reports

    def x_header(self, name: str) -> str:
        """The value of the X- header ``name`` (any case), or ""."""
        wanted = name.lower()
        return next((v for k, v in self.x_headers if k.lower() == wanted), "")

    def __post_init__(self) -> None:
        # The caller chooses these (From, Request-URI, X- headers): they reach logs, records and
        # flows only as printable text (control characters escaped, length bounded).
        object.__setattr__(self, "caller", printable(self.caller))
        object.__setattr__(self, "called", printable(self.called))
        object.__setattr__(self, "x_headers",
                           tuple((printable(k), printable(v)) for k, v in self.x_headers))
