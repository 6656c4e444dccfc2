"""Node and branch coverage (ivr/sim/coverage.py): from a FlowSet and the events of calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ivr.core import events as ev
from ivr.core.events import Event
from ivr.flow.model import (
    NOWHERE,
    Choice,
    Flow,
    FlowSet,
    GlobalCommand,
    Handler,
    HangupNode,
    InputOptions,
    MenuNode,
    Prompt,
    PromptPart,
    ReturnNode,
    SayNode,
    SubflowNode,
)
from ivr.sim.coverage import GLOBALS, compute_coverage, empty_report, format_coverage


def _prompt(pid: str) -> Prompt:
    return Prompt(pid, (PromptPart(pid, {"en": pid}),))


def _flowset() -> FlowSet:
    main = Flow(
        id="main",
        start="menu",
        nodes={
            "menu": MenuNode(
                "menu",
                NOWHERE,
                _prompt("menu"),
                choices=(Choice("1", "1", {}, "info"), Choice("2", "2", {}, "verify")),
                opts=InputOptions(no_input=Handler(goto="bye")),
            ),
            "info": SayNode("info", NOWHERE, _prompt("info"), next="bye"),
            "verify": SubflowNode("verify", NOWHERE, flow="sub", next="bye"),
            "bye": HangupNode("bye", NOWHERE),
        },
        globals={
            "0": GlobalCommand("0", "0", {}, "bye"),
            "#": GlobalCommand("#", "#", {}, None),  # switched off: not a branch
        },
    )
    sub = Flow(
        id="sub",
        start="hello",
        nodes={
            "hello": SayNode("hello", NOWHERE, _prompt("hello"), next="done"),
            "done": ReturnNode("done", NOWHERE),
        },
    )
    return FlowSet({"main": main, "sub": sub})


class Calls:
    """Builds the events of calls as the engine emits them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, call: str, event: str, node: str | None, flow: str, **data: Any) -> Calls:
        data = {**data, "flow": flow} if node else data
        self.events.append(Event(call, len(self.events), 0.0, event, node, data))
        return self

    def enter(self, call: str, flow: str, node: str, kind: str = "say") -> Calls:
        return self.add(call, ev.NODE_ENTER, node, flow, kind=kind)

    def match(self, call: str, flow: str, node: str, branch: str, target: str) -> Calls:
        return self.add(call, ev.MATCH, node, flow, branch=branch, target=target)


def test_totals_come_from_targets_and_globals() -> None:
    report = empty_report(_flowset())
    main = report.flows["main"]
    assert main.nodes == ["menu", "info", "verify", "bye"]
    assert main.branches == [
        ("menu", "choice 1"), ("menu", "choice 2"), ("menu", "no_input"), ("info", "next"),
        ("verify", "next"), (GLOBALS, "global 0"),
    ]  # fmt: skip
    assert report.flows["sub"].branches == [("hello", "next")]
    assert report.node_percent == 0.0


def test_nodes_entered_and_branches_matched_are_covered() -> None:
    calls = (
        Calls()
        .enter("c1", "main", "menu", "menu")
        .match("c1", "main", "menu", "choice 1", "info")
        .enter("c1", "main", "info")
        .match("c1", "main", "info", "next", "bye")
        .enter("c1", "main", "bye", "hangup")
    )
    report = compute_coverage(_flowset(), calls.events)
    main = report.flows["main"]
    assert main.nodes_covered == {"menu", "info", "bye"}
    assert main.missing_nodes == ["verify"]
    assert main.branches_covered == {("menu", "choice 1"), ("info", "next")}
    assert main.missing_branches == [
        ("menu", "choice 2"), ("menu", "no_input"), ("verify", "next"), (GLOBALS, "global 0"),
    ]  # fmt: skip
    assert main.node_percent == 75.0
    assert main.branch_percent == pytest.approx(100 * 2 / 6)


