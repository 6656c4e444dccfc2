"""`ivr report`'s managers' figures against numbers worked out by hand, in every format.

The day of tests/test_report_queues.py (20 queued calls, 2 IVR-only, agents' shifts), plus an
evening hour (17:00-18:00 UTC) of four self-service calls with survey answers, authentication,
webhooks, languages and called numbers, two refused calls, and a QA call and a QA refusal that
production figures leave out. Every expected figure is a literal with its arithmetic beside it.
The HTML is parsed and its tables must be the text report's, cell for cell; the CSV must parse
and carry the JSON's values.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from test_report_queues import DAY, agent_states, clock, day_of_calls
from test_store import CallEvents

from ivr.cli.main import main
from ivr.core.events import Event
from ivr.store.db import CallStore
from ivr.store.managers import (
    MAX_INTERVALS,
    Figures,
    fill_intervals,
    interval_label,
    percentile,
)
from ivr.store.refused import RefusedCall


def survey_call(name: str, start: str, *, called: str, csat: int | None, fcr: int | None,
                duration: float, outcome: str = "self_service", language: str = "en",
                qa: bool = False) -> CallEvents:  # fmt: skip
    call = CallEvents(name, wall=DAY + clock(start))
    call.events[0].data["called"] = called
    if qa:
        call.events[0].data["qa"] = True
    call.enter("main_menu")
    call.survey = (csat, fcr), duration, outcome, language  # type: ignore[attr-defined]
    return call


def finish(call: CallEvents) -> list[Event]:
    (csat, fcr), duration, outcome, language = call.survey  # type: ignore[attr-defined]
    call.enter("survey", kind="survey")
    call.emit("survey", question="satisfaction", answer=csat)
    call.emit("survey", question="resolved", answer=fcr)
    call.enter("goodbye", kind="hangup").wait(duration - call.t)
    call.emit("hangup", by="flow")
    call.emit("call_end", outcome=outcome, duration=duration, last_node=call.node,
              flow=call.flow, language=language)  # fmt: skip
    return call.events


def authenticate(call: CallEvents, ok: bool, latency: float) -> CallEvents:
    call.enter("ask_account", kind="collect", flow="verify-customer")
    call.node = "check_credentials"
    call.emit("node_enter", kind="action")
    call.wait(latency).emit("action", ok=ok, duration=latency, error=None if ok else "timeout",
                            via="webhook")  # fmt: skip
    if ok:
        call.emit("var_set", name="verified", value=True)
    call.flow = "bank-main"
    return call


def evening() -> list[list[Event]]:
    s1 = authenticate(survey_call("S1", "17:00:00", called="95588", csat=5, fcr=1,
                                  duration=100), ok=True, latency=0.2)  # fmt: skip
    s2 = authenticate(survey_call("S2", "17:05:00", called="95588", csat=3, fcr=2, duration=60,
                                  outcome="transferred"), ok=False, latency=3.0)  # fmt: skip
    s2.emit("transfer", target="sip:fraud@agents.bank.example", ok=True, reason="")
    s3 = survey_call("S3", "17:20:00", called="95566", csat=1, fcr=1, duration=40,
                     language="zh")  # fmt: skip
    s3.node = "lookup"
    s3.emit("action", ok=True, duration=0.01, error=None, via="python")  # not a webhook
    s4 = survey_call("S4", "17:50:00", called="95566", csat=None, fcr=None, duration=20)
    q1 = survey_call("Q1", "17:30:00", called="95588", csat=1, fcr=2, duration=500, qa=True)
    return [finish(c) for c in (s1, s2, s3, s4, q1)]


REFUSED = [
    RefusedCall(DAY + clock("17:10:00"), "R1", "+8613900", "95588", 503, "full", "sip"),
    RefusedCall(DAY + clock("17:12:00"), "R2", "+8613900", "4000", 404,
                "No flow for this number", "sip"),
    RefusedCall(DAY + clock("17:20:00"), "R3", "qa", "4001", 404, "No flow for this number",
                "sip", qa=True),
]  # fmt: skip


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    with CallStore(path) as store:
        sink = store.agent_sink()
        for events in [*day_of_calls(), *evening()]:
            store.write_many(events)
        for row in agent_states():
            sink(*row)
        for refusal in REFUSED:
            store.refused(refusal)
        store.flush()
    return path


EVENING = ("--since", "2026-03-02T17:00:00", "--until", "2026-03-02T18:00:00")
THE_DAY = ("--since", "2026-03-02", "--until", "2026-03-02")


def run(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> str:
    assert main(["report", "--db", str(db), *args]) == 0
    return capsys.readouterr().out


def managers(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(capsys, db, *args, "--format", "json"))["managers"]
    return data


def test_the_evening_by_hand(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = managers(capsys, db, *EVENING, "--interval", "15")
    o = m["overall"]
    assert {k: o[k] for k in ("offered", "answered", "refused", "answer_rate", "ended",
                              "containment", "opt_out_rate")} == {
        "offered": 6, "answered": 4, "refused": 2,  # S1-S4; R1, R2 (Q1 and R3 are QA)
        "answer_rate": 0.6667,  # 4 / 6
        "ended": 4,
        "containment": 0.75,  # S1 S3 S4 self-service; S2 transferred
        "opt_out_rate": 0.25,  # S2: 1 / 4
    }  # fmt: skip
    # CSAT: satisfaction S1 5, S2 3, S3 1 (S4 skipped): >= 4 is S1 alone -> 1 / 3. (Their
    # average, 3.0, is not a CSAT.) FCR: resolved S1 1, S2 2, S3 1 -> 2 / 3.
    assert (o["csat"], o["csat_responses"], o["fcr"], o["fcr_responses"]) == (0.3333, 3,
                                                                              0.6667, 3)
    # Durations S4 20, S3 40, S2 60, S1 100; nearest rank: p50 = 2nd, p90 = p99 = 4th.
    assert (o["duration_p50"], o["duration_p90"], o["duration_p99"]) == (40.0, 100.0, 100.0)
    assert o["queue_offered"] == 0 and o["service_level"] == 0.0
    assert [(i["label"], i["offered"], i["answered"], i["refused"], i["answer_rate"])
            for i in m["intervals"]] == [
        ("2026-03-02 17:00", 4, 2, 2, 0.5),  # S1 S2, R1 R2
        ("2026-03-02 17:15", 1, 1, 0, 1.0),  # S3
        ("2026-03-02 17:30", 0, 0, 0, 0.0),  # quiet (Q1 is QA): shown, so a trend has no gap
        ("2026-03-02 17:45", 1, 1, 0, 1.0),  # S4
    ]  # fmt: skip
    assert [(g["label"], g["offered"], g["answered"], g["csat"]) for g in m["by_language"]] == [
        ("-", 2, 0, 0.0),  # the refusals have no language
        ("en", 3, 3, 0.5),  # S1 S2 S4: satisfaction 5, 3 -> 1 / 2
        ("zh", 1, 1, 0.0),  # S3: 1
    ]  # fmt: skip
    assert [(g["label"], g["offered"], g["answered"], g["answer_rate"])
            for g in m["by_called"]] == [
        ("4000", 1, 0, 0.0), ("95566", 2, 2, 1.0),
        ("95588", 3, 2, 0.6667),  # S1 S2, R1
    ]  # fmt: skip
    assert m["flows"] == [{"flow": "bank-main", "ended": 4, "opted_out": 1, "auth_attempted": 2,
                           "auth_succeeded": 1, "opt_out_rate": 0.25,
                           "auth_success_rate": 0.5}]  # fmt: skip
    # Webhooks: S1 0.2 s ok, S2 3.0 s failed (S3's Python action is not one).
    assert m["webhooks"] == {"flow": "", "node": "", "requests": 2, "errors": 1,
                             "error_rate": 0.5, "latency_average": 1.6, "latency_p50": 0.2,
                             "latency_p90": 3.0, "latency_max": 3.0}  # fmt: skip
    assert [(w["flow"], w["node"]) for w in m["webhook_nodes"]] == [
        ("verify-customer", "check_credentials")]
    assert m["refusals"] == {"404 No flow for this number": 1, "503 full": 1}
    assert (m["include_qa"], m["qa_left_out"]) == (False, 2)  # Q1 and R3


def test_qa_calls_count_only_when_asked(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    o = managers(capsys, db, *EVENING, "--include-qa")["overall"]
    # Q1 (500 s, satisfaction 1, resolved 2) and R3 join: 5 answered of 8 offered.
    assert (o["offered"], o["answered"], o["refused"], o["answer_rate"]) == (8, 5, 3, 0.625)
    assert (o["csat"], o["fcr"]) == (0.25, 0.5)  # 1 / 4; 2 / 4
    # 20 40 60 100 500: p50 = 3rd, p90 = 5th (ceil 4.5)
    assert (o["duration_p50"], o["duration_p90"]) == (60.0, 500.0)
    assert "QA calls left out: 2" in run(capsys, db, *EVENING)
    assert "QA calls included" in run(capsys, db, *EVENING, "--include-qa")


def test_the_day_reuses_the_queue_figures(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = managers(capsys, db, *THE_DAY, "--interval", "day")
    o = m["overall"]
    # 22 calls of the queue day + S1-S4 answered; R1 R2 refused.
    assert (o["offered"], o["answered"], o["answer_rate"]) == (28, 26, 0.9286)  # 26 / 28
    # Over both queues (20 entries, 20 s thresholds): in time general 4 + accounts 2 (A2 10,
    # A6 12) = 6 / 20; ASA (178 + 87) / 11; AHT (1200 + 790) / 11; abandons not short:
    # G7 G8 A4 = 3 / 20.
    assert {k: o[k] for k in ("queue_offered", "service_level", "average_speed_of_answer",
                              "average_handle_time", "queue_abandon_rate")} == {
        "queue_offered": 20, "service_level": 0.3, "average_speed_of_answer": 24.091,
        "average_handle_time": 180.909, "queue_abandon_rate": 0.15}  # fmt: skip
    # G11 answered satisfaction 4 too: S1 5, G11 4 of 4 answers.
    assert (o["csat"], o["csat_responses"]) == (0.5, 4)
    assert [(i["label"], i["offered"]) for i in m["intervals"]] == [("2026-03-02", 28)]


def test_one_flow_leaves_the_refusals_out(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    o = managers(capsys, db, *EVENING, "--flow", "bank-main")["overall"]
    assert (o["offered"], o["refused"], o["answer_rate"]) == (4, 0, 1.0)  # refusals: no flow


def test_what_counts_is_a_choice(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    o = managers(capsys, db, *EVENING, "--csat-satisfied", "3", "--fcr-yes", "2")["overall"]
    assert (o["csat"], o["fcr"]) == (0.6667, 0.3333)  # S1 5, S2 3 of 3; S2 alone of 3


class Tables(HTMLParser):
    """The cells of every ``data-table`` table of a page, and what a page must not hold."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: str | None = None
        self.cell: list[str] | None = None
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        key = dict(attrs).get("data-table")
        if tag == "table" and key:
            self.current = key
            self.tables[key] = []
        elif tag == "tr" and self.current:
            self.tables[self.current].append([])
        elif tag in ("td", "th") and self.current:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.current and self.cell is not None:
            self.tables[self.current][-1].append("".join(self.cell))
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def text_tables(text: str) -> dict[str, list[list[str]]]:
    """The managers' tables of the text report, by title, split on runs of two spaces."""
    out: dict[str, list[list[str]]] = {}
    for block in text.split("\n\n"):
        title, *rows = block.splitlines()
        if rows and not title.startswith(" "):
            out[title] = [re.split(r" {2,}", row.strip()) for row in rows]
    return out


