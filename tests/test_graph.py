"""Graph export: Mermaid, DOT and the self-contained HTML page, from Flow objects built here."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ivr.flow import graph_layout, graph_svg
from ivr.flow.graph import build_graph, render, to_dot, to_html, to_mermaid
from ivr.flow.model import (
    ActionNode,
    BranchNode,
    Choice,
    CollectNode,
    Condition,
    ConfirmNode,
    EnqueueNode,
    Flow,
    GlobalCommand,
    Handler,
    HangupNode,
    HoursNode,
    InputOptions,
    MenuNode,
    Pos,
    Prompt,
    PromptPart,
    SayNode,
    TransferNode,
    Webhook,
)

P = Pos("bank.yaml", 1, 1)


def prompt(node_id: str, en: str, zh: str | None = None) -> Prompt:
    text = {"en": en} if zh is None else {"en": en, "zh": zh}
    return Prompt(node_id, (PromptPart(node_id, text),))


def handlers(goto: str = "agent") -> InputOptions:
    return InputOptions(
        no_input=Handler(goto=goto, after=3), no_match=Handler(goto=goto, after=3)
    )


def bank_flow() -> Flow:
    nodes = [
        HoursNode("check_hours", P, calendar="branches", open="welcome", closed="after_hours",
                  holiday="holiday_msg"),
        MenuNode(
            "welcome", P,
            prompt=prompt("welcome", "For balance press 1. For a lost card press 2.",
                          "查询余额请按1，挂失请按2。"),
            choices=(
                Choice("1", "1", {"en": ("balance",)}, "ask_account"),
                Choice("2", "2", {}, "lost_card"),
                Choice("9", "9", {}, "repeat"),
                Choice("loans", None, {"en": ("loan",)}, "nowhere"),
            ),
            opts=handlers(),
        ),
        CollectNode("ask_account", P, prompt("ask_account", "Please enter your account number."),
                    into="account", next="get_balance", min=8, max=19, opts=handlers()),
        ActionNode("get_balance", P, next="route", on_error="agent",
                   webhook=Webhook("{config.bank_api}/balance"), into="balance"),
        BranchNode("route", P, when=(Condition("balance.available > 100000", "vip"),),
                   otherwise="say_balance"),
        SayNode("say_balance", P, prompt("say_balance",
                                         "Your balance is {balance.available|amount}."),
                next="confirm_more"),
        ConfirmNode("confirm_more", P, prompt("confirm_more", "Anything else? 1 yes, 2 no."),
                    yes="welcome", no="goodbye"),
        TransferNode("lost_card", P, to="sip:cards@agents.bank.example", on_fail="agent",
                     prompt=prompt("lost_card", "Connecting you to the card desk.")),
        TransferNode("vip", P, to="sip:vip@agents.bank.example", on_fail="agent"),
        SayNode("after_hours", P, prompt("after_hours", "We are closed."), next="hangup"),
        SayNode("holiday_msg", P, prompt("holiday_msg", "Happy holidays."), next="goodbye"),
        EnqueueNode("agent", P, queue="general", priority="= 8 if vip else 5",
                    prompt=prompt("agent", "Please hold.")),
        HangupNode("goodbye", P, prompt=prompt("goodbye", "Goodbye.")),
        SayNode("orphan", P, prompt("orphan", "Nobody comes here."), next="goodbye"),
    ]
    return Flow(
        id="bank-main",
        start="check_hours",
        nodes={n.id: n for n in nodes},
        languages=("en", "zh"),
        globals={
            "0": GlobalCommand("0", "0", {}, "agent"),
            "*": GlobalCommand("*", "*", {}, "repeat"),
            "agent": GlobalCommand("agent", None, {"en": ("agent", "operator")}, "agent"),
        },
        description="Retail bank self-service line",
    )


def all_labels(flow: Flow) -> list[str]:
    """Every branch label of every node (the arrows' labels before merging)."""
    return [label for node in flow.nodes.values() for label, _t, _p in node.targets()]


def test_build_graph_orders_boxes_breadth_first_and_merges_parallel_arrows() -> None:
    graph = build_graph(bank_flow())
    ids = [n.id for n in graph.nodes]
    assert ids[:4] == ["check_hours", "welcome", "after_hours", "holiday_msg"]
    assert "orphan" in ids  # unreachable nodes are still drawn
    welcome = next(n for n in graph.nodes if n.id == "welcome")
    agent = next(n for n in graph.nodes if n.id == "agent")
    merged = [e for e in graph.edges if e.source == welcome.key and e.target == agent.key]
    assert [e.label for e in merged] == ["no_input / no_match"]


def test_builtin_targets_get_one_box_per_source_and_missing_targets_are_marked() -> None:
    graph = build_graph(bank_flow())
    builtins = [n for n in graph.nodes if n.kind == "builtin"]
    assert sorted(n.id for n in builtins) == ["hangup", "repeat"]
    missing = [n for n in graph.nodes if n.kind == "missing"]
    assert [n.id for n in missing] == ["nowhere"]
    categories = {n.id: n.category for n in graph.nodes}
    assert categories["check_hours"] == "start"
    assert categories["agent"] == categories["goodbye"] == categories["vip"] == "terminal"
    assert categories["welcome"] == "input" and categories["route"] == "logic"


def test_mermaid_has_every_node_and_edge_label() -> None:
    flow = bank_flow()
    text = to_mermaid(flow)
    assert text.startswith("flowchart TD\n")
    for node_id in flow.nodes:
        assert node_id in text
    plain = text
    codes = (("#quot;", '"'), ("#lt;", "<"), ("#gt;", ">"), ("#amp;", "&"), ("#35;", "#"))
    for code, char in codes:
        plain = plain.replace(code, char)
    for label in all_labels(flow):
        assert label in plain
    assert "if balance.available #gt; 100000" in text
    assert "Global commands" in text and "0 → agent" in text
    assert "classDef terminal" in text
    # every box is declared once and every arrow joins declared boxes
    declared = set(re.findall(r"^    (n\d+)[\[(>]", text, re.M))
    arrows = re.findall(r"^    (n\d+) -->\|\"[^\"]*\"\| (n\d+)$", text, re.M)
    assert len(arrows) == len(build_graph(flow).edges)
    assert {a for pair in arrows for a in pair} <= declared


def test_mermaid_escapes_quotes_and_hashes_in_labels() -> None:
    flow = bank_flow()
    nodes = dict(flow.nodes)
    nodes["goodbye"] = HangupNode("goodbye", P, prompt=prompt("goodbye", 'Say "bye" or press #.'))
    text = to_mermaid(Flow(**{**flow.__dict__, "nodes": nodes}))
    line = next(x for x in text.splitlines() if "goodbye<br/>" in x)
    assert "#quot;bye#quot;" in line and "press #35;." in line
    assert line.count('"') == 2  # only the label's own quotes


def test_dot_has_every_node_and_edge_label_and_balanced_quotes() -> None:
    flow = bank_flow()
    text = to_dot(flow)
    assert text.startswith('digraph "bank-main" {') and text.rstrip().endswith("}")
    for node_id in flow.nodes:
        assert node_id in text
    for label in all_labels(flow):
        assert f'label="{label}"' in text or label in text
    for line in text.splitlines():
        assert line.replace('\\"', "").count('"') % 2 == 0, line
    assert "shape=note" in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(v or "" for _k, v in attrs)
        if tag not in ("meta", "path", "rect"):  # void or self-closed in this page
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(v or "" for _k, v in attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("path", "rect"):
            return
        assert self.stack and self.stack[-1] == tag, (self.stack[-5:], tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_parses_has_svg_and_no_network_references(tmp_path: Path) -> None:
    flow = bank_flow()
    page = to_html(flow)
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    assert "svg" in parser.tags and "details" in parser.tags and "style" in parser.tags
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"https?://", page)
    assert all(not a.startswith(("http:", "https:", "//")) for a in parser.attrs)
    text = "".join(parser.text)
    for node_id in flow.nodes:
        assert node_id in text
    assert "flowchart TD" in text  # the Mermaid source, inside <details>
    assert "Legend" in text and "Global commands" in text
    assert "查询余额" not in text.split("flowchart TD")[0]  # the default language is English
    (tmp_path / "bank.html").write_text(page, encoding="utf-8")


def test_layout_rows_follow_the_flow_and_boxes_do_not_overlap() -> None:
    placed = graph_layout.layout(build_graph(bank_flow()), graph_svg.box_lines)
    boxes = [b for row in placed.rows for b in row]
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + a.w <= placed.width and a.y >= 0
        assert a.y + a.h <= placed.height
        for b in boxes[i + 1 :]:
            assert not graph_svg.overlaps(a.rect, b.rect), (a.key, b.key)
    row = {b.node.id: b.row for b in boxes if b.node is not None}
    assert row["check_hours"] == 0 and row["welcome"] == 1
    assert row["ask_account"] == 2 and row["get_balance"] == 3
    # the escalation target sinks below every node that leads to it
    assert row["agent"] > max(row["get_balance"], row["lost_card"], row["vip"])
    # an unreachable node goes under the whole flow and does not push its target down
    assert row["orphan"] > max(r for node_id, r in row.items() if node_id != "orphan")
    assert row["goodbye"] == row["confirm_more"] + 1
    kinds = {(r.edge.source, r.edge.target): r for r in placed.routes}
    keys = {b.node.id: b.key for b in boxes if b.node is not None}
    back = kinds[(keys["confirm_more"], keys["welcome"])]
    assert back.kind == "back"
    down = kinds[(keys["welcome"], keys["agent"])]
    assert down.kind == "down" and len(down.waypoints) == row["agent"] - row["welcome"] - 1


def test_wrap_and_fit_keep_text_inside_the_box() -> None:
    lines = graph_svg.wrap("For balance press 1. For a lost card press 2. " * 4, 200, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(graph_svg.text_width(line) <= 200 for line in lines)
    chinese = graph_svg.wrap("查询余额请按1，挂失请按2，贷款请按3，人工服务请按0。", 120, 2)
    assert len(chinese) == 2 and all(graph_svg.text_width(x) <= 120 for x in chinese)
    assert graph_svg.fit("short", 200) == "short"


def test_render_picks_the_format_and_refuses_unknown_ones() -> None:
    flow = bank_flow()
    assert render(flow, "mermaid") == to_mermaid(flow)
    assert render(flow, "dot") == to_dot(flow)
    assert render(flow, "html").startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError, match="unknown graph format"):
        render(flow, "png")
