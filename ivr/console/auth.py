"""Console logins: sessions with random tokens and an expiry, CSRF tokens, a login rate limit.

Sessions live in memory (a restart logs everyone out, which is the safe side). Every table here
is bounded: a flood of logins or failures cannot grow memory without end.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from ivr.consoleconf import ConsoleConfig, ConsoleUser, verify_password

MAX_SESSIONS = 1000  # the oldest goes when a new login would pass this
LOGIN_FAILURES = 5  # failed logins allowed per user name and client address per window
ADDRESS_FAILURES = 20  # ... per client address, whatever the names (a spray of names)
LOGIN_WINDOW = 60.0  # seconds
MAX_CLIENTS = 4096  # client addresses tracked by the rate limit
COOKIE = "ivr_console"


@dataclass
class Session:
    """One login: who, until when, and the token state-changing requests must carry."""

    user: ConsoleUser
    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class RateLimit:
    """At most ``allowed`` failed logins per key (an address, a name at an address) in
    :data:`LOGIN_WINDOW`."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, client: str, now: float) -> bool:
        """Whether ``client`` must wait before trying again."""
        recent = self._failures.get(client)
        if recent is None:
            return False
        while recent and now - recent[0] > LOGIN_WINDOW:
            recent.popleft()
        return len(recent) >= self.allowed

    def failed(self, client: str, now: float) -> None:
        """Count one failed login of ``client``."""
        if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
            # Forget the clients whose failures are all past the window; if none, the oldest.
            stale = [c for c, d in self._failures.items() if not d or now - d[-1] > LOGIN_WINDOW]
            for c in stale or [next(iter(self._failures))]:
                del self._failures[c]
        self._failures.setdefault(client, deque(maxlen=self.allowed)).append(now)


class Sessions:
    """The console's logins (see the module docstring)."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self._sessions: dict[str, Session] = {}
        self.per_name = RateLimit(LOGIN_FAILURES)
        self.per_address = RateLimit(ADDRESS_FAILURES)

    def login(self, name: str, password: str, client: str) -> tuple[str, Session] | str:
        """A new session's (token, session), or why not (``rate`` or ``bad``)."""
        now = time.monotonic()
        keyed = f"{name}@{client}"
        if self.per_name.blocked(keyed, now) or self.per_address.blocked(client, now):
            return "rate"
        user = self.config.users.get(name)
        # A made-up hash for an unknown name keeps the time of a refusal the same.
        stored = user.password_hash if user is not None else _DUMMY
        if not verify_password(password[:1024], stored) or user is None:
            self.per_name.failed(keyed, now)
            self.per_address.failed(client, now)
            return "bad"
        self._purge(now)
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        token = secrets.token_urlsafe(32)
        session = Session(user, now + self.config.session_lifetime)
        self._sessions[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (None: none, or expired)."""
        if not token or len(token) > 100:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if time.monotonic() >= session.expires:
            del self._sessions[token]
            return None
        return session

    def logout(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        """Whether ``given`` is the session's CSRF token (constant time)."""
        return bool(given) and hmac.compare_digest(session.csrf.encode(), (given or "").encode())

    def _purge(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if now >= s.expires]:
            del self._sessions[token]


_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43
