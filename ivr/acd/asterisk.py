"""Queues Asterisk owns (docs/ASTERISK.md): ``acd.asterisk`` (its manager interface) and a
queue's ``asterisk:`` (where a caller is redirected), as read from ivr.yaml.

Every value that goes into an AMI action is checked here against a narrow pattern, so nothing in
ivr.yaml can add a line to an action.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ivr.configread import MISSING, Reader

MANAGER_KEYS = ("host", "port", "username", "secret", "auth", "header")
QUEUE_KEYS = ("queue", "context", "extension", "priority")
AUTHS = ("md5", "plain")
DEFAULT_HEADER = "X-Asterisk-Channel"
_HOST = re.compile(r"[A-Za-z0-9.:_-]{1,253}")
_USER = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
_HEADER = re.compile(r"X-[A-Za-z0-9-]{1,60}")
_DIALPLAN = re.compile(r"[A-Za-z0-9_.+*#-]{1,80}")  # an Asterisk context, extension, queue


@dataclass(frozen=True)
class AsteriskManager:
    """How to reach Asterisk's manager (AMI). The secret stays out of ``repr``.

    ``header``: the SIP header of Asterisk's INVITE to us that names the caller's channel
    there (the dialplan adds it; docs/ASTERISK.md).
    """

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    auth: str = "md5"
    header: str = DEFAULT_HEADER


@dataclass(frozen=True)
class AsteriskQueue:
    """A queue of ours that Asterisk runs: the caller is redirected to ``context``,
    ``extension``, ``priority`` (where the dialplan calls ``Queue(queue)``)."""

    queue: str
    context: str
    extension: str
    priority: int = 1


def read_manager(r: Reader, ptr: str, secret: str | None) -> AsteriskManager | None:
    """``acd.asterisk`` (None when absent or broken); ``secret`` is its ``secret`` key, read
    the way agents' passwords are (from the environment, never shown)."""
    if not r.section(ptr, MANAGER_KEYS):
        return None
    before = len(r.problems)
    host = _text(r, f"{ptr}/host", "127.0.0.1", _HOST, "a host name or address")
    username = _text(r, f"{ptr}/username", "", _USER, "an AMI user name")
    if r.get(f"{ptr}/username") is MISSING:
        r.problem(ptr, f"{r.name(ptr)} needs a username (the manager.conf user)", at_key=True)
    if r.get(f"{ptr}/secret") is MISSING:
        r.problem(ptr, f"{r.name(ptr)} needs a secret (secret: \"${{IVR_AMI_SECRET}}\", set in "
                       "the environment)", at_key=True)  # fmt: skip
    manager = AsteriskManager(
        host=host,
        port=r.integer(f"{ptr}/port", 5038, 1, 65535),
        username=username,
        secret=secret or "",
        auth=r.choice(f"{ptr}/auth", "md5", AUTHS),
        header=_text(r, f"{ptr}/header", DEFAULT_HEADER, _HEADER, "a header name X-..."),
    )
    return manager if len(r.problems) == before and secret else None


def read_queue(r: Reader, ptr: str, name: str) -> AsteriskQueue | None:
    """A queue's ``asterisk:`` (None when absent or broken)."""
    if not r.section(ptr, QUEUE_KEYS):
        return None
    before = len(r.problems)
    what = "letters, digits and _ . + * # -"
    queue = AsteriskQueue(
        queue=_text(r, f"{ptr}/queue", name, _DIALPLAN, f"an Asterisk queue name ({what})"),
        context=_text(r, f"{ptr}/context", "", _DIALPLAN, f"a dialplan context ({what})"),
        extension=_text(r, f"{ptr}/extension", "", _DIALPLAN, f"an extension ({what})"),
        priority=r.integer(f"{ptr}/priority", 1, 1, 10_000),
    )
    for key in ("context", "extension"):
        if r.get(f"{ptr}/{key}") is MISSING:
            r.problem(ptr, f"{r.name(ptr)} needs a {key} to redirect the caller into",
                      at_key=True)  # fmt: skip
    return queue if len(r.problems) == before else None


def _text(r: Reader, ptr: str, default: str, pattern: re.Pattern[str], what: str) -> str:
    value = r.text(ptr, default)
    if r.get(ptr) is not MISSING and not pattern.fullmatch(value):
        r.wrong(ptr, r.get(ptr), what)
        return default
    return value
