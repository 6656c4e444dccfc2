"""The one error type of the SIP wire-format parsers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.sip.message import Request, Response


class SipParseError(ValueError):
    """A SIP message, header field or URI that does not follow the grammar.

    Attributes:
        reason: What was wrong, short enough for a log line or a Warning header.
        status: The response code a UAS should send for it (400, or 505 for a bad version).
        partial: What could be read of the message before the fault: a request with its start
            line and the header fields up to the bad one (enough to answer 400 with matching
            Via/From/To/Call-ID/CSeq), a response, or None when nothing was readable. Set by
            ``parse_message``; the field parsers leave it None.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        partial: Request | Response | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial
