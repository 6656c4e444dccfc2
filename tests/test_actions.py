"""ivr.engine.actions against the real demo bank API on a free port, and real Python modules."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from ivr.demo import bank_api as demo
from ivr.engine import actions
from ivr.engine.actions import (
    InlineActionRunner,
    ThreadActionRunner,
    execute,
    render_value,
    scrub,
)
from ivr.engine.runtime import ActionResult
from ivr.flow.model import NOWHERE, ActionNode, Webhook

PIN = "987650"  # a PIN no demo account has, so it only ever appears in request bodies


def hook_node(path: str, body: dict[str, Any] | None = None, **kw: Any) -> ActionNode:
    method = kw.pop("method", "POST")
    params = kw.pop("params", None)
    headers = kw.pop("headers", {})
    webhook = Webhook(
        url="{config.bank_api}" + path, method=method, body=body, params=params, headers=headers
    )
    return ActionNode(id="act", pos=NOWHERE, next="ok", on_error="err", webhook=webhook, **kw)


def py_node(spec: str, args: dict[str, Any], **kw: Any) -> ActionNode:
    return ActionNode(id="py", pos=NOWHERE, next="ok", on_error="err", python=spec, args=args, **kw)


def scope_for(url: str, account: str = demo.RETAIL, pin: str = PIN) -> dict[str, Any]:
    return {"config": {"bank_api": url}, "account": account, "pin": pin, "amount": 250.5}


def closed_port() -> int:
    """A port nobody listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_success_returns_the_json_reply(bank_api: str) -> None:
    node = hook_node("/verify", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(bank_api, pin="123456"), None)
    assert result.ok
    assert result.error is None
    assert result.data == {"ok": True, "customer": {"name": "Li Wei", "segment": "retail"}}
    assert result.duration >= 0


def test_reply_with_error_field_fails_but_keeps_the_reply(bank_api: str) -> None:
    node = hook_node("/verify", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(bank_api), None)
    assert not result.ok
    assert result.error == "error: bad_pin"
    assert result.data == {"error": "bad_pin"}


def test_http_500_takes_on_error(bank_api: str) -> None:
    node = hook_node("/balance", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(bank_api, demo.FAILING), None)
    assert not result.ok
    assert result.error == "HTTP 500"
    assert result.data == {"error": "internal"}


def test_http_404_keeps_the_json_body(bank_api: str) -> None:
    node = hook_node("/verify", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(bank_api, demo.UNKNOWN), None)
    assert (result.ok, result.error) == (False, "HTTP 404")
    assert result.data == {"error": "unknown_account"}


def test_timeout(bank_api: str) -> None:
    node = hook_node("/balance", {"account": "{account}", "pin": "{pin}"}, timeout=0.3)
    result = execute(node, scope_for(bank_api, demo.SLOW), None)
    assert not result.ok
    assert result.error == "timeout after 0.3s"
    assert result.data is None


def test_connection_refused() -> None:
    node = hook_node("/balance", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(f"http://127.0.0.1:{closed_port()}"), None)
    assert not result.ok
    assert result.error == "connection refused"


def test_reply_that_is_not_json(bank_api: str) -> None:
    node = hook_node("/balance", {"account": "{account}", "pin": "{pin}"})
    result = execute(node, scope_for(bank_api, demo.BROKEN), None)
    assert not result.ok
    assert result.error == "invalid JSON reply"


def test_get_sends_params_as_query_string(bank_api: str) -> None:
    node = hook_node("/health", method="GET", params={"account": "{account}"})
    result = execute(node, scope_for(bank_api), None)
    assert result.ok
    assert result.data == {"ok": True}


def test_only_http_and_https_urls_are_allowed() -> None:
    node = hook_node("/etc/passwd")
    result = execute(node, {"config": {"bank_api": "file://"}}, None)
    assert not result.ok
    assert result.error is not None and "scheme 'file' not allowed" in result.error


def test_header_values_with_line_breaks_are_refused(bank_api: str) -> None:
    node = hook_node("/health", method="GET", headers={"X-Token": "{token}"})
    result = execute(node, {"config": {"bank_api": bank_api}, "token": "a\r\nX-Evil: 1"}, None)
    assert (result.ok, result.error) == (False, "invalid header value")


def test_bad_template_is_an_error_not_a_crash(bank_api: str) -> None:
    node = hook_node("/verify", {"account": "{account"})
    result = execute(node, scope_for(bank_api), None)
    assert not result.ok
    assert result.error == "bad template in webhook (TemplateError)"


