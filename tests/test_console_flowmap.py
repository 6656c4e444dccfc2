"""The flow heat map's drawing and the timeline's rows, without a server: heat colours and
numbers on the nodes, search in every language, links to sub-flows, and hostile flow text
escaped in the SVG and the page."""

from __future__ import annotations

import html
import re
from pathlib import Path

from ivr.config import load_config
from ivr.console import pages
from ivr.console.flowmap import Traffic, found_nodes, heat_colour, heat_svg, prompt_texts
from ivr.console.records import Timeline
from ivr.console.timeline import describe, rows
from ivr.flow.loader import load_flowset, load_text
from ivr.flow.model import Flow

REPO = Path(__file__).resolve().parents[1]

HOSTILE = """\
flow: evil
languages: [en, zh]
start: menu
nodes:
  menu:
    menu:
      prompt:
        en: "</text></svg><script>alert('svg')</script> press 1 & \\"quote\\""
        zh: "<img src=x onerror=alert(1)>请按1"
      choices:
        "1": check
      no_input: {goto: bye}
      no_match: {goto: bye}
  check:
    branch:
      when:
        - {if: "'<b>' != '</title><script>x()</script>'", goto: bye}
      else: bye
  bye:
    hangup: {prompt: {en: "Bye <!-- -->", zh: "再见"}}
"""


def bank() -> dict[str, Flow]:
    config = load_config(REPO / "ivr.yaml")
    flows, _ = load_flowset(REPO / "flows", config)
    return dict(flows.flows)


def node_group(svg: str, node: str) -> str:
    found = re.search(rf'<g [^>]*data-node="{node}"[^>]*>.*?</g>', svg, re.DOTALL)
    assert found, node
    return found.group(0)


def test_nodes_carry_their_figures_and_a_heat_colour_by_the_chosen_figure() -> None:
    flow = bank()["bank-main"]
    traffic = {"main_menu": Traffic(visits=20, calls=18, no_input=5, no_match=1, ended=2,
                                    hangups=2),
               "choose_language": Traffic(visits=10, calls=10, no_match=4)}  # fmt: skip
    svg = heat_svg(flow, traffic, "visits")
    menu, language = node_group(svg, "main_menu"), node_group(svg, "choose_language")
    assert 'data-visits="20"' in menu and 'data-no-input="5"' in menu
    assert "20 in · 5 NI · 1 NM · 2 hung up" in menu
    assert f'fill="{heat_colour(1.0)}"' in menu  # the busiest node: the hottest colour
    assert f'fill="{heat_colour(0.5)}"' in language
    assert 'fill="#f1f3f5"' in node_group(svg, "branch_hours")  # no visits: grey
    by_no_match = heat_svg(flow, traffic, "no_match")
    assert f'fill="{heat_colour(1.0)}"' in node_group(by_no_match, "choose_language")
    assert f'fill="{heat_colour(0.25)}"' in node_group(by_no_match, "main_menu")


def test_a_node_with_calls_now_carries_a_badge() -> None:
    svg = heat_svg(bank()["bank-main"], {}, now={"main_menu": 2})
    assert re.search(r'data-node="main_menu"[^>]*>.*?<g class="now" data-now="2">', svg,
                     re.DOTALL)
    assert svg.count('class="now"') == 1


def test_a_subflow_node_links_to_its_flow_and_others_to_their_details() -> None:
    svg = heat_svg(bank()["bank-main"], {})
    assert re.search(r'<a href="/flows/verify-customer"><g [^>]*data-node="verify_for_balance"',
                     svg)  # fmt: skip
    assert re.search(r'<a href="#n-main_menu"><g [^>]*data-node="main_menu"', svg)


def test_arrows_carry_how_often_their_branch_was_taken() -> None:
    branches = {("main_menu", "verify_for_balance"): 6, ("main_menu", "branch_hours"): 2}
    svg = heat_svg(bank()["bank-main"], {}, branches=branches)
    assert re.search(r'<path class="edge down taken w5" [^>]*><title>6× choice 1</title>', svg)
    assert re.search(r'<path class="edge down taken w2" [^>]*><title>2× choice 4</title>', svg)
    assert re.search(r'<path class="edge down" [^>]*><title>choice 2</title>', svg)  # untaken


