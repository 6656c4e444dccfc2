"""Console logins (ivr/console/auth.py) and the refusal of an open console without users."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from ivr.cli.main import main
from ivr.console import auth
from ivr.console.auth import Sessions
from ivr.console.server import ConsoleError, check_safe
from ivr.consoleconf import ConsoleConfig, ConsoleUser, hash_password

SUE = ConsoleUser("sue", "supervisor", hash_password("sue-password"))


def sessions(lifetime: float = 600.0) -> Sessions:
    return Sessions(ConsoleConfig(users={"sue": SUE}, session_lifetime=lifetime))


def test_a_login_makes_a_session_with_its_own_csrf_token() -> None:
    table = sessions()
    first, second = table.login("sue", "sue-password", "a"), table.login("sue", "sue-password", "a")
    assert not isinstance(first, str) and not isinstance(second, str)
    (token, session), (token2, session2) = first, second
    assert token != token2 and session.csrf != session2.csrf and len(token) >= 40
    assert table.get(token) is session and session.user.name == "sue"
    assert Sessions.csrf_ok(session, session.csrf)
    assert not Sessions.csrf_ok(session, session2.csrf) and not Sessions.csrf_ok(session, None)
    table.logout(token)
    assert table.get(token) is None and table.get(token2) is session2
    assert table.get("x" * 5000) is None


def test_a_session_expires() -> None:
    table = sessions(lifetime=0.0)
    result = table.login("sue", "sue-password", "a")
    assert not isinstance(result, str)
    assert table.get(result[0]) is None


def test_wrong_passwords_and_unknown_names_are_refused_then_rate_limited() -> None:
    table = sessions()
    assert table.login("sue", "nope", "a") == "bad"
    assert table.login("nobody", "sue-password", "a") == "bad"
    for _ in range(auth.LOGIN_FAILURES):
        table.login("sue", "nope", "b")
    assert table.login("sue", "sue-password", "b") == "rate"  # even the right password waits
    assert table.login("sue", "sue-password", "c") != "rate"  # another address is not held up
    for n in range(auth.ADDRESS_FAILURES):  # a spray of names from one address
        table.login(f"name{n}", "x", "d")
    assert table.login("sue", "sue-password", "d") == "rate"


def test_sessions_and_tracked_addresses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_SESSIONS", 3)
    monkeypatch.setattr(auth, "MAX_CLIENTS", 5)
    table = sessions()
    tokens = []
    for _ in range(5):
        result = table.login("sue", "sue-password", "a")
        assert not isinstance(result, str)
        tokens.append(result[0])
    assert [table.get(t) is not None for t in tokens] == [False, False, True, True, True]
    for n in range(50):
        table.login("sue", "nope", f"10.0.0.{n}")
    assert len(table.per_address._failures) <= 5


def test_an_open_address_needs_users() -> None:
    check_safe(ConsoleConfig())  # loopback, no users: fine
    check_safe(ConsoleConfig(host="0.0.0.0", users={"sue": SUE}))
    with pytest.raises(ConsoleError, match="not a loopback address"):
        check_safe(ConsoleConfig(host="0.0.0.0"))


def test_ivr_serve_refuses_an_open_console_without_users(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sip_port = sock.getsockname()[1]
    (tmp_path / "flows").mkdir()
    (tmp_path / "ivr.yaml").write_text(yaml.safe_dump({
        "sip": {"listen": f"127.0.0.1:{sip_port}"}, "asr": {"backend": "off"},
        "console": {"listen": "0.0.0.0:8089"}}), encoding="utf-8")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--no-build"]) == 1
    err = capsys.readouterr().err
    assert "the console cannot start: console.listen 0.0.0.0:8089 is not a loopback" in err
