"""The phone agent line's parts: the authority's side (ivr/acd/agentline.py: the lock, the state
changes), the wire op ``line`` through a real AcdService and RemoteQueues on a real socket, and
the caller's side (ivr/host/agentline.py: finding the agent, judging the PIN, on_error).

End to end over SIP: tests/test_agentline_e2e.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from acd_helpers import ANN, GENERAL, GINA, Client, make_authority
from acd_helpers import sock_dir as sock_dir  # the fixture

from ivr.acd.agentline import (
    BAD_LOGIN,
    BAD_REASON,
    LOCKED,
    MAX_TRACKED,
    REFUSED,
    UNAVAILABLE,
    AgentLine,
    LineGuard,
    LineRequest,
)
from ivr.acd.config import AgentAccount, AgentLineConfig
from ivr.acd.service import AcdService, ServiceThread
from ivr.core.clock import LoopClock, VirtualClock
from ivr.engine.runtime import ActionDone, ActionResult
from ivr.flow.model import AcdAction, ActionNode, Pos
from ivr.host.agentline import AgentLineActions, LineDone
from ivr.host.remote_queues import RemoteQueues

PIN = "48151623"
CONFIG = AgentLineConfig(attempts=3, lockout=300.0, reasons=("break", "training"))


def line_of(clock: VirtualClock, config: AgentLineConfig = CONFIG) -> AgentLine:
    return AgentLine(make_authority(clock, ANN, GINA), config)


def req(op: str, agent: str = "ann", pin_ok: bool = True, reason: str = "") -> LineRequest:
    return LineRequest("c1", agent, pin_ok, op, reason)


# --- the lock ----------------------------------------------------------------------------------


def test_the_guard_locks_after_the_attempts_and_unlocks_after_the_lockout() -> None:
    guard = LineGuard(attempts=3, lockout=60.0)
    assert [guard.failed("ann", 0.0) for _ in range(2)] == [1, 2]
    assert guard.locked_for("ann", 1.0) == 0.0
    assert guard.failed("ann", 10.0) == 3
    assert guard.locked_for("ann", 40.0) == pytest.approx(30.0)
    assert guard.locked_for("bo", 40.0) == 0.0  # per agent number
    assert guard.locked_for("ann", 70.0) == 0.0
    assert guard.failed("ann", 71.0) == 1  # the count started again with the lock


def test_a_right_pin_starts_the_count_again() -> None:
    guard = LineGuard(attempts=3, lockout=60.0)
    guard.failed("ann", 0.0)
    guard.failed("ann", 0.0)
    guard.succeeded("ann")
    assert guard.failed("ann", 0.0) == 1


def test_endless_made_up_numbers_cost_bounded_memory() -> None:
    guard = LineGuard(attempts=3, lockout=60.0)
    for n in range(MAX_TRACKED + 500):
        guard.failed(f"{n:08d}", 0.0)
    assert len(guard._failures) == MAX_TRACKED
    assert guard.failed(f"{MAX_TRACKED + 499:08d}", 0.0) == 2  # the newest are kept


# --- the authority's side ----------------------------------------------------------------------


def test_status_then_login_pause_with_a_reason_and_resume() -> None:
    clock = VirtualClock()
    line = line_of(clock)
    assert line.handle(req("status")) == {"agent": "ann", "name": "Ann Lee",
                                          "state": "logged_out", "reason": None,
                                          "pending": None, "changed": False}  # fmt: skip
    assert line.handle(req("login"))["state"] == "available"
    paused = line.handle(req("pause", reason="break"))
    assert (paused["state"], paused["reason"], paused["changed"]) == ("paused", "break", True)
    assert line.authority.agents["ann"].state.value == "paused"
    assert line.handle(req("resume"))["state"] == "available"
    assert line.handle(req("logout"))["state"] == "logged_out"


def test_changes_the_authority_refuses_are_answered_refused_with_the_state() -> None:
    line = line_of(VirtualClock())
    assert line.handle(req("pause", reason="break")) == {
        "agent": "ann", "name": "Ann Lee", "state": "logged_out", "reason": None,
        "pending": None, "error": REFUSED}  # fmt: skip
    assert line.handle(req("resume"))["error"] == REFUSED
    assert line.handle(req("dance"))["error"] == REFUSED


def test_a_pause_reason_ops_did_not_list_is_refused_but_any_goes_without_a_list() -> None:
    line = line_of(VirtualClock())
    line.handle(req("login"))
    assert line.handle(req("pause", reason="lunch"))["error"] == BAD_REASON
    assert line.authority.agents["ann"].state.value == "available"
    free = line_of(VirtualClock(), AgentLineConfig())
    free.handle(req("login"))
    assert free.handle(req("pause", reason="lunch"))["reason"] == "lunch"
    assert free.handle(req("pause", reason="x" * 5000))["reason"] == "x" * 32  # bounded


def test_wrong_pins_lock_the_number_and_a_right_pin_is_refused_while_locked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    clock = VirtualClock()
    line = line_of(clock)
    assert line.handle(req("status", pin_ok=False)) == {"error": BAD_LOGIN, "attempts_left": 2}
    assert line.handle(req("status", pin_ok=False)) == {"error": BAD_LOGIN, "attempts_left": 1}
    assert line.handle(req("status", pin_ok=False)) == {"error": LOCKED, "locked_for": 300}
    clock.advance(100)
    assert line.handle(req("login")) == {"error": LOCKED, "locked_for": 200}
    assert line.authority.agents["ann"].state.value == "logged_out"
    assert line.handle(req("login", agent="gina"))["state"] == "available"  # others are not
    clock.advance(200)
    assert line.handle(req("login"))["state"] == "available"
    assert "agent line: agent ann locked out for 300 s after 3 wrong PINs" in caplog.text
    assert "wrong agent number or PIN for agent ann (2 of 3)" in caplog.text


def test_an_unknown_number_is_a_bad_login_like_a_wrong_pin_and_is_locked_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    line = line_of(VirtualClock())
    answers = [line.handle(req("status", agent="9999")) for _ in range(4)]
    assert "agent number '9999' is locked out" in caplog.text
    assert [a["error"] for a in answers] == [BAD_LOGIN, BAD_LOGIN, LOCKED, LOCKED]
    # an unknown number with pin_ok (cannot come from the host) is no login either
    assert line.handle(req("login", agent="nobody"))["error"] == BAD_LOGIN


# --- the caller's side -------------------------------------------------------------------------

ACCOUNTS = {"ann": AgentAccount("1001", "pw", PIN), "gina": AgentAccount("gina", "pw", None)}
SCOPE = {"call": {"call_id": "c9"}, "number": "1001", "pin": PIN}


def node(op: str = "status", agent: str = "{number}", pin: str = "{pin}",
         reason: str | None = None, timeout: float = 5.0) -> ActionNode:  # fmt: skip
    return ActionNode("n", Pos("f", 1, 1), "next", "err", timeout=timeout,
                      acd=AcdAction(op, agent, pin, reason))  # fmt: skip


class Inner:
    """The runner of webhooks and Python actions: records what it was given."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> Any:
        self.ran.append(node.id)
        done(ActionResult(True, {"inner": True}))
        return None


