"""The console's HTTP routes (aiohttp): login, wallboard, live updates, agent actions, health
and metrics.

Who may do what:

* ``/healthz`` and ``/metrics`` are open (a load balancer and Prometheus scrape them; they
  carry counts, never a caller's number, a secret or a PIN);
* everything else needs a session (a cookie from ``POST /login``; HttpOnly, SameSite=Strict)
  or, when ivr.yaml names no users (the console then listens on loopback only), is open to
  viewers; without a session an API call is 401 and a page goes to the login;
* a state-changing request (``POST``) must carry the session's CSRF token in the
  ``X-CSRF-Token`` header and, when the browser sends an ``Origin``, come from this origin; an
  agent action needs the supervisor role (a viewer gets 403).

Every body is bounded (aiohttp's ``client_max_size``), every page sends a strict
Content-Security-Policy (scripts from this origin only: the console works offline, no CDN).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from ivr.acd import wire
from ivr.console import queuecontrol
from ivr.console import reports as report_pages
from ivr.console.auth import COOKIE, Session, Sessions
from ivr.console.exposition import metrics_text
from ivr.console.refusal import as_supervisor, refuse
from ivr.console.source import AcdUnavailable, ConsoleSource
from ivr.consoleconf import ConsoleConfig, ConsoleUser

log = logging.getLogger("ivr.console")

MAX_BODY = 16 * 1024  # bytes of any request body
PUSH_EVERY = 1.0  # seconds between wallboard updates
MAX_WATCHERS = 64  # live wallboards at once
AGENT_ACTIONS = ("login", "logout", "pause", "resume")
MAX_REASON = 100
STATIC = ("wallboard.html", "login.html", "console.css", "wallboard.js", "reports.css",
          "flowmap.js", "explore.css", "livecalls.js")  # the last three: ivr/console/views.py
_TYPES = {"html": "text/html", "css": "text/css", "js": "text/javascript"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer makes a browser send "Origin: null"
    "Cache-Control": "no-store",
}
_OPEN = Session(ConsoleUser("viewer", "viewer", ""), float("inf"))  # no users configured

SESSION_KEY: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
SOURCE_KEY: web.AppKey[ConsoleSource] = web.AppKey("source", ConsoleSource)
WATCHERS_KEY: web.AppKey[set[object]] = web.AppKey("watchers", set)


def make_app(config: ConsoleConfig, source: ConsoleSource) -> web.Application:
    """The console's application."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_security])
    app[SESSION_KEY] = Sessions(config)
    app[SOURCE_KEY] = source
    app[WATCHERS_KEY] = set()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", wallboard)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/events", events)
    app.router.add_post("/api/agents/{agent}/{action}", agent_action)
    from ivr.console import views  # here: views uses this module's session helpers

    views.add_routes(app)  # the flow heat map and the calls' timelines
    app.router.add_routes(report_pages.routes(source.config, _session))  # docs/REPORTS.md
    app.router.add_routes(queuecontrol.routes(source, _session))  # moving callers
    return app


