"""Shared pieces of the console's tests: the users' passwords, an HTTP client with its own
cookies, ``ivr serve`` started as a real process and stopped with SIGTERM, and Debian's chromium
driven by Playwright (Playwright's own browser download cannot work offline; tests/debs.py names
a missing package)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from tests.debs import program

PASSWORDS = {"sue": "supervisor-pass-1", "vic": "viewer-pass-1"}


@dataclass
class Console:
    """A running ``ivr serve`` with its console: its folder, config, console URL and SIP port."""

    root: Path
    config: Path
    base: str
    sip_port: int
    proc: subprocess.Popen[bytes]


class Client:
    """A urllib client with its own cookies."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def send(self, path: str, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
        """GET ``path`` (POST with ``data``): the status and the body, errors included."""
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def sign_in(self, name: str, password: str | None = None) -> tuple[int, bytes]:
        """Post the login form (``password`` defaults to the user's in :data:`PASSWORDS`)."""
        password = PASSWORDS[name] if password is None else password
        return self.send("/login", urllib.parse.urlencode({"name": name,
                                                           "password": password}).encode())

    def login(self, name: str) -> dict[str, Any]:
        """Log in to the wallboard as ``name``: ``/api/me`` (with the CSRF token)."""
        status, body = self.sign_in(name)
        assert status == 200 and b"ivr wallboard" in body, (status, body[:200])
        status, body = self.send("/api/me")
        assert status == 200
        me: dict[str, Any] = json.loads(body)
        return me

    def post(self, path: str, data: bytes, csrf: str | None,
             origin: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """POST JSON ``data``, with the CSRF token and ``Origin`` when given: the JSON answer."""
        headers = {"Content-Type": "application/json"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        if origin is not None:
            headers["Origin"] = origin
        status, body = self.send(path, data, headers)
        return status, json.loads(body)

    def act(self, agent: str, action: str, csrf: str | None,
            origin: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """An agent action (see :meth:`post`)."""
        return self.post(f"/api/agents/{agent}/{action}", b"{}", csrf, origin)


def start_serve(config: Path, cwd: Path, *options: str,
                workers: int = 0) -> subprocess.Popen[bytes]:  # fmt: skip
    """``ivr -c CONFIG OPTIONS... serve [--workers N]`` in ``cwd``, once its first two lines say
    the console listens and SIP is answered (or the workers run); stopped again if they do not.
    """
    command = [sys.executable, "-m", "ivr", "-c", str(config), *options, "serve"]
    if workers:
        command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert b"console on http://127.0.0.1" in lines[0], lines
        up = f"with {workers} worker processes".encode() if workers else b"answering SIP"
        assert up in lines[1], lines
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the drain), then kill if it is not gone in 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def playwright() -> Any:
    """Playwright, to use as ``with playwright() as pw``; a missing package fails the test,
    naming it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing (setup.cfg dev: make installs it)")
    return sync_playwright()


def chromium(pw: Any) -> Any:
    """Debian's chromium, headless, launched by Playwright ``pw``."""
    path = program("chromium", "chromium")  # Playwright's own browser download cannot work
    # --no-sandbox: the tests may run as root, where chromium's sandbox refuses to start
    return pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])


def browser_login(page: Any, name: str, password: str) -> None:
    """Fill and send the login form the browser ``page`` shows."""
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