def run_action(actions_of: Callable[[asyncio.AbstractEventLoop], AgentLineActions],
               action: ActionNode, scope: Mapping[str, Any] = SCOPE,
               cancel: bool = False) -> ActionResult | None:  # fmt: skip
    """Run one action on a fresh loop; its result (None: none came within 2 s)."""

    async def main() -> ActionResult | None:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[ActionResult] = loop.create_future()
        handle = actions_of(loop).run(action, scope, got.set_result)
        if cancel:
            handle.cancel()
        try:
            return await asyncio.wait_for(got, 2.0)
        except TimeoutError:
            return None

    return asyncio.run(main())


def local(sent: list[LineRequest]) -> Callable[[asyncio.AbstractEventLoop], AgentLineActions]:
    """Actions over an in-process authority; every request it is asked is kept in ``sent``."""

    def make(loop: asyncio.AbstractEventLoop) -> AgentLineActions:
        line = AgentLine(make_authority(LoopClock(loop), ANN, GINA), CONFIG)

        def ask(request: LineRequest, done: LineDone) -> Callable[[], None]:
            sent.append(request)
            return loop.call_soon(done, line.handle(request)).cancel

        return AgentLineActions(Inner(), LoopClock(loop), ACCOUNTS, ask)

    return make


def test_the_agent_is_found_by_username_or_id_and_the_pin_judged_here() -> None:
    sent: list[LineRequest] = []
    result = run_action(local(sent), node("login"))
    assert result is not None and result.ok and result.error is None
    assert result.data["state"] == "available"
    assert sent == [LineRequest("c9", "ann", True, "login", "")]
    by_id = run_action(local(sent), node(agent="ann"))
    assert by_id is not None and by_id.ok
    assert PIN not in repr(sent)  # the request carries the verdict, never the PIN