@web.middleware
async def _security(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        response: web.StreamResponse = refuse(403, "cross-site request refused")
    else:
        response = await handler(request)
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _same_origin(request: web.Request) -> bool:
    """No Origin (not a browser, or a same-origin GET-like form) or this very origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.host}"


def _session(request: web.Request) -> Session | None:
    sessions = request.app[SESSION_KEY]
    if not sessions.config.users:
        return _OPEN
    return sessions.get(request.cookies.get(COOKIE))


# --- health and metrics ---------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    ready, body = request.app[SOURCE_KEY].health()
    return web.json_response({**body, "ready": ready}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    source = request.app[SOURCE_KEY]
    agents, queues = await source.status()
    body = metrics_text(source.registry, agents, queues)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# --- login ----------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    page = _file("login.html")
    if "failed" in request.query and isinstance(page.body, bytes):
        page.body = page.body.replace(b"<!--failed-->",
                                      b'<p class="error">Wrong name or password.</p>')
    return page


async def login(request: web.Request) -> web.StreamResponse:
    sessions = request.app[SESSION_KEY]
    form = await request.post()
    name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))
    result = await asyncio.to_thread(sessions.login, name, password, request.remote or "?")
    if result == "rate":
        return refuse(429, "too many failed logins: wait a minute")
    if isinstance(result, str):
        log.warning("call -: console: failed login for %r from %s", name, request.remote)
        raise web.HTTPSeeOther("/login?failed=1")
    token, session = result
    log.info("call -: console: %s (%s) logged in", session.user.name, session.user.role)
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                        max_age=int(sessions.config.session_lifetime))  # fmt: skip
    raise response


async def logout(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None or not Sessions.csrf_ok(session, request.headers.get("X-CSRF-Token")):
        return refuse(403, "no session or no CSRF token")
    request.app[SESSION_KEY].logout(request.cookies.get(COOKIE))
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


# --- pages ------------------------------------------------------------------------------------


def _file(name: str) -> web.Response:
    body = resources.files("ivr.console").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=_TYPES[name.rsplit(".", 1)[1]])


async def wallboard(request: web.Request) -> web.StreamResponse:
    if _session(request) is None:
        raise web.HTTPSeeOther("/login")
    return _file("wallboard.html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in STATIC:  # a fixed list: no path from the request reaches the disk
        raise web.HTTPNotFound()
    return _file(name)


# --- the API ----------------------------------------------------------------------------------


async def me(request: web.Request) -> web.Response:
    session = _session(request)
    if session is None:
        return refuse(401, "log in first")
    return web.json_response({"user": session.user.name, "role": session.user.role,
                              "csrf": session.csrf, "logged_in": session is not _OPEN,
                              "may_control": session.user.may("supervisor")})  # fmt: skip


async def snapshot(request: web.Request) -> web.Response:
    if _session(request) is None:
        return refuse(401, "log in first")
    return web.json_response(await request.app[SOURCE_KEY].snapshot())


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: the wallboard's snapshot every :data:`PUSH_EVERY` seconds, while the
    session lasts."""
    session = _session(request)
    if session is None:
        return refuse(401, "log in first")
    watchers = request.app[WATCHERS_KEY]
    if len(watchers) >= MAX_WATCHERS:
        return refuse(503, "too many live wallboards")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})  # fmt: skip
    await response.prepare(request)
    token = object()
    watchers.add(token)
    source = request.app[SOURCE_KEY]
    try:
        # The session is looked up again each time: a log-out or an expiry ends the stream.
        while _session(request) is session and time.monotonic() < session.expires:
            data = json.dumps(await source.snapshot(), separators=(",", ":"))
            await response.write(f"data: {data}\n\n".encode())
            await asyncio.sleep(PUSH_EVERY)
        await response.write(b"event: expired\ndata: {}\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        watchers.discard(token)
    return response


async def agent_action(request: web.Request) -> web.Response:
    session = as_supervisor(_session(request), request)
    if isinstance(session, web.Response):
        return session
    action, agent = request.match_info["action"], request.match_info["agent"][:64]
    if action not in AGENT_ACTIONS:
        return refuse(404, f"no action {action[:20]!r}")
    reason = ""
    if request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            return refuse(400, "the body must be JSON")
        reason = str(body.get("reason", ""))[:MAX_REASON] if isinstance(body, dict) else ""
    try:
        answer = await request.app[SOURCE_KEY].acd(
            wire.message("agents", action=action, agent=agent, reason=reason))
    except AcdUnavailable as exc:
        return refuse(503, str(exc))
    log.info("call -: console: %s: agent %s %s", session.user.name, agent, action)
    if answer.get("op") == "error":
        return refuse(409, str(answer.get("error", "refused")))
    return web.json_response({"agent": answer.get("agent"), "changed": answer.get("changed")})