def test_search_finds_a_node_by_id_and_by_prompt_text_in_any_language() -> None:
    flow = bank()["bank-main"]
    assert "main_menu" in found_nodes(flow, "挂失")  # the Mandarin prompt: "report a loss"
    assert found_nodes(flow, "MAIN_menu") == {"main_menu"}
    assert "ask_card_digits" in found_nodes(flow, "  card  number ")
    assert found_nodes(flow, "") == set()
    assert found_nodes(flow, "no such words anywhere") == set()
    svg = heat_svg(flow, {}, find="挂失")
    assert 'class="node heat input found"' in node_group(svg, "main_menu")


def test_prompts_in_every_language_and_reprompts_are_listed() -> None:
    texts = dict(prompt_texts(bank()["bank-main"].nodes["main_menu"]))
    assert texts["main_menu"]["en"].startswith("For your account balance")
    assert "余额" in texts["main_menu"]["zh"]
    assert "main_menu.no_input.2" in texts and texts["sorry"]["zh"]


def test_hostile_flow_text_is_escaped_in_the_svg_and_the_page() -> None:
    flow = load_text(HOSTILE, "evil.yaml")
    svg = heat_svg(flow, {"menu": Traffic(visits=3)}, find="<script>")
    page = pages.flow_page(flow, {"menu": Traffic(visits=3)}, day="2027-01-04", metric="visits",
                           qa=False, find="<script>alert(2)</script>", errors=0)  # fmt: skip
    for text in (svg, page):
        assert "<script>" not in text.replace('<script src="/static/flowmap.js" defer>', "")
        assert "<img" not in text and "</svg><script" not in text
        assert "onerror=alert" not in text.replace("onerror=alert(1)&gt;", "")
    assert html.escape("<img src=x onerror=alert(1)>") in page  # shown, as text
    assert "&lt;/title&gt;&lt;script&gt;" in svg  # the condition on its arrow's label
    assert node_group(svg, "menu").count("found") == 1  # "<script>" is in the prompt text


def test_timeline_rows_describe_keys_speech_and_recordings_in_order() -> None:
    record = Timeline({"call_id": "c1", "started_at": 1799028000.0}, [
        {"seq": 1, "t": 0.0, "kind": "call_start", "node": None, "flow": None,
         "data": {"caller": "+861", "called": "95588", "transport": "sip", "flow": "bank-main"}},
        {"seq": 2, "t": 1.5, "kind": "input", "node": "ask_pin", "flow": "verify-customer",
         "data": {"mode": "dtmf", "value": "****"}},
        {"seq": 3, "t": 2.25, "kind": "input", "node": "main_menu", "flow": "bank-main",
         "data": {"mode": "speech", "value": "balance", "confidence": 0.8731}},
        {"seq": 4, "t": 9.0, "kind": "recording", "node": "voicemail", "flow": "bank-main",
         "data": {"path": "/x.wav", "duration": 4.0}},
        {"seq": 5, "t": 9.5, "kind": "strange", "node": None, "flow": None, "data": {"a": 1}},
    ])  # fmt: skip
    out = rows(record)
    assert [r.seq for r in out] == [1, 2, 3, 4, 5]
    assert out[0].text.startswith("call from +861 to 95588") and out[0].at == "02:00:00.000"
    assert out[1].text == "keys ****" and out[1].category == "input"
    assert out[2].text == "said “balance” (confidence 0.87)" and out[2].at == "02:00:02.250"
    assert out[3].recording == 1 and "4.0 s" in out[3].text
    assert out[4].text == "strange a=1" and out[4].category == "other"
    assert describe("action", {"ok": False, "error": "timeout", "via": "webhook",
                               "duration": 2.0}) == "webhook failed: timeout in 2.0 s"  # fmt: skip
