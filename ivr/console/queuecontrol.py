"""The console's queue page: the callers waiting, and a supervisor's "move a caller" (to another
queue, or to the head of theirs) through the machine's queue authority (docs/ACD.md, "Moving a
caller"), over its control socket like the agent actions.

Who may do what, as for the agent actions (ivr/console/app.py): the list needs a session (a
viewer sees it without the controls); a move needs the supervisor role, the session's CSRF token
in ``X-CSRF-Token`` and, when the browser sends ``Origin``, this origin (the app's middleware
refuses a cross-site post before it gets here). The list carries the call id, queue, position,
wait, priority and whether an agent rings: never the caller's number or anything they keyed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from ivr.acd import wire
from ivr.console.auth import Session
from ivr.console.refusal import as_supervisor, refuse
from ivr.console.source import AcdUnavailable, ConsoleSource

log = logging.getLogger("ivr.console")

MAX_CALL_ID = 200  # characters of a call id in a request (SIP Call-IDs are rarely past 100)
STATIC = ("queues.html", "queues.js")

SessionOf = Callable[[web.Request], Session | None]


class QueueControl:
    """The queue page's routes (added to the console's app by :func:`routes`)."""

    def __init__(self, source: ConsoleSource, session_of: SessionOf) -> None:
        self.source = source
        self.session_of = session_of

    async def page(self, request: web.Request) -> web.StreamResponse:
        if self.session_of(request) is None:
            raise web.HTTPSeeOther("/login")
        body = resources.files("ivr.console").joinpath("static", "queues.html").read_bytes()
        return web.Response(body=body, content_type="text/html")

    async def callers(self, request: web.Request) -> web.Response:
        """The callers waiting (served first first) and the queues' names."""
        if self.session_of(request) is None:
            return refuse(401, "log in first")
        try:
            answer = await self.source.acd(wire.message("callers"))
        except AcdUnavailable as exc:
            return refuse(503, str(exc))
        config = self.source.config.acd
        # Asterisk's queues are not the authority's: nobody is moved there from here.
        queues = sorted(q.name for q in config.queues if q.name not in config.asterisk_queues
                        ) if config is not None else []  # fmt: skip
        return web.json_response({"callers": [_public(c) for c in answer.get("callers", [])],
                                  "queues": queues})  # fmt: skip

    async def move(self, request: web.Request) -> web.Response:
        """``POST /api/callers/{call_id}/move`` with ``{"queue": name or null, "head": bool}``."""
        session = as_supervisor(self.session_of(request), request)
        if isinstance(session, web.Response):
            return session
        call_id = request.match_info["call_id"]
        try:
            body = await request.json()
        except ValueError:
            return refuse(400, "the body must be JSON")
        if not isinstance(body, dict) or len(call_id) > MAX_CALL_ID:
            return refuse(400, "the body must be a JSON object; a call id is not that long")
        queue, head = body.get("queue"), body.get("head", False)
        if not (queue is None or (isinstance(queue, str) and 0 < len(queue) <= 64)) \
                or not isinstance(head, bool) or (queue is None and not head):
            return refuse(400, "move: queue (a name) and/or head (true)")
        try:
            answer = await self.source.acd(
                wire.message("move", call_id=call_id, queue=queue, head=head))
        except AcdUnavailable as exc:
            return refuse(503, str(exc))
        if answer.get("op") == "error":
            return refuse(409, str(answer.get("error", "refused")))
        log.info("call %s: console: %s moved the caller: %s -> %s%s", call_id[:80],
                 session.user.name, answer.get("from"), answer.get("queue"),
                 " (head)" if head else "")  # fmt: skip
        return web.json_response({"call_id": answer.get("call_id"), "queue": answer.get("queue"),
                                  "from": answer.get("from"),
                                  "position": answer.get("position")})  # fmt: skip

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:  # a fixed list: no path from the request reaches the disk
            raise web.HTTPNotFound()
        body = resources.files("ivr.console").joinpath("static", name).read_bytes()
        kind = "text/javascript" if name.endswith(".js") else "text/html"
        return web.Response(body=body, content_type=kind)


def _public(caller: Any) -> dict[str, Any]:
    """Only the fields a supervisor needs (a newer authority may say more)."""
    fields = ("call_id", "queue", "position", "waited", "priority", "ringing", "callback")
    return {k: caller.get(k) for k in fields} if isinstance(caller, dict) else {}


def routes(source: ConsoleSource, session_of: SessionOf) -> list[web.RouteDef]:
    """The queue page, its script, the callers and the move."""
    control = QueueControl(source, session_of)
    return [web.get("/queues", control.page),
            web.get("/queues/{name}", control.static),
            web.get("/api/callers", control.callers),
            web.post("/api/callers/{call_id}/move", control.move)]  # fmt: skip
