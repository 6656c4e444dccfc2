"""The console's JSON refusals, and the one check every supervisor's action makes first.

The agent actions (ivr/console/app.py) and moving a caller (ivr/console/queuecontrol.py) are
guarded alike: a session, its CSRF token in ``X-CSRF-Token``, the supervisor role. Keeping the
check in one place keeps the two from drifting apart (docs/CONSOLE.md, "Who may do what").
"""

from __future__ import annotations

from aiohttp import web

from ivr.console.auth import Session, Sessions

__all__ = ["as_supervisor", "refuse"]


def refuse(status: int, reason: str) -> web.Response:
    """A JSON ``{"error": reason}`` answer with ``status``."""
    return web.json_response({"error": reason}, status=status)


def as_supervisor(session: Session | None, request: web.Request) -> Session | web.Response:
    """``session`` if it may take a supervisor's action, else the refusal to answer with.

    Args:
        session: the request's session (None: none), looked up by the caller's own means.
        request: the request, for its ``X-CSRF-Token`` header.
    """
    if session is None:
        return refuse(401, "log in first")
    if not Sessions.csrf_ok(session, request.headers.get("X-CSRF-Token")):
        return refuse(403, "missing or wrong CSRF token")
    if not session.user.may("supervisor"):
        return refuse(403, "a supervisor's action")
    return session
