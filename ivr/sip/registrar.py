"""A registrar for agents' softphones: REGISTER with digest authentication (RFC 3261 §10.3, §22).

Agents working from home REGISTER to ``ivr serve``; the engine calls them at the bindings kept
here. :meth:`Registrar.handle` takes a REGISTER and returns the :class:`Reply` the user agent
sends, following §10.3 in its order:

1. authentication (RFC 7616 with qop=auth): no usable Authorization for our realm → 401 with a
   fresh challenge per algorithm; a wrong password or an unknown user → 403, the same answer for
   both; right credentials on a nonce we did not issue, that outlived its lifetime, or with a
   nonce count already used (a replay) → 401 with ``stale=true``, and nothing changes;
2. the address of record (the To URI) must have a user part (else 404) equal to the
   authenticated user name: an agent registers itself only (else 403);
3. ``Contact: *`` needs ``Expires: 0`` and no other Contact (else 400); an expiry below
   ``min_expires`` gets 423 with Min-Expires; expiries are capped at ``max_expires``;
4. a binding with the request's Call-ID changes only for a higher CSeq: otherwise the whole
   request fails with 500 and no binding changes (step 7's all-or-nothing);
5. the 200 lists the user's bindings, each with the seconds it has left.

Bindings expire on the injected clock; every change of a user's bindings calls ``on_change``.

Bounds against hostile peers: Authorization values longer than :data:`MAX_AUTH_LENGTH` and all
but the first :data:`MAX_AUTH_HEADERS` are ignored; outstanding nonces are capped (the oldest
dropped first) and live ``nonce_lifetime`` seconds; bindings exist only for authenticated users,
at most ``max_contacts`` each. Nothing logs a password or an Authorization header; user names
from the wire are logged with ``repr``.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import formatdate
from functools import partial

from ivr.core.clock import Clock, TimerHandle
from ivr.sip.digest import Credentials, challenge_value
from ivr.sip.errors import SipParseError
from ivr.sip.message import Request
from ivr.sip.transport import Address, is_ip
from ivr.sip.uri import NameAddr, SipUri

log = logging.getLogger("ivr.sip.registrar")

MAX_AUTH_LENGTH = 2048  # real Authorization values are ~300 characters
MAX_AUTH_HEADERS = 4
MAX_USER_AGENT = 200
ALGORITHMS = ("MD5", "SHA-256")
# User names we look up: printable ASCII without space, quote or backslash, 1-64 characters.
_USERNAME = re.compile(r"[!#-\[\]-~]{1,64}")
_DUMMY_PASSWORD = "\x00no such user"  # hashed for unknown users, so both paths do the same work

CredentialsLookup = Callable[[str], str | None]


@dataclass(frozen=True)
class Binding:
    """Where a registered user's phone can be reached.

    Behind NAT the Contact names the phone's private address, which the server cannot reach;
    the packet's real ``source`` is where requests must go then (the phone keeps that NAT
    mapping open by refreshing). Both are kept. To call the agent, use :attr:`contact` as the
    Request-URI and send to :attr:`source` when the Contact's address is not reachable
    (:attr:`behind_nat`), else to the Contact's address.

    Attributes:
        user: The authenticated user name (the address of record's user part).
        contact: The Contact URI, without header parameters.
        source: The (ip, port) the REGISTER came from.
        expires_at: When the binding lapses, in the registrar clock's ``now()`` seconds.
        call_id: The Call-ID of the REGISTER that made or refreshed it.
        cseq: That REGISTER's CSeq number.
        user_agent: Its User-Agent header (truncated), or None.
    """

    user: str
    contact: str
    source: Address
    expires_at: float
    call_id: str
    cseq: int
    user_agent: str | None = None

    @property
    def contact_address(self) -> Address | None:
        """The Contact's (ip, port) when its host is an IP address, else None."""
        try:
            uri = SipUri.parse(self.contact)
        except SipParseError:
            return None
        host, port = uri.host_port()
        return (host, port) if is_ip(host) else None

    @property
    def behind_nat(self) -> bool:
        """True when the Contact's address (or host name) is not where the REGISTER came from."""
        return self.contact_address != self.source


ChangeHandler = Callable[[str, Binding | None], None]


@dataclass(frozen=True)
class Reply:
    """What the user agent answers a REGISTER with."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class _Refused(Exception):
    """Ends the handling of a REGISTER with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class _Nonce:
    issued_at: float
    last_nc: int = 0


# A binding's identity among a user's bindings: RFC 3261 §19.1.4 URI equality, simplified to
# the parts that decide where a request goes.
_Key = tuple[str, str | None, str, int | None, str | None, str | None]


def _key(uri: SipUri) -> _Key:
    transport = uri.params.get("transport")
    maddr = uri.params.get("maddr")
    return (uri.scheme, uri.user, uri.host.lower(), uri.port,
            transport.lower() if transport else None, maddr.lower() if maddr else None)  # fmt: skip


class Registrar:
    """Keeps agents' bindings, authenticated with digest (see the module docstring).

    Args:
        realm: The digest realm.
        credentials: ``username -> password``, or None for an unknown user. Called with user
            names that passed a syntax check (printable ASCII, at most 64 characters).
        clock: Nonce ages and binding expiry.
        min_expires: Shorter expiries (except 0) get 423 with this Min-Expires.
        max_expires: Longer expiries are granted this.
        default_expires: The expiry when the request names none (or a malformed one).
        on_change: ``(user, binding)`` after every change of a user's bindings: the binding
            that lapses last, or None when the user has none left.
        algorithms: The digest algorithms challenged with, the preferred first. MD5 alone by
            default: baresip 1.0 (Debian 12) fails outright on a challenge list holding
            SHA-256; ``("SHA-256", "MD5")`` suits newer phones.
        nonce_lifetime: Seconds a nonce stays usable.
        max_nonces: Outstanding nonces kept; the oldest are dropped beyond it.
        max_contacts: Bindings one user may hold (more gets 403).
    """

    def __init__(
        self,
        realm: str,
        credentials: CredentialsLookup,
        clock: Clock,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        on_change: ChangeHandler | None = None,
        algorithms: tuple[str, ...] = ("MD5",),
        nonce_lifetime: float = 300.0,
        max_nonces: int = 1024,
        max_contacts: int = 10,
    ) -> None:
        if not 0 < min_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= max_expires")
        if not algorithms or any(a not in ALGORITHMS for a in algorithms):
            raise ValueError(f"algorithms must be taken from {ALGORITHMS}")
        if max_nonces < 1 or max_contacts < 1 or nonce_lifetime <= 0:
            raise ValueError("max_nonces, max_contacts and nonce_lifetime must be positive")
        self.realm = realm
        self._credentials = credentials
        self.clock = clock
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = min(max(default_expires, min_expires), max_expires)
        self.on_change = on_change
        self.algorithms = algorithms
        self.nonce_lifetime = nonce_lifetime
        self.max_nonces = max_nonces
        self.max_contacts = max_contacts
        self._nonces: OrderedDict[str, _Nonce] = OrderedDict()
        self._bindings: dict[str, dict[_Key, Binding]] = {}
        self._timers: dict[tuple[str, _Key], TimerHandle] = {}

    # queries -----------------------------------------------------------------------------------

    @property
    def users(self) -> list[str]:
        """The users with at least one binding."""
        return list(self._bindings)

    def bindings(self, user: str) -> list[Binding]:
        """A user's bindings (empty when none)."""
        return list(self._bindings.get(user, {}).values())

    def binding(self, user: str) -> Binding | None:
        """The user's binding that lapses last, or None."""
        return max(self.bindings(user), key=lambda b: b.expires_at, default=None)

    @property
    def outstanding_nonces(self) -> int:
        """Nonces issued and still remembered."""
        return len(self._nonces)

    def close(self) -> None:
        """Cancel the expiry timers and forget everything (``on_change`` is not called)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._bindings.clear()
        self._nonces.clear()

    # REGISTER ----------------------------------------------------------------------------------

    def handle(self, request: Request, source: Address) -> Reply:
        """The answer to a REGISTER that passed :func:`ivr.sip.validate.check_request`;
        bindings are changed (and ``on_change`` called) before it returns."""
        call_id = request.headers.get("Call-ID") or "-"
        try:
            user = self._authenticate(request)
            return self._register(request, source, user, call_id)
        except _Refused as refused:
            return refused.reply
        except SipParseError as exc:
            log.info("call %s: REGISTER 400, %s", call_id, exc.reason)
            return Reply(400)
        except Exception:  # a bug here must not leave the phone without an answer
            log.exception("call %s: REGISTER failed", call_id)
            return Reply(500)

    # authentication ----------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> str:
        """The authenticated user name; raises :class:`_Refused` with the 401/403/400."""
        call_id = request.headers.get("Call-ID")
        creds = self._credentials_for_realm(request)
        if creds is None or not self._acceptable(creds):
            why = "no credentials" if creds is None else "credentials not on our terms"
            log.debug("call %s: REGISTER 401, %s for realm %s", call_id, why, self.realm)
            raise _Refused(self._challenge(stale=False))
        if creds.uri != request.uri:
            # RFC 7616 §3.4.6: the digest-uri must name the request's target.
            raise _Refused(Reply(400, "Digest URI Mismatch"))
        username = creds.username
        valid_name = _USERNAME.fullmatch(username) is not None
        password = self._credentials(username) if valid_name else None
        # An unknown user costs the same hashing as a known one: the time taken tells nothing.
        expected = creds.expected_response(request.method, password or _DUMMY_PASSWORD)
        given = creds.response.encode("utf-8", "surrogateescape")
        right = hmac.compare_digest(expected.encode(), given)
        if password is None or not right:
            why = "wrong password" if password is not None else "unknown user"
            log.info("call %s: REGISTER 403 for %r: %s", call_id, username[:64], why)
            raise _Refused(Reply(403))  # the same answer for both: user names stay secret
        stale = self._stale(creds)
        if stale:
            log.info("call %s: REGISTER 401 stale for %s: %s", call_id, username, stale)
            raise _Refused(self._challenge(stale=True))
        return username

    def _credentials_for_realm(self, request: Request) -> Credentials | None:
        for value in request.headers.get_all("Authorization")[:MAX_AUTH_HEADERS]:
            if len(value) > MAX_AUTH_LENGTH:
                continue
            try:
                creds = Credentials.parse(value)
            except SipParseError:
                continue  # its reason may quote the header: not logged
            if creds.realm == self.realm:
                return creds
        return None

    def _acceptable(self, creds: Credentials) -> bool:
        """Our challenge's terms: one of our algorithms, qop=auth (so a nonce count)."""
        offered = {a.upper() for a in self.algorithms}
        return creds.algorithm.upper() in offered and creds.qop == "auth" and creds.supported

    def _stale(self, creds: Credentials) -> str:
        """Why the credentials' nonce may not be used (empty when it may): it must be one we
        issued, within its lifetime, with a nonce count above those used (a replayed
        Authorization repeats one)."""
        self._purge()
        nonce = self._nonces.get(creds.nonce)
        if nonce is None:
            return "nonce unknown or expired"
        nc = creds.nc or 0
        if nc <= nonce.last_nc:
            return f"nonce count {nc} not above {nonce.last_nc} (a replay?)"
        nonce.last_nc = nc
        return ""

    def _challenge(self, *, stale: bool) -> Reply:
        nonce = self._issue_nonce()
        headers = tuple(
            ("WWW-Authenticate", challenge_value(self.realm, nonce, algorithm=a, stale=stale))
            for a in self.algorithms
        )
        return Reply(401, None, headers)

    def _issue_nonce(self) -> str:
        self._purge()
        while len(self._nonces) >= self.max_nonces:
            self._nonces.popitem(last=False)
        nonce = secrets.token_urlsafe(24)
        self._nonces[nonce] = _Nonce(self.clock.now())
        return nonce

    def _purge(self) -> None:
        """Drop nonces past their lifetime (the oldest are first)."""
        limit = self.clock.now() - self.nonce_lifetime
        while self._nonces:
            nonce = next(iter(self._nonces.values()))
            if nonce.issued_at > limit:
                break
            self._nonces.popitem(last=False)

    # bindings ----------------------------------------------------------------------------------

    def _register(self, request: Request, source: Address, user: str, call_id: str) -> Reply:
        aor = request.to_addr().uri
        if not isinstance(aor, SipUri) or not aor.user:
            raise _Refused(Reply(404, "Address Of Record Not Found"))
        if aor.user != user:
            log.info("call %s: REGISTER 403, %r may not register %r", call_id, user,
                     aor.user[:64])  # fmt: skip
            raise _Refused(Reply(403, "Not Your Address Of Record"))
        cseq = request.cseq().number
        values = request.headers.values("Contact")
        if "*" in values:
            self._remove_all(request, user, values, call_id, cseq)
        elif values:
            self._update(request, source, user, values, call_id, cseq)
        return self._ok(user)

    def _remove_all(
        self, request: Request, user: str, values: list[str], call_id: str, cseq: int
    ) -> None:
        if len(values) != 1 or not _is_zero(request.headers.get("Expires") or ""):
            raise _Refused(Reply(400, "Contact * Needs Expires 0 Alone"))
        current = self._bindings.get(user, {})
        for binding in current.values():
            self._check_order(binding, call_id, cseq)
        if current:
            self._commit(user, {}, call_id)

    def _update(
        self,
        request: Request,
        source: Address,
        user: str,
        values: list[str],
        call_id: str,
        cseq: int,
    ) -> None:
        if len(values) > self.max_contacts:
            raise _Refused(Reply(403, "Too Many Contacts"))
        header = request.headers.get("Expires")
        agent = request.headers.get("User-Agent")
        agent = agent[:MAX_USER_AGENT] if agent is not None else None
        asked: list[tuple[SipUri, int]] = []
        for value in values:
            contact = NameAddr.parse(value)
            if not isinstance(contact.uri, SipUri):
                raise _Refused(Reply(400, "Contact Must Be A SIP URI"))
            expires = self._expires(contact.params.get("expires"), header)
            if 0 < expires < self.min_expires:
                headers = (("Min-Expires", str(self.min_expires)),)
                raise _Refused(Reply(423, "Interval Too Brief", headers))
            asked.append((contact.uri, min(expires, self.max_expires)))
        current = self._bindings.get(user, {})
        proposed = dict(current)
        now = self.clock.now()
        for uri, expires in asked:
            key = _key(uri)
            existing = current.get(key)
            if existing is not None:
                self._check_order(existing, call_id, cseq)
            if expires == 0:
                proposed.pop(key, None)
            else:
                proposed[key] = Binding(user, str(replace(uri, headers=())), source,
                                        now + expires, call_id, cseq, agent)  # fmt: skip
        if len(proposed) > self.max_contacts:
            raise _Refused(Reply(403, "Too Many Contacts"))
        self._commit(user, proposed, call_id)

    def _expires(self, param: str | None, header: str | None) -> int:
        """The asked expiry: the Contact's parameter, else Expires, else the default.

        Malformed values count as the default (RFC 3261 §20.19 says 3600); digits too many to
        read are capped later like any long expiry.
        """
        text = (param if param is not None else header or "").strip()
        if not text or not (text.isdigit() and text.isascii()):
            return self.default_expires
        return int(text) if len(text) <= 10 else self.max_expires

    @staticmethod
    def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
        """§10.3 step 7: the same Call-ID with a CSeq not above the binding's aborts it all."""
        if binding.call_id == call_id and cseq <= binding.cseq:
            log.info("call %s: REGISTER 500, CSeq %d not above %d", call_id, cseq, binding.cseq)
            raise _Refused(Reply(500, "CSeq Out Of Order"))

    def _commit(self, user: str, proposed: dict[_Key, Binding], call_id: str) -> None:
        current = self._bindings.get(user, {})
        for key, old in current.items():
            new = proposed.get(key)
            if new is None or new != old:
                self._cancel(user, key)
            if new is None:
                log.info("call %s: %s unregistered %s", call_id, user, old.contact)
        for key, binding in proposed.items():
            if current.get(key) == binding:
                continue
            delay = binding.expires_at - self.clock.now()
            self._timers[(user, key)] = self.clock.call_later(
                delay, partial(self._expire, user, key)
            )
            host, port = binding.source
            level = logging.DEBUG if key in current else logging.INFO  # refreshes are routine
            log.log(level, "call %s: %s registered %s from %s:%d for %d s", call_id, user,
                    binding.contact, host, port, round(delay))  # fmt: skip
        if proposed:
            self._bindings[user] = proposed
        else:
            self._bindings.pop(user, None)
        if proposed != current:
            self._notify(user)

    def _expire(self, user: str, key: _Key) -> None:
        self._timers.pop((user, key), None)
        bindings = self._bindings.get(user)
        if bindings is None or key not in bindings:
            return
        binding = bindings.pop(key)
        if not bindings:
            del self._bindings[user]
        log.info("call %s: %s's binding %s expired", binding.call_id, user, binding.contact)
        self._notify(user)

    def _cancel(self, user: str, key: _Key) -> None:
        timer = self._timers.pop((user, key), None)
        if timer is not None:
            timer.cancel()

    def _notify(self, user: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(user, self.binding(user))
        except Exception:
            log.exception("registrar: on_change failed for %s", user)

    def _ok(self, user: str) -> Reply:
        now = self.clock.now()
        headers = [
            ("Contact", f"<{b.contact}>;expires={max(0, round(b.expires_at - now))}")
            for b in self.bindings(user)
        ]
        headers.append(("Date", formatdate(self.clock.wall(), usegmt=True)))
        return Reply(200, None, tuple(headers))


def _is_zero(text: str) -> bool:
    text = text.strip()
    return text.isascii() and text.isdigit() and not text.strip("0")