def test_globals_count_by_command_name_and_unknown_labels_do_not() -> None:
    calls = (
        Calls()
        .enter("c1", "main", "menu", "menu")
        .add("c1", ev.GLOBAL, "menu", "main", command="0", target="bye")
        .match("c1", "main", "menu", "no_match", "agent")  # default escalation: not a branch
        .add("c2", ev.GLOBAL, "menu", "main", command="#", target="back")  # switched off
    )
    main = compute_coverage(_flowset(), calls.events).flows["main"]
    assert main.branches_covered == {(GLOBALS, "global 0")}


def test_a_subflow_return_covers_the_subflow_nodes_next() -> None:
    calls = (
        Calls()
        .enter("c1", "main", "menu", "menu")
        .match("c1", "main", "menu", "choice 2", "verify")
        .enter("c1", "main", "verify", "subflow")
        .enter("c1", "sub", "hello")
        .match("c1", "sub", "hello", "next", "done")
        .enter("c1", "sub", "done", "return")
        .enter("c1", "main", "bye", "hangup")
    )
    report = compute_coverage(_flowset(), calls.events)
    assert ("verify", "next") in report.flows["main"].branches_covered
    assert report.flows["sub"].nodes_covered == {"hello", "done"}
    assert report.flows["sub"].branch_percent == 100.0


def test_calls_are_kept_apart_when_their_events_interleave() -> None:
    calls = (
        Calls()
        .enter("c1", "main", "verify", "subflow")
        .enter("c2", "main", "menu", "menu")
        .enter("c1", "sub", "done", "return")
        .enter("c2", "main", "bye", "hangup")  # c2 did not return from anything
        .enter("c1", "main", "info")  # not verify's next: no credit
    )
    main = compute_coverage(_flowset(), calls.events).flows["main"]
    assert ("verify", "next") not in main.branches_covered
    assert main.nodes_covered == {"verify", "menu", "bye", "info"}


def test_the_table_lists_what_is_missing() -> None:
    calls = (
        Calls().enter("c1", "main", "menu", "menu").match("c1", "main", "menu", "choice 1", "info")
    )
    text = format_coverage(compute_coverage(_flowset(), calls.events))
    lines = text.splitlines()
    assert lines[0].split() == ["flow", "nodes", "branches"]
    assert lines[1].split() == ["main", "1/4", "25%", "1/6", "17%"]
    assert lines[2] == "  missing nodes: info, verify, bye"
    assert lines[3] == (
        "  missing branches: menu: choice 2, menu: no_input, info: next, verify: next, "
        "(global): global 0"
    )
    assert lines[-1] == "total: nodes 16.7%, branches 14.3%"  # 1 of 4+2 nodes, 1 of 6+1


def test_coverage_of_real_runs() -> None:
    from ivr.engine.actions import InlineActionRunner
    from ivr.engine.runtime import Runtime
    from ivr.flow.loader import load_flowset
    from ivr.sim.runner import all_events, run_scripts
    from ivr.sim.script import parse_script

    flows_dir = Path(__file__).parent / "flows" / "sim"
    flows, _ = load_flowset(flows_dir)
    scripts = [
        parse_script(
            "call: sim-main\nsteps:\n  - press: '5'\n  - press: '4321'\n  - expect_hangup\n",
            "verify.yaml",
        ),
        parse_script("call: sim-main\nsteps:\n  - press: '0'\n  - expect_queue\n", "agent.yaml"),
    ]
    runtime = Runtime(actions=InlineActionRunner(flows_dir / "actions"))
    results = run_scripts(scripts, flows, runtime)
    assert all(r.passed for r in results), [r.summary() for r in results]
    report = compute_coverage(flows, all_events(results))
    main, verify = report.flows["sim-main"], report.flows["sim-verify"]
    assert {"welcome", "main_menu", "verify", "verified", "goodbye", "agent"} <= main.nodes_covered
    assert "ask_account" in main.missing_nodes
    assert {("main_menu", "choice 5"), ("verify", "next"), (GLOBALS, "global 0")} <= (
        main.branches_covered
    )
    assert ("main_menu", "choice 1") in main.missing_branches
    assert verify.nodes_covered == {"ask_pin", "done"}
    assert ("ask_pin", "next") in verify.branches_covered
