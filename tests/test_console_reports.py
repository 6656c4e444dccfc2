"""The console's report page (ivr/console/reports.py) against ``ivr report``: the console served
on a real port of 127.0.0.1 over the real store of tests/test_report_managers.py (a day of queue
calls, an evening of survey calls, refusals, QA calls), real HTTP, and Debian's chromium driven
by Playwright for the page and for ``ivr report --format html`` (tests/debs.py names a missing
package).

Same figures everywhere: the page's tables must be the text report's, cell for cell; a download
must be ``ivr report --format csv|html`` of the same options, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from test_report_managers import TITLES, Tables, db, text_tables

from ivr.cli.main import main
from ivr.config import load_config
from ivr.console import charts
from ivr.console.reports import Period, PeriodError
from ivr.console.server import ConsoleThread
from ivr.console.source import ConsoleSource, ServerState
from ivr.consoleconf import hash_password
from tests.console_helpers import PASSWORDS, Client, chromium, playwright
from tests.screenshots import screenshot_path

__all__ = ["db"]  # the store fixture, shared with tests/test_report_managers.py

pytestmark = pytest.mark.timeout(180)

EVENING = {"since": "2026-03-02T17:00:00", "until": "2026-03-02T18:00:00", "interval": "15"}
THE_DAY = {"since": "2026-03-02", "until": "2026-03-02", "interval": "60"}


class Served:
    def __init__(self, config: Path, base: str) -> None:
        self.config = config
        self.base = base

    def report(self, capsys: pytest.CaptureFixture[str], query: dict[str, str],
               *extra: str) -> str:  # fmt: skip
        """``ivr report`` with the options of ``query`` (what the page was asked for)."""
        args = ["--since", query["since"], "--until", query["until"], "--interval",
                query["interval"]]  # fmt: skip
        capsys.readouterr()
        assert main(["-c", str(self.config), "report", *args, *extra]) == 0
        return capsys.readouterr().out

    def client(self, name: str) -> Client:
        client = Client(self.base)
        status, _ = client.sign_in(name)
        assert status == 200
        return client


@pytest.fixture()
def served(db: Path, tmp_path: Path) -> Iterator[Served]:
    (tmp_path / "flows").mkdir(exist_ok=True)
    config_path = tmp_path / "ivr.yaml"
    config_path.write_text(yaml.safe_dump({
        "flows_dir": "flows", "store": {"path": str(db)}, "asr": {"backend": "off"},
        "acd": {"control": "acd.sock",
                "agents": {"ann": {"password": "pw-1"}, "bob": {"password": "pw-2"}},
                "queues": {"general": {"service_level": 30}, "cards": {}}},
        "console": {"listen": "127.0.0.1:0", "users": {
            "sue": {"role": "supervisor", "password_hash": hash_password(PASSWORDS["sue"])},
            "vic": {"role": "viewer", "password_hash": hash_password(PASSWORDS["vic"])}}},
    }), encoding="utf-8")  # fmt: skip
    config = load_config(config_path)
    assert config.console is not None
    thread = ConsoleThread(config.console, ConsoleSource(config, ServerState(),
                                                         CollectorRegistry()))  # fmt: skip
    thread.start()
    try:
        assert thread.address is not None
        host, port = thread.address
        yield Served(config_path, f"http://{host}:{port}")
    finally:
        thread.stop()


def tables_of(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def test_the_page_needs_a_session_and_a_viewer_may_read_it(served: Served) -> None:
    anonymous = Client(served.base)
    status, body = anonymous.send("/reports?" + urllib.parse.urlencode(EVENING))
    assert status == 200 and b'action="/login"' in body  # sent to the login form
    assert anonymous.send("/reports/download?format=csv")[0] == 401
    status, body = served.client("vic").send("/reports?" + urllib.parse.urlencode(EVENING))
    assert status == 200 and b'data-table="headline"' in body
    assert b'href="/queues"' not in body  # the queue page is a supervisor's


def test_the_page_shows_the_text_reports_figures(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    status, body = served.client("sue").send("/reports?" + urllib.parse.urlencode(EVENING))
    assert status == 200
    page = tables_of(body.decode())
    expected = text_tables(served.report(capsys, EVENING))
    for key, title in TITLES.items():
        assert page.tables[key] == expected[title], key
    headline = dict(row for row in page.tables["headline"][1:])  # type: ignore[misc]
    assert headline["answer rate"] == "66.7 %"  # 4 of 6 offered (tests/test_report_managers.py)
    charts_shown = [a["data-chart"] for tag, a in page.tags if tag == "svg" and a.get("data-chart")]
    assert charts_shown == ["calls", "rates", "languages", "called", "flows"]
    # No inline style or script: the console's CSP would refuse them.
    assert not [t for t, a in page.tags if t == "script" or "style" in a]


def test_the_queue_and_agent_tables_carry_the_reports_figures(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    status, body = served.client("sue").send("/reports?" + urllib.parse.urlencode(THE_DAY))
    assert status == 200
    page = tables_of(body.decode())
    data = json.loads(served.report(capsys, THE_DAY, "--format", "json"))
    queues = {row[0]: row for row in page.tables["queues"][1:]}
    assert set(queues) == {q["queue"] for q in data["queues"]}
    for q in data["queues"]:
        row = queues[q["queue"]]
        assert row[1] == str(q["offered"])
        assert row[2] == f"{q['answered']} ({100 * q['answer_rate']:.1f} %)"
        assert row[3] == (f"{100 * q['service_level']:.1f} % "
                          f"({q['service_level_threshold']:g} s)")  # fmt: skip
        assert row[4] == f"{q['average_speed_of_answer']:.1f}"
    general = next(q for q in data["queues"] if q["queue"] == "general")
    assert general["service_level_threshold"] == 30  # ivr.yaml's, as ivr report reads it
    agents = {row[0]: row for row in page.tables["agents"][1:]}
    assert {a["agent"]: str(a["answered"]) for a in data["agents"]} == \
        {name: row[1] for name, row in agents.items()}
    bars = body.decode().split('data-chart="queues"')[1].split("</svg>")[0]
    answered = sum(float(v) for v in _values(bars, "answered"))
    assert answered == sum(q["answered"] for q in data["queues"])


def _values(svg: str, series: str) -> list[str]:
    marker = f'data-series="{series}" data-value="'
    return [part.split('"')[0] for part in svg.split(marker)[1:]]


@pytest.mark.parametrize("fmt", ["csv", "html"])
def test_a_download_is_ivr_reports_output(
        served: Served, capsys: pytest.CaptureFixture[str], fmt: str) -> None:  # fmt: skip
    query = urllib.parse.urlencode({**EVENING, "format": fmt})
    client = served.client("vic")
    request = urllib.request.Request(served.base + "/reports/download?" + query)
    with client.opener.open(request, timeout=10) as reply:
        body = reply.read().decode()
        disposition = reply.headers["Content-Disposition"]
    name = f"ivr-report-2026-03-02-17-00-00-2026-03-02-18-00-00.{fmt}"
    assert disposition == f'attachment; filename="{name}"'
    assert body == served.report(capsys, EVENING, "--format", fmt)


def test_qa_calls_and_one_flow_as_the_command_counts_them(
        served: Served, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    client = served.client("sue")
    for extra_query, extra_args in (({"qa": "1"}, ("--include-qa",)),
                                    ({"flow": "bank-main"}, ("--flow", "bank-main"))):
        query = urllib.parse.urlencode({**EVENING, **extra_query})
        status, body = client.send("/reports?" + query)
        assert status == 200
        expected = text_tables(served.report(capsys, EVENING, *extra_args))
        assert tables_of(body.decode()).tables["headline"] == expected["Managers' figures"]


def test_a_bad_period_is_refused_and_hostile_text_is_escaped(served: Served) -> None:
    client = served.client("sue")
    for query in ({"since": "yesterday"}, {"until": "2026-13-45"}, {"interval": "7"},
                  {"since": "2" * 500}, {"flow": "x\x00y"}):  # fmt: skip
        status, body = client.send("/reports?" + urllib.parse.urlencode(query))
        assert status == 400 and body.startswith(b"bad report period: "), (query, body)
    assert client.send("/reports/download?format=exe")[0] == 400
    status, body = client.send("/reports?" + urllib.parse.urlencode(
        {**EVENING, "flow": '"><script>alert(1)</script>'}))  # fmt: skip
    assert status == 200 and b"<script>" not in body and b"&lt;script&gt;" in body


def test_the_period_parser_and_the_bar_chart() -> None:
    today = Period.from_query({}, dt.date(2026, 3, 2))
    assert (today.since, today.until, today.interval, today.flow) == \
        ("2026-03-02", "2026-03-02", "60", "")
    assert Period.from_query({"qa": "1", "since": "2026-03-01T09:00+08:00"},
                             dt.date(2026, 3, 2)).include_qa
    with pytest.raises(PeriodError, match="since"):
        Period.from_query({"since": "9999-99"}, dt.date(2026, 3, 2))
    rows = [(f"n{i}", [i, 1]) for i in range(30)]
    svg = charts.bars_chart("x", rows, ("a", "b"))
    assert svg.count('data-series="a"') == charts.MAX_BARS  # the busiest 20: n10 to n29
    assert ">n29<" in svg and ">n9<" not in svg and "The 20 busiest of 30" in svg
    assert "&lt;b&gt;" in charts.bars_chart("y", [("<b>", [1.0])], ("a",))


# --- a real browser ---------------------------------------------------------------------------


def _dom_tables(page: Any) -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = page.eval_on_selector_all(
        "table[data-table]",
        """els => Object.fromEntries(els.map(t => [t.dataset.table,
            [...t.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.textContent))]))""")
    return tables


def test_in_a_browser_the_html_report_and_the_console_page_match_the_text_report(
        served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    pw_session = playwright()  # a missing package fails before the reports are made
    expected = text_tables(served.report(capsys, EVENING))
    html_file = tmp_path / "report.html"
    served.report(capsys, EVENING, "--format", "html", "-o", str(html_file))
    with pw_session as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            refused: list[str] = []
            page.on("console", lambda msg: refused.append(msg.text)
                    if "Content Security Policy" in msg.text else None)
            # ivr report --format html, opened from a file as a manager would.
            page.goto(html_file.as_uri())
            assert page.locator("svg[data-chart=calls] rect").count() == 2 * 4
            in_file = _dom_tables(page)
            for key, title in TITLES.items():
                assert in_file[key] == expected[title], key
            # The console's page, the period picked in its form.
            page.goto(served.base + "/reports")
            page.fill("input[name=name]", "sue")
            page.fill("input[name=password]", PASSWORDS["sue"])
            page.click("button[type=submit]")
            page.wait_for_selector("#agents")  # the wallboard after the login
            page.goto(served.base + "/reports")
            for name in ("since", "until"):
                page.fill(f"#period input[name={name}]", EVENING[name])
            page.select_option("#period select[name=interval]", "15")
            page.click("#period button[type=submit]")
            page.wait_for_selector("table[data-table=intervals]")
            assert "since=2026-03-02T17%3A00%3A00" in page.url
            on_page = _dom_tables(page)
            for key, title in TITLES.items():
                assert on_page[key] == expected[title], key
            assert page.locator("svg[data-chart=rates] circle").count() > 0
            page.screenshot(path=str(screenshot_path("console-reports.png", tmp_path)),
                            full_page=True)  # fmt: skip
            with page.expect_download() as info:
                page.click("#download-csv")
            downloaded = Path(info.value.path()).read_text(encoding="utf-8")
            assert downloaded == served.report(capsys, EVENING, "--format", "csv")
            assert refused == []
        finally:
            browser.close()
