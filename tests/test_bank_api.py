"""The demo bank API over real HTTP on a free port, and ``ivr demo-api``."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from ivr.cli.main import main
from ivr.demo import bank_api as demo


def call(url: str, path: str, body: Any = None, method: str | None = None) -> tuple[int, Any]:
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data, method=method or ("POST" if data else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            raw, status, kind = reply.read(), reply.status, reply.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers["Content-Type"]
    return status, json.loads(raw) if kind == "application/json" else raw.decode()


def test_health(bank_api: str) -> None:
    assert call(bank_api, "/health") == (200, {"ok": True})


@pytest.mark.parametrize(
    ("account", "segment"),
    [(demo.RETAIL, "retail"), (demo.SMALL_BUSINESS, "small_business"),
     (demo.CORPORATE, "corporate")],
)
def test_verify_good_pin(bank_api: str, account: str, segment: str) -> None:
    pin = demo.CUSTOMERS[account].pin
    status, body = call(bank_api, "/verify", {"account": account, "pin": pin})
    assert status == 200
    assert body == {"ok": True, "customer": {"name": demo.CUSTOMERS[account].name,
                                             "segment": segment}}


def test_verify_wrong_pin_is_200_with_error(bank_api: str) -> None:
    assert call(bank_api, "/verify", {"account": demo.RETAIL, "pin": "000000"}) == (
        200, {"error": "bad_pin"})


def test_verify_unknown_account_is_404(bank_api: str) -> None:
    assert call(bank_api, "/verify", {"account": demo.UNKNOWN, "pin": "123456"}) == (
        404, {"error": "unknown_account"})


def test_verify_down_account_is_503(bank_api: str) -> None:
    pin = demo.CUSTOMERS[demo.VERIFY_DOWN].pin
    status, _ = call(bank_api, "/verify", {"account": demo.VERIFY_DOWN, "pin": pin})
    assert status == 503


def test_balance(bank_api: str) -> None:
    assert call(bank_api, "/balance", {"account": demo.RETAIL}) == (
        200, {"available": "1024.00", "currency": "CNY"})


def test_failing_account_gets_500_everywhere_after_verify(bank_api: str) -> None:
    for path, extra in [("/balance", {}), ("/card/block", {"card_last4": "2222"}),
                        ("/loan/repay", {"amount": "10"})]:
        status, body = call(bank_api, path, {"account": demo.FAILING, **extra})
        assert (status, body) == (500, {"error": "internal"}), path
    pin = demo.CUSTOMERS[demo.FAILING].pin
    assert call(bank_api, "/verify", {"account": demo.FAILING, "pin": pin})[0] == 200


def test_broken_account_balance_is_not_json(bank_api: str) -> None:
    status, body = call(bank_api, "/balance", {"account": demo.BROKEN})
    assert status == 200
    assert body.startswith("<html>")


def test_slow_account_balance_answers_after_sleeping(
    bank_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "SLOW_SECONDS", 0.05)
    assert call(bank_api, "/balance", {"account": demo.SLOW}) == (
        200, {"available": "20.00", "currency": "CNY"})


def test_block_card_gives_a_stable_eight_digit_reference(bank_api: str) -> None:
    body = {"account": demo.RETAIL, "card_last4": "4321"}
    status, first = call(bank_api, "/card/block", body)
    assert status == 200 and first["blocked"] is True
    assert len(first["reference"]) == 8 and first["reference"].isdigit()
    assert call(bank_api, "/card/block", body)[1] == first


def test_block_unknown_card(bank_api: str) -> None:
    assert call(bank_api, "/card/block", {"account": demo.RETAIL, "card_last4": "9999"}) == (
        200, {"error": "unknown_card"})


def test_loan_repay(bank_api: str) -> None:
    status, body = call(bank_api, "/loan/repay", {"account": demo.RETAIL, "amount": "500.00"})
    assert status == 200
    assert body["ok"] is True and body["remaining"] == "4500.00"
    assert len(body["reference"]) == 8
    # nothing is persisted: the next call sees the same loan
    assert call(bank_api, "/loan/repay", {"account": demo.RETAIL, "amount": 500})[1] == body


def test_loan_repay_more_than_outstanding(bank_api: str) -> None:
    status, body = call(bank_api, "/loan/repay", {"account": demo.RETAIL, "amount": "5000.01"})
    assert (status, body) == (200, {"error": "amount_too_high", "outstanding": "5000.00"})


@pytest.mark.parametrize("amount", ["-1", "0", "abc", None, "NaN"])
def test_loan_repay_bad_amount(bank_api: str, amount: Any) -> None:
    assert call(bank_api, "/loan/repay", {"account": demo.RETAIL, "amount": amount}) == (
        400, {"error": "bad_amount"})


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("POST", "/nope", {}, 404, "not_found"),
        ("GET", "/verify", None, 405, "method_not_allowed"),
        ("POST", "/verify", b"{not json", 400, "invalid_json"),
        ("POST", "/verify", b"[1]", 400, "invalid_json"),
        ("POST", "/balance", {}, 400, "missing_account"),
    ],
)
def test_bad_requests(
    bank_api: str, method: str, path: str, body: Any, status: int, error: str
) -> None:
    assert call(bank_api, path, body, method) == (status, {"error": error})


def test_test_accounts_are_luhn_valid() -> None:
    from ivr.engine.validators import luhn_ok

    for account in [*demo.CUSTOMERS, demo.UNKNOWN]:
        assert len(account) == 16 and account.startswith("6222") and luhn_ok(account), account


def test_running_context_manager_frees_the_port() -> None:
    with demo.running() as url:
        assert call(url, "/health")[0] == 200
        port = int(url.rsplit(":", 1)[1])
    with demo.running(port) as again:  # the port is free again
        assert call(again, "/health")[0] == 200


def test_demo_api_command_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["demo-api", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
