"""Self-service actions: webhooks (JSON over HTTP) and Python functions from the actions path.

:func:`execute` is the blocking core: it renders the request from the call's variables, performs
it and returns an :class:`~ivr.engine.runtime.ActionResult`. Two runners put it behind the
engine's :class:`~ivr.engine.runtime.ActionRunner` protocol:

- :class:`InlineActionRunner` runs it at once on the caller's thread (the simulator: a virtual
  clock has no other thread to wait for);
- :class:`ThreadActionRunner` runs it in a thread pool and hands the result back to the session's
  event loop, so a slow bank system never stalls the other calls.

Error strings are short, fixed phrases (``"timeout after 3s"``, ``"HTTP 500"``, ``"invalid JSON
reply"``): request bodies, headers and query strings can carry a PIN or a token, so neither they
nor exception texts that might quote them (a URL with its query) ever reach an error string. A
Python action's exception message is kept, with every argument value masked out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ivr.core.events import MASK
from ivr.engine.runtime import ActionDone, ActionResult
from ivr.flow.expr import lookup
from ivr.flow.model import ActionNode
from ivr.flow.template import compile_template
from ivr.flow.webhookurl import HostRule, host_allowed, parse_rule, render_url

log = logging.getLogger("ivr.actions")

#: the largest reply read from a webhook; a bank API answer is a few hundred bytes
MAX_REPLY_BYTES = 1 << 20
#: extra time the thread runner waits past ``node.timeout`` before giving up on an action
WATCHDOG_GRACE = 1.0
#: an error text quoted from a reply or an exception is cut to this length
MAX_ERROR_CHARS = 120

_SINGLE_NAME = re.compile(r"^\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}$")
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE"})


# --- rendering ---------------------------------------------------------------------------------


def render_value(raw: Any, scope: Mapping[str, Any]) -> Any:
    """Fill templates in a webhook body, params or action args, recursing into dicts and lists.

    A string that is exactly one variable (``"{amount}"``, ``"{customer.id}"``) keeps the
    variable's JSON type (number, boolean, null, record); every other string is rendered as
    plain text (no say-as formatting).
    """
    if isinstance(raw, str):
        single = _SINGLE_NAME.match(raw)
        if single is not None:
            value = lookup(scope, single.group(1))
            if value is None or isinstance(value, str | int | float | bool | dict | list):
                return value
        return compile_template(raw).render(scope, speak=False)
    if isinstance(raw, Mapping):
        return {str(k): render_value(v, scope) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return [render_value(v, scope) for v in raw]
    return raw


def _text(raw: Any, scope: Mapping[str, Any]) -> str:
    return compile_template(str(raw)).render(scope, speak=False)


def _leaves(value: Any) -> Iterable[str]:
    """Every scalar inside a rendered value, as text (what an error string must not show)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` cut short, with every value of ``secrets`` (3+ characters) masked out."""
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


# --- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _HttpRequest:
    method: str
    url: str
    data: bytes | None
    headers: dict[str, str]
    timeout: float
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class _PythonCall:
    spec: str
    args: dict[str, Any]
    actions_path: Path | None
    secrets: tuple[str, ...] = field(default=())


class _Refused(Exception):
    """The action cannot even be attempted (bad URL scheme, bad template, bad header)."""


def prepare(
    node: ActionNode, scope: Mapping[str, Any], actions_path: Path | None,
    webhook_allow: tuple[HostRule, ...] | None = None,
) -> _HttpRequest | _PythonCall:
    """Render the node's request from ``scope`` (on the session's thread: scope is not shared).

    Args:
        node: the action node.
        scope: the call's variables.
        actions_path: the folder of Python action modules.
        webhook_allow: the hosts webhooks may reach (None: any; no ivr.yaml list).

    Raises:
        _Refused: with a short, secret-free reason.
    """
    if node.webhook is not None:
        return _prepare_webhook(node, scope, webhook_allow)
    if node.python:
        try:
            args = render_value(dict(node.args), scope)
        except Exception as exc:
            raise _Refused(f"bad template in args ({type(exc).__name__})") from None
        return _PythonCall(node.python, args, actions_path, tuple(_leaves(args)))
    if node.acd is not None:  # the host's agent line runs these; here there is no agent queue
        raise _Refused("no agent queue here (acd actions need ivr.yaml acd:)")
    raise _Refused("action has neither webhook nor python")


def _prepare_webhook(node: ActionNode, scope: Mapping[str, Any],
                     webhook_allow: tuple[HostRule, ...] | None) -> _HttpRequest:  # fmt: skip
    hook = node.webhook
    assert hook is not None
    method = hook.method.upper()
    try:
        url = render_url(hook.url, scope).strip()  # values percent-encoded (webhookurl.py)
        params = render_value(hook.params, scope) if hook.params else None
        body = render_value(hook.body, scope) if hook.body is not None else None
        headers = {str(k): _text(v, scope) for k, v in hook.headers.items()}
    except Exception as exc:
        raise _Refused(f"bad template in webhook ({type(exc).__name__})") from None
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise _Refused(f"webhook URL scheme {scheme or 'missing'!r} not allowed (http/https)")
    if webhook_allow is not None and not host_allowed(url, webhook_allow):
        raise _Refused("webhook host not in webhook_allow")  # never the URL: it may hold a PIN
    if any("\r" in v or "\n" in v for v in headers.values()):
        raise _Refused("invalid header value")
    if params:
        query = urllib.parse.urlencode(
            {k: "" if v is None else v for k, v in params.items()}, doseq=True
        )
        url = f"{url}{'&' if '?' in url else '?'}{query}"
    data = None
    if body is not None and method not in _NO_BODY_METHODS:
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    all_headers = {"Accept": "application/json", "User-Agent": "ivr-webhook"}
    if data is not None:
        all_headers["Content-Type"] = "application/json; charset=utf-8"
    all_headers.update(headers)
    secrets = (*_leaves(body), *_leaves(params), *headers.values())
    return _HttpRequest(method, url, data, all_headers, node.timeout, tuple(secrets))


def host_rules(entries: Iterable[str] | None) -> tuple[HostRule, ...] | None:
    """ivr.yaml's ``webhook_allow`` as rules (None stays None: any host); entries that do not
    parse are left out (ivr.yaml's reader refuses them first)."""
    if entries is None:
        return None
    return tuple(rule for rule in map(parse_rule, entries) if rule is not None)


# --- performing --------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: it would resend a PIN to wherever the reply points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies from the environment either: bank traffic goes straight to the configured host.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _call_webhook(req: _HttpRequest) -> tuple[bool, Any, str | None]:
    request = urllib.request.Request(req.url, req.data, req.headers, method=req.method)
    try:
        with _OPENER.open(request, timeout=req.timeout) as reply:
            raw = reply.read(MAX_REPLY_BYTES + 1)
            status = reply.status
    except urllib.error.HTTPError as exc:
        data = _json_or_none(_read_quietly(exc))
        exc.close()
        return False, data, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        return False, None, _network_error(exc.reason, req.timeout)
    except TimeoutError:
        return False, None, f"timeout after {req.timeout:g}s"
    except (OSError, ValueError) as exc:  # reset mid-reply, malformed status line, bad URL
        return False, None, _network_error(exc, req.timeout)
    if len(raw) > MAX_REPLY_BYTES:
        return False, None, "reply too large"
    return _judge_reply(status, raw, req.secrets)


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(MAX_REPLY_BYTES)
    except Exception:
        return b""


def _network_error(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"timeout after {timeout:g}s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host not found"
    if isinstance(reason, ConnectionError):
        return f"connection failed ({type(reason).__name__})"
    # Never str(reason): some exceptions quote the URL, whose query may carry a secret.
    return f"request failed ({type(reason).__name__})"


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # "[[[[..." nests past the stack
        return None


def _judge_reply(status: int, raw: bytes, secrets: Iterable[str]) -> tuple[bool, Any, str | None]:
    if not 200 <= status < 300:
        return False, _json_or_none(raw), f"HTTP {status}"
    if not raw.strip():
        return True, {}, None  # 204 No Content and friends: success with nothing to store
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # too deep is as bad as broken
        return False, None, "invalid JSON reply"
    return _judge_data(data, secrets)


def _judge_data(data: Any, secrets: Iterable[str]) -> tuple[bool, Any, str | None]:
    if isinstance(data, Mapping) and data.get("error"):
        return False, data, scrub(f"error: {data['error']}", secrets)
    return True, data, None


_FUNCTIONS: dict[tuple[str, str], Callable[..., Any]] = {}
_FUNCTIONS_LOCK = threading.Lock()


def load_action(spec: str, actions_path: Path | None) -> Callable[..., Any]:
    """The function ``module:function``, imported once with ``actions_path`` on the import path.

    Raises:
        ImportError, AttributeError, TypeError: the module or function cannot be used.
    """
    key = (str(actions_path), spec)
    with _FUNCTIONS_LOCK:
        func = _FUNCTIONS.get(key)
        if func is not None:
            return func
        module_name, sep, func_name = spec.partition(":")
        if not sep or not module_name or not func_name:
            raise ImportError(f"{spec!r} is not module:function")
        if actions_path is not None and str(actions_path) not in sys.path:
            # Last, for the actions' own imports of siblings: a file there never shadows the
            # standard library or an installed package for the rest of the process.
            sys.path.append(str(actions_path))
        module = _import_from_folder(module_name, actions_path)
        func = getattr(module, func_name)
        if not callable(func):
            raise TypeError(f"{spec} is not a function")
        _FUNCTIONS[key] = func
        return func


def _import_from_folder(module_name: str, actions_path: Path | None) -> ModuleType:
    """The module ``module_name`` loaded from its file in ``actions_path``, never from elsewhere
    on the import path: ``python: os:system`` must not run, and a module of the same name that
    another folder (or the standard library) already put in ``sys.modules`` is not this one.

    Raises:
        ModuleNotFoundError: no such file in ``actions_path`` (or no folder at all).
    """
    refused = ModuleNotFoundError(f"module {module_name!r} is not in the actions folder")
    if actions_path is None:
        raise refused
    folder = actions_path.resolve()
    base = folder.joinpath(*module_name.split("."))
    candidates = (base.with_suffix(".py"), base / "__init__.py")
    path = next((c for c in candidates if c.is_file()), None)
    if path is None or not path.resolve().is_relative_to(folder):
        raise refused
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
    unique = f"ivr_action_{digest}_{module_name.replace('.', '__')}"
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise refused
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # before running it: dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    return module


def _call_python(call: _PythonCall) -> tuple[bool, Any, str | None]:
    try:
        func = load_action(call.spec, call.actions_path)
        data = func(dict(call.args))
    except Exception as exc:
        return False, None, scrub(f"{type(exc).__name__}: {exc}", call.secrets)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        return False, None, f"{call.spec} returned {type(data).__name__}, not a dict"
    return _judge_data(dict(data), call.secrets)


def perform(request: _HttpRequest | _PythonCall) -> tuple[bool, Any, str | None]:
    """Run a prepared request (blocking): ``(ok, data, error)``."""
    if isinstance(request, _HttpRequest):
        return _call_webhook(request)
    return _call_python(request)


def execute(node: ActionNode, scope: Mapping[str, Any], actions_path: Path | None,
            webhook_allow: tuple[HostRule, ...] | None = None) -> ActionResult:  # fmt: skip
    """Run ``node``'s webhook or Python function with variables ``scope`` (blocking).

    Args:
        node: the action node.
        scope: the call's variables (unmasked: a PIN may go to the verify webhook).
        actions_path: the folder of Python action modules (ivr.yaml ``actions_path``).
        webhook_allow: the hosts webhooks may reach (None: any).

    Returns:
        ``ok`` False (the flow takes ``on_error``) on a timeout, a connection error, a non-2xx
        status, a reply that is not JSON, a JSON reply or Python result with a truthy
        ``error``, or an exception in the function; ``data`` keeps any JSON that came back.
    """
    started = time.monotonic()
    try:
        ok, data, error = perform(prepare(node, scope, actions_path, webhook_allow))
    except _Refused as exc:
        ok, data, error = False, None, str(exc)
    duration = time.monotonic() - started
    if not ok:
        log.info("action %s failed after %.3fs: %s", node.id, duration, error)
    return ActionResult(ok=ok, data=data, error=error, duration=duration)


# --- runners -----------------------------------------------------------------------------------


class _Done:
    """The handle of an action that has already finished: nothing left to cancel."""

    def cancel(self) -> None:
        pass


class InlineActionRunner:
    """Runs each action synchronously and calls ``done`` before :meth:`run` returns.

    For the simulator: its virtual clock does not move while the action runs, so a call script
    sees a webhook as instantaneous (a real timeout still costs real seconds).
    """

    def __init__(self, actions_path: Path | None = None,
                 webhook_allow: Iterable[str] | None = None) -> None:  # fmt: skip
        self.actions_path = actions_path
        self.webhook_allow = host_rules(webhook_allow)

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> _Done:
        done(execute(node, scope, self.actions_path, self.webhook_allow))
        return _Done()


class _Pending:
    """An action running in the pool; cancelling it (hang-up) drops the result."""

    def __init__(self, loop: asyncio.AbstractEventLoop, done: ActionDone, started: float) -> None:
        self._loop = loop
        self._done = done
        self._started = started
        self.future: Future[tuple[bool, Any, str | None]] | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        self.finished = False  # only read and written on the loop thread

    def cancel(self) -> None:
        self.finished = True
        if self.future is not None:
            self.future.cancel()  # a request not yet started never runs
        if self.watchdog is not None:
            self.watchdog.cancel()

    def deliver(self, result: ActionResult) -> None:
        """On the loop thread: hand over the first result unless cancelled."""
        if self.finished:
            return
        self.finished = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        self._done(result)

    def from_worker(self, future: Future[tuple[bool, Any, str | None]]) -> None:
        """In the worker thread: post the outcome to the loop."""
        if future.cancelled():
            return
        exc = future.exception()
        outcome: tuple[bool, Any, str | None] = (
            (False, None, f"internal error ({type(exc).__name__})")
            if exc is not None
            else future.result()
        )
        result = ActionResult(*outcome, duration=time.monotonic() - self._started)
        # A closed loop means the call (and the process) are going away: nobody to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self.deliver, result)


class ThreadActionRunner:
    """Runs actions in a thread pool and calls ``done`` on ``loop``'s thread.

    Args:
        loop: the event loop the sessions run on.
        actions_path: the folder of Python action modules.
        max_workers: how many actions may run at once; more wait in line.
        webhook_allow: ivr.yaml's ``webhook_allow`` (None: any host).

    A watchdog on the loop gives up ``WATCHDOG_GRACE`` seconds after ``node.timeout`` (a Python
    function cannot be interrupted, and a socket timeout bounds each read, not the whole reply).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        actions_path: Path | None = None,
        max_workers: int = 16,
        webhook_allow: Iterable[str] | None = None,
    ) -> None:
        self.loop = loop
        self.actions_path = actions_path
        self.webhook_allow = host_rules(webhook_allow)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ivr-action")

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> _Pending:
        started = time.monotonic()
        pending = _Pending(self.loop, done, started)
        try:
            request = prepare(node, scope, self.actions_path, self.webhook_allow)
        except _Refused as exc:
            failed = ActionResult(False, None, str(exc), 0.0)
            self.loop.call_soon(pending.deliver, failed)
            return pending
        limit = node.timeout + WATCHDOG_GRACE
        timeout = ActionResult(False, None, f"timeout after {node.timeout:g}s", limit)
        pending.watchdog = self.loop.call_later(limit, pending.deliver, timeout)
        pending.future = self._pool.submit(perform, request)
        pending.future.add_done_callback(pending.from_worker)
        return pending

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking actions; running ones finish in the background unless ``wait``."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