@pytest.mark.parametrize(
    ("account", "path", "timeout"),
    [
        (demo.RETAIL, "/verify", 5.0),  # bad PIN: error field
        (demo.FAILING, "/balance", 5.0),  # 500
        (demo.SLOW, "/balance", 0.2),  # timeout
        (demo.BROKEN, "/balance", 5.0),  # not JSON
        (demo.VERIFY_DOWN, "/verify", 5.0),  # 503
    ],
)
def test_error_strings_never_contain_the_pin_or_headers(
    bank_api: str, account: str, path: str, timeout: float
) -> None:
    node = hook_node(
        path + "?pin={pin}",
        {"account": "{account}", "pin": "{pin}"},
        headers={"Authorization": "Bearer tok-{pin}"},
        timeout=timeout,
    )
    result = execute(node, scope_for(bank_api, account), None)
    assert not result.ok
    assert result.error
    assert PIN not in result.error
    assert "Bearer" not in result.error


def test_connection_error_string_has_no_query(bank_api: str) -> None:
    node = hook_node("/x?pin={pin}", {"pin": "{pin}"})
    result = execute(node, scope_for(f"http://127.0.0.1:{closed_port()}"), None)
    assert result.error is not None and PIN not in result.error


# --- rendering ---------------------------------------------------------------------------------


def test_render_value_keeps_types_of_single_variables_and_recurses() -> None:
    scope = {"amount": 250.5, "flag": True, "rec": {"a": 1}, "name": "Li", "n": None}
    raw = {
        "amount": "{amount}",
        "flag": "{ flag }",
        "rec": "{rec}",
        "missing": "{n}",
        "text": "Dear {name}, {amount}",
        "list": ["{amount}", "x{name}", 3],
        "nested": {"deep": "{rec.a}"},
    }
    assert render_value(raw, scope) == {
        "amount": 250.5,
        "flag": True,
        "rec": {"a": 1},
        "missing": None,
        "text": "Dear Li, 250.5",
        "list": [250.5, "xLi", 3],
        "nested": {"deep": 1},
    }


def test_scrub_masks_secrets_and_cuts_long_text() -> None:
    assert scrub("bad pin 987650 for 6222", ["987650", "62"]) == "bad pin **** for 6222"
    assert len(scrub("x" * 500, [])) == actions.MAX_ERROR_CHARS


# --- Python actions ----------------------------------------------------------------------------


@pytest.fixture()
def actions_dir(tmp_path: Path) -> Path:
    (tmp_path / "ivrtest_acts.py").write_text(
        "def lookup(args):\n"
        "    return {'got': args, 'kind': type(args['amount']).__name__}\n"
        "def boom(args):\n"
        "    raise ValueError('PIN ' + args['pin'] + ' rejected')\n"
        "def not_a_dict(args):\n"
        "    return [1, 2]\n"
        "def says_error(args):\n"
        "    return {'error': 'no_loan'}\n"
        "CONSTANT = 3\n",
        encoding="utf-8",
    )
    return tmp_path


def test_python_action_gets_rendered_args(actions_dir: Path) -> None:
    node = py_node("ivrtest_acts:lookup", {"account": "{account}", "amount": "{amount}"})
    result = execute(node, scope_for("http://unused"), actions_dir)
    assert result.ok
    assert result.data == {"got": {"account": demo.RETAIL, "amount": 250.5}, "kind": "float"}


def test_python_action_exception_is_named_and_the_pin_masked(actions_dir: Path) -> None:
    node = py_node("ivrtest_acts:boom", {"pin": "{pin}"})
    result = execute(node, scope_for("http://unused"), actions_dir)
    assert not result.ok
    assert result.error == "ValueError: PIN **** rejected"


def test_python_action_must_return_a_dict(actions_dir: Path) -> None:
    result = execute(py_node("ivrtest_acts:not_a_dict", {}), {}, actions_dir)
    assert (result.ok, result.error) == (False, "ivrtest_acts:not_a_dict returned list, not a dict")


def test_python_result_with_error_fails_and_keeps_data(actions_dir: Path) -> None:
    result = execute(py_node("ivrtest_acts:says_error", {}), {}, actions_dir)
    assert (result.ok, result.error, result.data) == (False, "error: no_loan", {"error": "no_loan"})


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("ivrtest_no_such_module:f", "ModuleNotFoundError"),
        ("ivrtest_acts:missing", "AttributeError"),
        ("ivrtest_acts:CONSTANT", "TypeError"),
        ("no_colon", "ImportError"),
    ],
)
def test_python_action_that_cannot_load(actions_dir: Path, spec: str, error: str) -> None:
    result = execute(py_node(spec, {}), {}, actions_dir)
    assert not result.ok
    assert result.error is not None and result.error.startswith(error)


def test_python_module_is_imported_once(actions_dir: Path) -> None:
    node = py_node("ivrtest_acts:lookup", {"amount": "{amount}"})
    execute(node, {"amount": 1}, actions_dir)
    (actions_dir / "ivrtest_acts.py").write_text("def lookup(args):\n    return {'v': 2}\n")
    assert execute(node, {"amount": 1}, actions_dir).data == {"got": {"amount": 1}, "kind": "int"}


# --- runners -----------------------------------------------------------------------------------


