"""Blind transfer: REFER out, NOTIFY with message/sipfrag in (RFC 3515, RFC 3420).

We send REFER with Refer-To and Referred-By inside the call's dialog. A final response of 300
or above (or none: 408) is a failure. After the 202, the implicit subscription reports the
new call's progress in NOTIFYs whose body is a sipfrag status line: ``SIP/2.0 200 OK`` is
success, 300-699 failure, 1xx progress. We answer every NOTIFY 200. When no final NOTIFY comes
within ``notify_timeout``, or the peer hangs up after the 202 without one, the 202 counts as
success if ``success_without_notify`` (many PBXs never report). After a success the call is
over: the peer normally sends BYE; if it does not within ``bye_after``, we do.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Callable

from ivr.sip.call import CallState, SipCall
from ivr.sip.transaction import ServerTransaction
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.uri import SipUri

log = logging.getLogger("ivr.sip")

SIPFRAG = "message/sipfrag"
_STATUS_LINE = re.compile(rb"\s*SIP/[0-9]+\.[0-9]+\s+([1-6][0-9]{2})\b[ \t]*([^\r\n]*)")

Outcome = tuple[bool, str]


def sipfrag_status(body: bytes) -> tuple[int, str] | None:
    """The status code and reason of a message/sipfrag body's status line, or None."""
    m = _STATUS_LINE.match(body)
    if m is None:
        return None
    return int(m.group(1)), m.group(2).decode("utf-8", "replace").strip()


def refer_target(call: SipCall, target: str) -> str:
    """The Refer-To URI: ``target`` when it is a URI, else ``sip:target@<peer's domain>``."""
    if ":" in target:
        return target
    uri = call.dialog.remote_addr.uri
    domain = uri.host if isinstance(uri, SipUri) else call.source[0]
    if isinstance(uri, SipUri) and uri.port is not None:
        domain = f"{domain}:{uri.port}"
    return f"sip:{target}@{domain}"


class _Transfer:
    """One transfer in progress."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.accepted = False  # the REFER got its 2xx
        self.outcome: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()

    def settle(self, outcome: Outcome | None) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)


class TransferHandler:
    """Sends REFERs, reads the NOTIFYs, and ends transferred calls.

    Args:
        ua: The user agent.
        send_bye: Sends our BYE for a call (``(call, reason)``).
    """

    def __init__(self, ua: UaBase, send_bye: Callable[[SipCall, str], None]) -> None:
        self.ua = ua
        self.send_bye = send_bye
        self._active: weakref.WeakKeyDictionary[SipCall, _Transfer] = weakref.WeakKeyDictionary()

    def start(self, call: SipCall, target: str) -> None:
        """Begin a blind transfer of ``call`` to ``target``."""
        if call.state != CallState.ESTABLISHED:
            call.transfer_result(False, f"call is {call.state}")
            return
        if call in self._active:
            call.transfer_result(False, "a transfer is already in progress")
            return
        transfer = _Transfer(refer_target(call, target))
        self._active[call] = transfer
        self.ua.spawn(self._run(call, transfer), call.call_id)

    async def _run(self, call: SipCall, transfer: _Transfer) -> None:
        try:
            ok, reason = await self._refer_and_wait(call, transfer)
        finally:
            self._active.pop(call, None)
        call.transfer_result(ok, reason)
        if ok:
            await self._end_after_success(call)

    async def _refer_and_wait(self, call: SipCall, transfer: _Transfer) -> Outcome:
        ua = self.ua
        log.info("call %s: REFER to %s", call.call_id, transfer.target)
        headers = [("Refer-To", f"<{transfer.target}>"),
                   ("Referred-By", f"<{call.dialog.local_addr.uri}>")]  # fmt: skip
        try:
            tx = await ua.send_in_dialog(call, "REFER", headers=headers)
        except RouteError as exc:
            return False, f"REFER not sent: {exc}"
        response = await tx.result
        if response.status >= 300:
            return False, f"REFER answered {response.status} {response.reason}".strip()
        transfer.accepted = True
        if call.state != CallState.ESTABLISHED:  # the peer hung up before the 202 reached us
            transfer.settle(self._without_notify("the call ended after the REFER was accepted"))
        timer = ua.clock.call_later(
            ua.transfer_options.notify_timeout,
            lambda: transfer.settle(self._without_notify("no final NOTIFY after the 202")),
        )
        try:
            outcome = await transfer.outcome
        finally:
            timer.cancel()
        return outcome or (False, "transfer abandoned")

    def _without_notify(self, why: str) -> Outcome:
        ok = self.ua.transfer_options.success_without_notify
        return ok, f"{why} (REFER accepted)" if ok else why

    async def _end_after_success(self, call: SipCall) -> None:
        if call.state != CallState.ESTABLISHED:
            return
        done = asyncio.get_running_loop().create_future()

        def check() -> None:
            if not done.done():
                done.set_result(None)

        timer = self.ua.clock.call_later(self.ua.transfer_options.bye_after, check)
        call.add_done_callback(lambda _call: check())
        try:
            await done
        finally:
            timer.cancel()
        if call.state == CallState.ESTABLISHED:
            self.send_bye(call, "transferred")

    # incoming -------------------------------------------------------------------------------

    def on_notify(self, call: SipCall, tx: ServerTransaction) -> None:
        """A NOTIFY in ``call``'s dialog (the CSeq was checked)."""
        request = tx.request
        event = (request.headers.get("Event") or "").partition(";")[0].strip().lower()
        if event != "refer":
            self.ua.respond(tx, 489, "Bad Event", headers=[("Allow-Events", "refer")])
            return
        self.ua.respond(tx, 200)
        transfer = self._active.get(call)
        status = sipfrag_status(request.body) if request.content_type() == SIPFRAG else None
        state = (request.headers.get("Subscription-State") or "").partition(";")[0]
        log.info("call %s: NOTIFY %s (%s)", call.call_id,
                 f"{status[0]} {status[1]}" if status else "-", state.strip() or "-")  # fmt: skip
        if transfer is None:
            return
        if status is not None and status[0] >= 200:
            transfer.settle((status[0] < 300, f"NOTIFY {status[0]} {status[1]}".strip()))
        elif state.strip().lower() == "terminated":
            transfer.settle((False, "subscription terminated without a final status"))

    def on_call_ended(self, call: SipCall) -> None:
        """The peer's BYE ended ``call``: settle a transfer waiting for its NOTIFY."""
        transfer = self._active.get(call)
        # Before the 202 the REFER's own response decides (see _refer_and_wait).
        if transfer is not None and transfer.accepted:
            transfer.settle(self._without_notify("the peer hung up after accepting the REFER"))
