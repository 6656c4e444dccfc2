"""A small stand-in for the bank's core system, for the demo flow and its call scripts.

JSON over HTTP on 127.0.0.1 (``ivr demo-api``, or :func:`start_background` in tests):

========================  ==========================================================
``POST /verify``          ``{account, pin}`` -> ``{ok, customer: {name, segment}}``;
                          wrong PIN -> 200 ``{"error": "bad_pin"}``; unknown account -> 404
``POST /balance``         ``{account}`` -> ``{available: "1024.00", currency: "CNY"}``
``POST /card/block``      ``{account, card_last4}`` -> ``{blocked: true, reference}``;
                          a card the customer does not hold -> 200 ``{"error": "unknown_card"}``
``POST /loan/repay``      ``{account, amount}`` -> ``{ok, reference, remaining}``;
                          more than outstanding -> 200 ``{"error": "amount_too_high"}``
``GET /health``           ``{ok: true}``
========================  ==========================================================

Some accounts misbehave on purpose so that a flow's ``on_error`` paths can be tested against a
real service: :data:`FAILING` answers 500 to everything after ``/verify``, :data:`SLOW` makes
``/balance`` sleep :data:`SLOW_SECONDS` (longer than the flow's timeout), :data:`BROKEN` makes
``/balance`` answer an HTML page instead of JSON, and :data:`VERIFY_DOWN` gets 503 from
``/verify``. Nothing is persisted: every call sees the same balances and loans, so call scripts
do not depend on the order they run in. Request bodies are never logged (they carry PINs).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("ivr.demo.bank_api")

DEFAULT_PORT = 8765
SLOW_SECONDS = 4.0  # the flow's balance webhook gives up after 2 s
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Customer:
    """One demo account holder (16-digit, Luhn-valid account numbers starting 6222)."""

    name: str
    pin: str
    segment: str  # retail | small_business | corporate
    available: str
    cards: tuple[str, ...]  # last four digits of the customer's cards
    loan_outstanding: str


RETAIL = "6222021000000013"
SMALL_BUSINESS = "6222021000000021"
CORPORATE = "6222021000000039"
FAILING = "6222021000000096"
SLOW = "6222021000000088"
BROKEN = "6222021000000070"
VERIFY_DOWN = "6222021000000062"
UNKNOWN = "6222021999999993"  # Luhn-valid, but no such customer

CUSTOMERS: dict[str, Customer] = {
    RETAIL: Customer("Li Wei", "123456", "retail", "1024.00", ("4321",), "5000.00"),
    SMALL_BUSINESS: Customer(
        "Chen Jing", "246810", "small_business", "58210.50", ("8765",), "120000.00"
    ),
    CORPORATE: Customer("Wang Fang", "135790", "corporate", "2500000.00", ("1111",), "0.00"),
    FAILING: Customer("Zhao Lei", "111111", "retail", "10.00", ("2222",), "300.00"),
    SLOW: Customer("Sun Li", "222222", "retail", "20.00", ("3333",), "300.00"),
    BROKEN: Customer("Zhou Min", "333333", "retail", "30.00", ("4444",), "300.00"),
    VERIFY_DOWN: Customer("Wu Gang", "444444", "retail", "40.00", ("5555",), "300.00"),
}


class ApiError(Exception):
    """An answer other than 200: status and JSON body."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


Reply = tuple[int, Any]


def _customer(body: dict[str, Any]) -> tuple[str, Customer]:
    account = str(body.get("account") or "")
    if not account:
        raise ApiError(HTTPStatus.BAD_REQUEST, "missing_account")
    customer = CUSTOMERS.get(account)
    if customer is None:
        raise ApiError(HTTPStatus.NOT_FOUND, "unknown_account")
    return account, customer


def _reference(*parts: str) -> str:
    """A stable eight-digit reference (the same request always gets the same one)."""
    return f"{zlib.crc32(':'.join(parts).encode()) % 100_000_000:08d}"


def verify(body: dict[str, Any]) -> Reply:
    account, customer = _customer(body)
    if account == VERIFY_DOWN:
        raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "maintenance")
    if not hmac.compare_digest(str(body.get("pin") or ""), customer.pin):
        return 200, {"error": "bad_pin"}
    return 200, {"ok": True, "customer": {"name": customer.name, "segment": customer.segment}}