def test_inline_runner_calls_done_before_returning(bank_api: str) -> None:
    got: list[ActionResult] = []
    node = hook_node("/balance", {"account": "{account}"})
    handle = InlineActionRunner(None).run(node, scope_for(bank_api), got.append)
    assert [r.data for r in got] == [{"available": "1024.00", "currency": "CNY"}]
    handle.cancel()  # a no-op: nothing is running
    assert len(got) == 1


def test_thread_runner_delivers_on_the_loop_thread(bank_api: str) -> None:
    async def main() -> tuple[ActionResult, bool]:
        loop = asyncio.get_running_loop()
        runner = ThreadActionRunner(loop, None, max_workers=2)
        future: asyncio.Future[tuple[ActionResult, bool]] = loop.create_future()

        def done(result: ActionResult) -> None:
            future.set_result((result, threading.current_thread() is threading.main_thread()))

        runner.run(hook_node("/balance", {"account": "{account}"}), scope_for(bank_api), done)
        try:
            return await asyncio.wait_for(future, 10)
        finally:
            runner.shutdown()

    result, on_main = asyncio.run(main())
    assert result.ok and result.data["available"] == "1024.00"
    assert on_main


def test_thread_runner_refused_request_still_answers_later(bank_api: str) -> None:
    async def main() -> tuple[list[ActionResult], list[ActionResult]]:
        loop = asyncio.get_running_loop()
        runner = ThreadActionRunner(loop, None)
        got: list[ActionResult] = []
        runner.run(hook_node("/x"), {"config": {"bank_api": "ftp://h"}}, got.append)
        before = list(got)  # done must not run inside run()
        await asyncio.sleep(0)
        runner.shutdown()
        return before, got

    before, after = asyncio.run(main())
    assert before == []
    assert len(after) == 1 and not after[0].ok


def test_thread_runner_watchdog_and_cancel(
    actions_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (actions_dir / "ivrtest_block.py").write_text(
        "import threading\nGATE = threading.Event()\n"
        "def wait(args):\n    GATE.wait(10)\n    return {'late': True}\n"
    )
    monkeypatch.setattr(actions, "WATCHDOG_GRACE", 0.05)

    async def main() -> tuple[list[ActionResult], list[ActionResult]]:
        loop = asyncio.get_running_loop()
        runner = ThreadActionRunner(loop, actions_dir)
        timed_out: list[ActionResult] = []
        first = loop.create_future()
        node = py_node("ivrtest_block:wait", {}, timeout=0.05)
        runner.run(node, {}, lambda r: (timed_out.append(r), first.set_result(None)))
        await asyncio.wait_for(first, 10)
        cancelled: list[ActionResult] = []
        handle = runner.run(node, {}, cancelled.append)
        handle.cancel()
        import ivrtest_block  # type: ignore[import-not-found]

        ivrtest_block.GATE.set()  # both calls now finish in their threads
        await loop.run_in_executor(None, runner.shutdown, True)
        await asyncio.sleep(0.01)  # let posted deliveries run: they must be dropped
        return timed_out, cancelled

    timed_out, cancelled = asyncio.run(main())
    assert [r.error for r in timed_out] == ["timeout after 0.05s"]
    assert cancelled == []


def test_pending_drops_result_after_cancel() -> None:
    loop = asyncio.new_event_loop()
    try:
        got: list[ActionResult] = []
        pending = actions._Pending(loop, got.append, 0.0)
        pending.cancel()
        pending.deliver(ActionResult(True, {}))
        assert got == []
        second = actions._Pending(loop, got.append, 0.0)
        second.deliver(ActionResult(True, {"n": 1}))
        second.deliver(ActionResult(True, {"n": 2}))
        assert [r.data for r in got] == [{"n": 1}]
    finally:
        loop.close()


def test_a_reply_nested_past_the_stack_is_invalid_json_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert actions._judge_reply(200, deep, []) == (False, None, "invalid JSON reply")
    assert actions._judge_reply(500, deep, []) == (False, None, "HTTP 500")


@pytest.mark.parametrize("spec", ["os:system", "subprocess:getoutput", "ivr.engine.actions:run"])
def test_a_python_action_outside_the_actions_folder_never_runs(
    actions_dir: Path, spec: str
) -> None:
    result = execute(py_node(spec, {"cmd": "true"}), {}, actions_dir)
    assert not result.ok and result.error is not None
    assert result.error.startswith("ModuleNotFoundError") and "not in the actions folder" in (
        result.error)


def test_the_actions_folder_module_wins_over_one_of_the_same_name(actions_dir: Path) -> None:
    (actions_dir / "json.py").write_text("def dumps(args):\n    return {'mine': 1}\n",
                                         encoding="utf-8")  # fmt: skip
    result = execute(py_node("json:dumps", {}), {}, actions_dir)  # sys.modules has the real one
    assert result.ok and result.data == {"mine": 1}
    import json  # the point: a plain import still finds the standard library

    assert json.dumps([1]) == "[1]"
