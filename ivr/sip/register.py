"""Registering with a registrar (RFC 3261 §10) using digest authentication (§22).

A :class:`Registration` keeps one binding alive: REGISTER, answer a 401/407 challenge once per
nonce (qop=auth with nc/cnonce when offered), take the granted expiry from the 200, refresh
before it runs out, retry after a failure, and remove the binding (Expires: 0) on
:meth:`Registration.unregister`. Status changes go to ``on_status``. The password and the
Authorization header never reach a log line.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from ivr.core.clock import TimerHandle
from ivr.sip.digest import Challenge, credentials, pick_challenge
from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.uri import NameAddr, SipUri
from ivr.sip.validate import ALLOW

log = logging.getLogger("ivr.sip.register")

_MAX_ROUNDS = 4  # challenges and 423s answered within one attempt


class RegistrationStatus(enum.StrEnum):
    """Where a registration is."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"


def refresh_delay(expires: int) -> float:
    """When to refresh a binding granted for ``expires`` seconds: halfway for short ones,
    a minute early for long ones."""
    return max(expires / 2, expires - 60.0)


class Registration:
    """One binding of ``contact`` to ``aor`` at a registrar.

    Attributes:
        status: A :class:`RegistrationStatus`.
        expires: The expiry the registrar granted, or None.
        last_status: The status code of the last final response (408: no answer).
        reason: A short text for the last outcome (safe to log).
    """

    def __init__(
        self,
        ua: UaBase,
        registrar_uri: str,
        aor: str,
        username: str,
        password: str,
        *,
        expires: int = 3600,
        contact: str,
        on_status: Callable[[Registration], None] | None = None,
        retry_interval: float = 60.0,
    ) -> None:
        self._ua = ua
        self.registrar_uri = registrar_uri
        self.aor = aor
        self.username = username
        self._password = password
        self.requested_expires = expires
        self.contact = contact
        self.on_status = on_status
        self.retry_interval = retry_interval
        self.call_id = ua.ids.call_id(ua.address[0])
        self._tag = ua.ids.tag()
        self._cseq = 0
        self._challenge: tuple[str, Challenge] | None = None  # (header to send, challenge)
        self._nc = 0
        self._timer: TimerHandle | None = None
        self._closed = False
        self.status = RegistrationStatus.UNREGISTERED
        self.bound = False  # the registrar accepted a binding we have not removed
        self.expires: int | None = None
        self.last_status = 0
        self.reason = ""

    def __repr__(self) -> str:
        return f"<Registration {self.aor} {self.status}>"

    async def register(self) -> bool:
        """One registration attempt (challenges answered); schedules the refresh or a retry.

        Returns:
            True when the registrar accepted the binding.
        """
        self._cancel_timer()
        self._set(RegistrationStatus.REGISTERING, "registering")
        response = await self._transact(self.requested_expires)
        if self._closed:
            return False
        if response is not None and 200 <= response.status < 300:
            self.expires = self._granted(response)
            self.bound = self.expires > 0
            self._set(RegistrationStatus.REGISTERED, f"{response.status}, expires {self.expires}")
            if self.expires > 0:
                self._schedule(refresh_delay(self.expires))
            return True
        self._set(RegistrationStatus.FAILED, self.reason)
        self._schedule(self.retry_interval)
        return False

    async def unregister(self) -> bool:
        """Remove the binding (Expires: 0) and stop refreshing."""
        self._closed = True
        self._cancel_timer()
        if not self.bound:
            return False
        response = await self._transact(0)
        ok = response is not None and 200 <= response.status < 300
        self.bound = False
        self._set(RegistrationStatus.UNREGISTERED, "unregistered" if ok else self.reason)
        return ok

    def close(self) -> None:
        """Stop refreshing without telling the registrar."""
        self._closed = True
        self._cancel_timer()

    # ----------------------------------------------------------------------------------------

    async def _transact(self, expires: int) -> Response | None:
        try:
            target = SipUri.parse(self.registrar_uri)
        except SipParseError as exc:
            self.reason = f"bad registrar URI: {exc.reason}"
            return None
        answered = False
        for _ in range(_MAX_ROUNDS):
            try:
                tx = await self._ua.send_request(self._build(expires), target)
            except RouteError as exc:
                self.reason = str(exc)
                return None
            response = await tx.result
            self.last_status = response.status
            self.reason = f"{response.status} {response.reason}".strip()
            if response.status in (401, 407) and self._take_challenge(response, answered):
                answered = True
                continue
            if response.status == 423 and expires:
                expires = self._min_expires(response, expires)
                continue
            return response
        return None

    def _take_challenge(self, response: Response, answered: bool) -> bool:
        """Keep the challenge for the next request; False when answering it is pointless.

        Args:
            response: The 401 or 407.
            answered: Whether this attempt already answered a challenge: a second one that
                is not ``stale`` means the credentials were refused.
        """
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        challenge = pick_challenge(response.headers.get_all(header))
        if challenge is None:
            self.reason += " (no usable Digest challenge)"
            return False
        auth = "Authorization" if response.status == 401 else "Proxy-Authorization"
        self._challenge = (auth, challenge)  # the freshest nonce, for the next attempt too
        self._nc = 0
        if answered and not challenge.stale:
            self.reason += " (credentials refused)"
            return False
        return True

    def _min_expires(self, response: Response, expires: int) -> int:
        value = (response.headers.get("Min-Expires") or "").strip()
        return int(value) if value.isdigit() and len(value) < 10 else max(expires * 2, 60)

    def _build(self, expires: int) -> Request:
        ua = self._ua
        self._cseq += 1
        headers = Headers([("Via", ua.new_via()), ("Max-Forwards", "70")])
        headers.add("From", f"<{self.aor}>;tag={self._tag}")
        headers.add("To", f"<{self.aor}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self._cseq} REGISTER")
        headers.add("Contact", f"<{self.contact}>;expires={expires}")
        headers.add("Expires", str(expires))
        headers.add("Allow", ", ".join(ALLOW))
        if self._challenge is not None:
            name, challenge = self._challenge
            self._nc += 1
            value = credentials(challenge, method="REGISTER", uri=self.registrar_uri,
                                username=self.username, password=self._password,
                                cnonce=ua.ids.cnonce(), nc=self._nc)  # fmt: skip
            headers.add(name, value)
        return Request("REGISTER", self.registrar_uri, headers)

    def _granted(self, response: Response) -> int:
        """Our binding's expiry from the 200: its Contact's expires, else Expires."""
        try:
            ours = SipUri.parse(self.contact)
            for contact in response.contacts():
                uri = contact.uri
                if isinstance(uri, SipUri) and _same_binding(uri, ours):
                    value = contact.params.get("expires")
                    if value is not None and value.isdigit():
                        return int(value)
        except SipParseError:
            pass
        value = (response.headers.get("Expires") or "").strip()
        return int(value) if value.isdigit() and len(value) < 10 else self.requested_expires

    def _schedule(self, delay: float) -> None:
        if self._closed:
            return
        self._timer = self._ua.clock.call_later(
            delay, lambda: self._ua.spawn(self._refresh(), self.call_id)
        )

    async def _refresh(self) -> None:
        self._timer = None
        if not self._closed:
            await self.register()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, status: RegistrationStatus, reason: str) -> None:
        changed = status != self.status
        self.status = status
        self.reason = reason
        level = logging.WARNING if status == RegistrationStatus.FAILED else logging.INFO
        if changed or status == RegistrationStatus.FAILED:
            log.log(level, "call %s: registration of %s at %s: %s (%s)", self.call_id, self.aor,
                    self.registrar_uri, status, reason)  # fmt: skip
        if self.on_status is not None:
            try:
                self.on_status(self)
            except Exception:
                log.exception("call %s: on_status failed", self.call_id)


def _same_binding(a: SipUri, b: SipUri) -> bool:
    return (a.user, a.host.lower(), a.port or 5060) == (b.user, b.host.lower(), b.port or 5060)


def contact_user(contact: str) -> str | None:
    """The user part of a Contact URI (to recognise calls the registrar sends us)."""
    try:
        uri = NameAddr.parse(contact).uri
    except SipParseError:
        return None
    return uri.user if isinstance(uri, SipUri) else None
