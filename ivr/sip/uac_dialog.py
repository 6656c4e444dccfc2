"""The caller's side of a dialog: the ACK for a 2xx, CANCEL, and being transferred (REFER in).

:func:`ack_for_2xx` and :func:`cancel_for` build the requests :class:`ivr.sip.outgoing.OutgoingCall`
sends for an INVITE of ours (RFC 3261 §13.2.2.4, §9.1).

What :class:`~ivr.sip.ua_dialog.DialogHandler` does for the user agent that takes calls (BYE,
INFO, re-INVITE, OPTIONS, NOTIFY inside a call) is the same for a caller; only REFER differs: a
caller is the *transferee*. :class:`CallerDialogHandler` accepts a REFER with 202, reports the
Refer-To to the application and concludes the implicit subscription with one NOTIFY whose
message/sipfrag body is the status the application chose (RFC 3515 §2.4.4-2.4.5; RFC 3420).
We never place the call the REFER asks for: the caller is a test tool, and what matters to a
test is that the transfer was asked for, and where to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ivr.sip.call import CallState, SipCall
from ivr.sip.dialog import Dialog
from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import REASON_PHRASES, Request
from ivr.sip.transaction import ServerTransaction
from ivr.sip.transfer import SIPFRAG
from ivr.sip.transport import Address
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.ua_dialog import DialogHandler
from ivr.sip.uri import NameAddr

log = logging.getLogger("ivr.sip")

# ``(call, refer_to) -> status`` reported in the NOTIFY: 200 "transferred", 486, 503 ...
ReferHandler = Callable[[SipCall, str], int]


def ack_for_2xx(dialog: Dialog, via: str, body: bytes = b"", content_type: str | None = None
                ) -> Request:  # fmt: skip
    """The ACK for a 2xx to our INVITE: inside the new dialog, with the INVITE's CSeq number
    and a new branch (RFC 3261 §13.2.2.4); Route and Request-URI as for any in-dialog request.

    Raises:
        SipParseError: The route set does not parse.
    """
    number = dialog.local_seq
    request = dialog.create_request("ACK", via, body=body, content_type=content_type)
    dialog.local_seq = number  # an ACK does not use up a CSeq number
    request.headers.set("CSeq", f"{number} ACK")
    return request


def cancel_for(invite: Request) -> Request:
    """The CANCEL for our pending ``invite`` (RFC 3261 §9.1): same Request-URI, Call-ID, From,
    To, CSeq number and top Via (so it matches the INVITE's server transaction), same Route."""
    src = invite.headers
    headers = Headers()
    for name in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
        value = src.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("CSeq", f"{invite.cseq().number} CANCEL")
    for route in src.get_all("Route"):
        headers.add("Route", route)
    return Request("CANCEL", invite.uri, headers)


def sipfrag(status: int) -> bytes:
    """A message/sipfrag body holding a status line only."""
    reason = REASON_PHRASES.get(status, "")
    return f"SIP/2.0 {status} {reason}".rstrip().encode() + b"\r\n"


def refer_to(request: Request) -> str | None:
    """The URI of a REFER's Refer-To (its header parameters dropped), or None."""
    value = request.headers.get("Refer-To")
    if not value:
        return None
    try:
        return str(NameAddr.parse(value).uri)
    except SipParseError:
        return value.strip().strip("<>")


class CallerDialogHandler(DialogHandler):
    """:class:`DialogHandler` for calls we placed: REFER is accepted (we are transferred).

    Args:
        ua: The user agent.
        on_notify: Handles a NOTIFY in a call (after the CSeq check).
        on_bye: Told when the peer's BYE ends a call.
        on_refer: ``(call, target) -> status``: the status our NOTIFY reports (default 200).
    """

    def __init__(
        self,
        ua: UaBase,
        on_notify: Callable[[SipCall, ServerTransaction], None],
        on_bye: Callable[[SipCall], None],
        on_refer: ReferHandler | None = None,
    ) -> None:
        super().__init__(ua, on_notify, on_bye)
        self.on_refer = on_refer

    def on_request(self, call: SipCall, request: Request, source: Address) -> None:
        if request.method != "REFER":
            super().on_request(call, request, source)
            return
        ua = self.ua
        tx = ua.transactions.create_server(request, source)
        if not call.dialog.accept_remote_cseq(request):
            ua.respond(tx, 500, "CSeq Out Of Order")
            return
        target = refer_to(request)
        if target is None:
            ua.respond(tx, 400, "Missing Refer-To")
            return
        if call.state != CallState.ESTABLISHED:
            ua.respond(tx, 481)
            return
        ua.respond(tx, 202)
        log.info("call %s: REFER to %s accepted", call.call_id, target)
        status = 200 if self.on_refer is None else self.on_refer(call, target)
        ua.spawn(self._notify(call, status), call.call_id)

    async def _notify(self, call: SipCall, status: int) -> None:
        """The one NOTIFY that ends the implicit subscription with the transfer's result."""
        headers = [("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")]
        try:
            tx = await self.ua.send_in_dialog(call, "NOTIFY", body=sipfrag(status),
                                              content_type=SIPFRAG, headers=headers)  # fmt: skip
        except RouteError as exc:
            log.warning("call %s: NOTIFY not sent: %s", call.call_id, exc)
            return
        response = await tx.result
        log.info("call %s: NOTIFY (%d) answered %d", call.call_id, status, response.status)