def _misbehave(account: str, endpoint: str) -> Reply | None:
    if account == FAILING:
        raise ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "internal")
    if endpoint == "balance" and account == SLOW:
        time.sleep(SLOW_SECONDS)
    if endpoint == "balance" and account == BROKEN:
        return 200, b"<html><body>Gateway says hello</body></html>"
    return None


def balance(body: dict[str, Any]) -> Reply:
    account, customer = _customer(body)
    odd = _misbehave(account, "balance")
    if odd is not None:
        return odd
    return 200, {"available": customer.available, "currency": "CNY"}


def block_card(body: dict[str, Any]) -> Reply:
    account, customer = _customer(body)
    _misbehave(account, "card")
    last4 = str(body.get("card_last4") or "")
    if last4 not in customer.cards:
        return 200, {"error": "unknown_card"}
    return 200, {"blocked": True, "reference": _reference("block", account, last4)}


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_amount") from None
    if not amount.is_finite() or amount <= 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_amount")
    return amount.quantize(Decimal("0.01"))


def repay_loan(body: dict[str, Any]) -> Reply:
    account, customer = _customer(body)
    _misbehave(account, "loan")
    amount = _amount(body.get("amount"))
    outstanding = Decimal(customer.loan_outstanding)
    if amount > outstanding:
        return 200, {"error": "amount_too_high", "outstanding": customer.loan_outstanding}
    return 200, {
        "ok": True,
        "reference": _reference("repay", account, str(amount)),
        "remaining": str(outstanding - amount),
    }


ROUTES: dict[tuple[str, str], Callable[[dict[str, Any]], Reply]] = {
    ("POST", "/verify"): verify,
    ("POST", "/balance"): balance,
    ("POST", "/card/block"): block_card,
    ("POST", "/loan/repay"): repay_loan,
    ("GET", "/health"): lambda body: (200, {"ok": True}),
}


class BankHandler(BaseHTTPRequestHandler):
    """Dispatches to :data:`ROUTES`; every answer is JSON unless an account says otherwise."""

    server_version = "demo-bank/1.0"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        route = ROUTES.get((method, path))
        try:
            if route is None:
                known = any(p == path for _, p in ROUTES)
                raise ApiError(
                    HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND,
                    "method_not_allowed" if known else "not_found",
                )
            status, payload = route(self._body() if method == "POST" else {})
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.error}
        self._send(status, payload)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_json") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid_json")
        return body

    def _send(self, status: int, payload: Any) -> None:
        if isinstance(payload, bytes):
            data, kind = payload, "text/html; charset=utf-8"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except ConnectionError:
            pass  # the client gave up (a webhook timeout): nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        # Method, path and status only: bodies carry PINs and are never logged.
        log.debug("%s %s", self.address_string(), format % args)


class BankServer(ThreadingHTTPServer):
    """The demo service; ``url`` is where it listens."""

    daemon_threads = True
    block_on_close = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("demo bank API: request from %s failed", client_address, exc_info=True)


def make_server(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> BankServer:
    """Bind the service (``port=0``: any free port) without serving yet."""
    return BankServer((host, port), BankHandler)


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve in the foreground until interrupted (Ctrl-C)."""
    with make_server(host, port) as server:
        log.info("demo bank API on %s", server.url)
        server.serve_forever()


def start_background(port: int = 0, host: str = "127.0.0.1") -> tuple[BankServer, str]:
    """Serve in a daemon thread; returns the server (``.shutdown()`` stops it) and its URL."""
    server = make_server(host, port)
    thread = threading.Thread(target=server.serve_forever, name="demo-bank-api", daemon=True)
    thread.start()
    return server, server.url


def stop(server: BankServer) -> None:
    """Stop a server from :func:`start_background` and free its port."""
    server.shutdown()
    server.server_close()


@contextmanager
def running(port: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """``with running() as url:`` the service runs in the background for the block."""
    server, url = start_background(port, host)
    try:
        yield url
    finally:
        stop(server)