TITLES = {"headline": "Managers' figures", "intervals": "Per interval (15 min, UTC)",
          "languages": "Per language", "called": "Per called number", "flows": "Per flow",
          "webhooks": "Webhooks", "refusals": "Refused before answer"}  # fmt: skip


def test_the_html_page_shows_the_text_reports_figures(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = run(capsys, db, *EVENING, "--interval", "15")
    page = tmp_path / "report.html"
    assert run(capsys, db, *EVENING, "--interval", "15", "--format", "html", "-o",
               str(page)) == ""  # fmt: skip
    parser = Tables()
    parser.feed(page.read_text(encoding="utf-8"))
    expected = text_tables(text)
    assert set(parser.tables) == set(TITLES)
    for key, title in TITLES.items():
        assert parser.tables[key] == expected[title], key
    headline = dict(row for row in parser.tables["headline"][1:])  # type: ignore[misc]
    assert headline["answer rate"] == "66.7 %"  # 4 / 6, as the JSON's 0.6667
    assert headline["CSAT (satisfaction >= 4)"] == "33.3 % of 3"
    # Self-contained: SVG charts drawn in the page, no script, nothing fetched.
    tags = [tag for tag, _ in parser.tags]
    assert "script" not in tags and tags.count("svg") >= 2
    assert not [a for _, attrs in parser.tags for k, a in attrs.items()
                if k in ("src", "href") and a]  # fmt: skip
    charts = [attrs["data-chart"] for tag, attrs in parser.tags if tag == "svg"
              and attrs.get("data-chart")]  # fmt: skip
    assert charts == ["calls", "rates"]
    rects = page.read_text().split('data-chart="calls"')[1].split("</svg>")[0].count("<rect")
    assert rects == 2 * 4  # answered and refused bars for the four intervals
    quiet = next(row for row in parser.tables["intervals"] if row[0] == "2026-03-02 17:30")
    assert quiet[1:5] == ["0", "0", "0", "-"]  # no answer rate over no calls
    # The flow, queue and agent tables, as the text prints them.
    detail = page.read_text().split('data-table="detail">')[1].split("</pre>")[0]
    assert detail.startswith("Calls: 4 (all flows") and detail in text.replace("'", "&#x27;")


def test_the_csv_parses_and_carries_the_jsons_values(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(run(capsys, db, *EVENING, "--format", "json"))
    rows = list(csv.DictReader(io.StringIO(run(capsys, db, *EVENING, "--format", "csv"))))
    assert rows and set(rows[0]) == {"section", "label", "figure", "value"}
    overall = {r["figure"]: r["value"] for r in rows if r["section"] == "overall"}
    assert float(overall["answer_rate"]) == data["managers"]["overall"]["answer_rate"] == 0.6667
    assert overall["duration_p50"] == "40.0"
    refused = {r["label"]: int(r["value"]) for r in rows if r["section"] == "refused"}
    assert refused == {"404 No flow for this number": 1, "503 full": 1}
    hook = {r["figure"]: r["value"] for r in rows
            if r["section"] == "webhook" and r["label"] == "all"}  # fmt: skip
    assert (hook["requests"], hook["error_rate"]) == ("2", "0.5")


def test_a_hostile_called_number_is_escaped_and_defused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "calls.db"
    with CallStore(path) as store:
        store.refused(RefusedCall(DAY, "x", "a", "=cmd|'/c calc'!A1", 404, "<script>x", "sip"))
        store.refused(RefusedCall(DAY, "y", "a", "<img src=//evil>", 404, "no", "sip"))
    page = run(capsys, path, "--format", "html")
    assert "<script>" not in page and "<img" not in page and "&lt;img src=//evil&gt;" in page
    rows = list(csv.DictReader(io.StringIO(run(capsys, path, "--format", "csv"))))
    labels = {r["label"] for r in rows if r["section"] == "called"}
    assert labels == {"'=cmd|'/c calc'!A1", "<img src=//evil>"}  # a formula stays text


def test_percentiles_and_intervals() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (
        50.0, 90.0, 99.0)
    assert interval_label(DAY + clock("09:14:59"), 15) == "2026-03-02 09:00"
    assert interval_label(DAY + clock("09:15:00"), 15) == "2026-03-02 09:15"
    assert interval_label(DAY + clock("23:59:59"), 1440) == "2026-03-02"
    one, three = Figures(label="2026-03-02 09:00"), Figures(label="2026-03-02 11:00")
    filled = fill_intervals([one, three], [DAY + 9 * 3600, DAY + 11 * 3600], 60)
    assert [f.label for f in filled] == ["2026-03-02 09:00", "2026-03-02 10:00",
                                         "2026-03-02 11:00"]
    assert filled[0] is one and filled[1].offered == 0
    far = [DAY, DAY + (MAX_INTERVALS + 1) * 900.0]  # too many quiet rows: left as they are
    assert fill_intervals([one, three], far, 15) == [one, three]
