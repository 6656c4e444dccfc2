"""ivr.yaml ``console:``: the web console's address, users and sessions, and password hashes.

The console (:mod:`ivr.console`) is served by ``ivr serve`` when ivr.yaml has a ``console:``
section::

    console:
      listen: 127.0.0.1:8089          # the default
      session_lifetime: 28800         # seconds a login lasts (default 8 hours)
      users:
        ann: {role: supervisor, password_hash: "scrypt$16384$8$1$SALT$HASH"}

Roles, each allowed what the one before is: ``viewer`` (wallboard, metrics), ``supervisor``
(agents in/out, pause, resume), ``admin``. A password is never written in ivr.yaml: only its
scrypt hash (``ivr console hash-password`` makes one), checked here so that a hostile file
cannot make a login cost unbounded memory or time (the scrypt cost is bounded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.configread import MISSING, Reader
from ivr.flow.yamlload import child

ROLES = ("viewer", "supervisor", "admin")
DEFAULT_LISTEN = ("127.0.0.1", 8089)
DEFAULT_LIFETIME = 8 * 3600.0
_KEYS = ("listen", "users", "session_lifetime")
_USER_KEYS = ("role", "password_hash")

# scrypt cost: N=2^14, r=8 (16 MiB, ~50 ms here) is the usual interactive setting. A hash
# naming more than the bounds below is refused, whoever wrote it.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
MAX_N, MAX_R, MAX_P = 1 << 17, 16, 4
SALT_BYTES, KEY_BYTES = 16, 32
PREFIX = "scrypt"


@dataclass(frozen=True)
class ConsoleUser:
    """One login: a name, a role and the scrypt hash of the password (never shown)."""

    name: str
    role: str
    password_hash: str = field(repr=False)

    def may(self, role: str) -> bool:
        """Whether this user has ``role`` or a higher one."""
        return ROLES.index(self.role) >= ROLES.index(role)


@dataclass(frozen=True)
class ConsoleConfig:
    """ivr.yaml ``console:`` (see the module docstring)."""

    host: str = DEFAULT_LISTEN[0]
    port: int = DEFAULT_LISTEN[1]
    users: dict[str, ConsoleUser] = field(default_factory=dict)
    session_lifetime: float = DEFAULT_LIFETIME

    @property
    def loopback(self) -> bool:
        """Whether the console listens on a loopback address only."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``; anything else (0.0.0.0 too) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- password hashes ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$SALT$KEY`` for ``password`` with a random salt."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{PREFIX}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def parse_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, key) of a hash made by :func:`hash_password`.

    Raises:
        ValueError: not such a hash, or a cost past the bounds.
    """
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != PREFIX or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("expected scrypt$N$r$p$SALT$KEY (make one with "
                         "`ivr console hash-password`)")  # fmt: skip
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or n > MAX_N or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        raise ValueError(f"scrypt cost out of bounds (N a power of two up to {MAX_N}, "
                         f"r 1-{MAX_R}, p 1-{MAX_P})")  # fmt: skip
    try:
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("salt and key must be base64") from None
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        raise ValueError("salt (8+ bytes) or key (16-64 bytes) of the wrong length")
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (False for a malformed hash)."""
    try:
        n, r, p, salt, key = parse_hash(stored)
    except ValueError:
        return False
    got = _scrypt(password, salt, n, r, p, len(key))
    return hmac.compare_digest(got, key)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int = KEY_BYTES) -> bytes:
    # maxmem: what these parameters need (128 * N * r per lane) plus room; OpenSSL's default
    # of 32 MiB would refuse the upper bounds that parse_hash allows.
    need = 128 * n * r * (p + 1) + (1 << 20)
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=need,
                          dklen=length)  # fmt: skip


# --- reading ivr.yaml ----------------------------------------------------------------------------


def read_console(r: Reader, parse_listen: Callable[[str], tuple[str, int]]
                 ) -> ConsoleConfig | None:  # fmt: skip
    """ivr.yaml ``console:`` (None when there is none: no console is served).

    Args:
        r: ivr.yaml's reader; problems go to ``r.problems``.
        parse_listen: ``HOST:PORT`` -> (host, port), raising ValueError (ivr.config's).
    """
    if not r.section("/console", _KEYS):
        return None
    host, port = DEFAULT_LISTEN
    if r.get("/console/listen") is not MISSING:
        try:
            host, port = parse_listen(r.text("/console/listen", ""))
        except ValueError:
            r.wrong("/console/listen", r.get("/console/listen"), "HOST:PORT (port 0-65535)")
    lifetime = r.number("/console/session_lifetime", DEFAULT_LIFETIME, minimum=60.0)
    return ConsoleConfig(host=host, port=port, users=_users(r), session_lifetime=lifetime)


def _users(r: Reader) -> dict[str, ConsoleUser]:
    users: dict[str, ConsoleUser] = {}
    for name in r.mapping("/console/users"):
        ptr = child("/console/users", name)
        if not r.section(ptr, _USER_KEYS):
            if r.get(ptr) is MISSING:
                r.problem(ptr, f"console.users.{name} needs role and password_hash", at_key=True)
            continue
        role = r.choice(f"{ptr}/role", "viewer", ROLES)
        stored = r.text(f"{ptr}/password_hash", "")
        if r.get(f"{ptr}/role") is MISSING:
            r.problem(ptr, f"console.users.{name} needs a role ({', '.join(ROLES)})", at_key=True)
        if not stored:
            r.problem(ptr, f"console.users.{name} needs a password_hash (`ivr console "
                           "hash-password`; a password is never written here)", at_key=True)
            continue
        try:
            parse_hash(stored)
        except ValueError as exc:
            # Never echo the value: a password written here by mistake would be printed.
            r.problem(f"{ptr}/password_hash", f"console.users.{name}.password_hash: {exc}")
            continue
        users[str(name)] = ConsoleUser(str(name), role, stored)
    return users