def test_a_wrong_pin_an_unknown_number_and_an_agent_without_pin_take_on_error() -> None:
    sent: list[LineRequest] = []
    wrong = run_action(local(sent), node(), {**SCOPE, "pin": "0000"})
    unknown = run_action(local(sent), node(), {**SCOPE, "number": "7777"})
    no_pin = run_action(local(sent), node(agent="gina"), {**SCOPE, "pin": ""})
    for result in (wrong, unknown, no_pin):
        assert result is not None and not result.ok and result.error == BAD_LOGIN
    assert [(r.agent, r.pin_ok) for r in sent] == [("ann", False), ("7777", False),
                                                   ("gina", False)]  # fmt: skip


def test_the_pause_reason_is_rendered_and_passed_on() -> None:
    sent: list[LineRequest] = []
    run_action(local(sent), node("login"))
    result = run_action(local(sent), node("pause", reason="{why}"), {**SCOPE, "why": "training"})
    assert result is not None and result.error == REFUSED  # a fresh authority: logged out
    assert sent[-1].reason == "training"


def test_other_actions_go_to_the_inner_runner() -> None:
    inner = Inner()

    def make(loop: asyncio.AbstractEventLoop) -> AgentLineActions:
        return AgentLineActions(inner, LoopClock(loop), ACCOUNTS, lambda r, d: lambda: None)

    plain = ActionNode("hook", Pos("f", 1, 1), "next", "err", python="m:f")
    result = run_action(make, plain)
    assert result is not None and result.data == {"inner": True} and inner.ran == ["hook"]


def test_an_authority_that_never_answers_is_unavailable_after_the_node_timeout() -> None:
    forgotten: list[bool] = []

    def silent(loop: asyncio.AbstractEventLoop) -> AgentLineActions:
        def ask(request: LineRequest, done: LineDone) -> Callable[[], None]:
            return lambda: forgotten.append(True)

        return AgentLineActions(Inner(), LoopClock(loop), ACCOUNTS, ask)

    result = run_action(silent, node(timeout=0.2))
    assert result is not None and result.error == UNAVAILABLE and not result.ok
    assert forgotten == [True]
    assert run_action(silent, node(), cancel=True) is None  # hung up: no answer delivered


# --- over the socket ---------------------------------------------------------------------------


def test_the_line_op_needs_hello_and_is_answered_with_its_req(sock_dir: Path) -> None:
    async def main() -> None:
        path = sock_dir / "acd.sock"
        service = AcdService(make_authority(LoopClock(), ANN, GINA, queue=GENERAL), path, CONFIG)
        await service.start()
        client = await Client.open(path)
        try:
            await client.send("line", req=1, call_id="c", agent="ann", pin_ok=True,
                              action="login")  # fmt: skip
            assert (await client.expect("error"))["code"] == "no_hello"
            await client.hello(1)
            await client.send("line", req=7, call_id="c", agent="ann", pin_ok="yes",
                              action="login")  # fmt: skip
            assert (await client.expect("error"))["error"] == "line: pin_ok must be bool"
            await client.send("line", req=8, call_id="c", agent="ann", pin_ok=True,
                              action="pause", reason="break")  # fmt: skip
            answer = await client.expect("line")
            assert (answer["req"], answer["error"], answer["state"]) == (8, REFUSED, "logged_out")
            await client.send("line", req=9, call_id="c", agent="ann", pin_ok=True,
                              action="login")  # fmt: skip
            answer = await client.expect("line")
            assert (answer["req"], answer["state"]) == (9, "available")
        finally:
            await client.close()
            await service.stop()

    asyncio.run(main())


def test_remote_queues_ask_the_supervisors_line_and_a_lost_one_is_unavailable(
    sock_dir: Path,
) -> None:
    thread = ServiceThread(lambda clock: make_authority(clock, ANN, GINA), sock_dir / "acd.sock",
                           CONFIG)  # fmt: skip
    thread.start()

    async def main() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        loop = asyncio.get_running_loop()
        queues = await RemoteQueues.connect(sock_dir / "acd.sock", worker=3)
        answers: list[asyncio.Future[dict[str, Any]]] = [loop.create_future() for _ in range(3)]
        queues.agent_line(req("login"), answers[0].set_result)
        first = await asyncio.wait_for(answers[0], 5)
        queues.agent_line(req("status", pin_ok=False), answers[1].set_result)
        second = await asyncio.wait_for(answers[1], 5)
        await queues.close()
        queues.agent_line(req("status"), answers[2].set_result)
        return first, second, await asyncio.wait_for(answers[2], 5)

    try:
        first, second, lost = asyncio.run(main())
        assert (first["agent"], first["state"], first["changed"]) == ("ann", "available", True)
        assert second == {"error": BAD_LOGIN, "attempts_left": 2}
        assert lost == {"error": UNAVAILABLE}
        assert thread.call(lambda s: s.authority.agents["ann"].state.value) == "available"
    finally:
        thread.stop()
