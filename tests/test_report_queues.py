"""`ivr report`'s agent-queue figures against numbers worked out by hand.

One day of calls (2026-03-02, UTC) is written through the real store: each call's events as the
enqueue step emits them (tests/test_engine_queue.py runs that step), the agents' state changes
through :meth:`CallStore.agent_sink` as the queue authority reports them. Every expected figure
below is a literal, with its arithmetic beside it. A last test runs real sessions against the
real queue authority on a virtual clock and reports on what they recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_engine_queue import ANN, Centre
from test_store import CallEvents

from ivr.acd.model import QueueSpec
from ivr.cli import main as cli_main
from ivr.cli.main import main
from ivr.core import events as ev
from ivr.core.events import Event
from ivr.sim.channel import AgentPlan
from ivr.store.db import CallStore, connect
from ivr.store.queuereport import service_levels_of
from ivr.store.report import build_report, format_json

DAY = 1_772_409_600.0  # 2026-03-02T00:00:00Z
H = 3600.0
IVR_TIME = 10.0  # every queued call spends 10 s in the IVR before it joins its queue
RING = 3.0  # the answering agent's phone rings 3 s before the answer
WRAP_UP = {"ann": 30.0, "bob": 10.0}


class QueueCall(CallEvents):
    """One call's events as the session and the enqueue step emit them."""

    def __init__(self, call_id: str, start: float) -> None:
        super().__init__(call_id, flow="bank-main", wall=DAY + start)
        self.enter("main_menu")
        self.press("0", "agent").wait(IVR_TIME - self.t)
        self.node = "agent"
        self.emit("node_enter", kind="enqueue")
        self.joined = self.t

    def join(self, queue: str) -> QueueCall:
        self.queue = queue
        self.emit("queue", queue=queue, priority=5, skills=[], tier="general")
        self.emit("prompt", prompt="agent", text="Please hold.", language="en")
        return self

    def waited(self) -> float:
        return round(self.t - self.joined, 3)

    def answer(self, agent: str, wait: float, talk: float, after: bool = False) -> list[Event]:
        if self.call_id == "G5":  # ann let it ring out once (see agent_states)
            self.wait(2).emit("agent_ring", agent=agent).wait(15)
            self.emit("agent_result", agent=agent, outcome="no_answer")
        self.wait(wait - self.waited() - RING).emit("agent_ring", agent=agent).wait(RING)
        self.emit("agent_connected", agent=agent, queue_wait=self.waited()).wait(talk)
        self.emit("agent_done", agent=agent, talk=talk)
        if after:  # the flow goes on to a survey: a self-service ending, not contained
            self.emit("match", branch="after", target="survey")
            self.enter("survey", kind="survey").emit("survey", question="satisfaction",
                                                      answer=4)  # fmt: skip
            self.enter("goodbye", kind="hangup")
            return self.end("self_service", hangup_by="flow")
        return self.end("agent", hangup_by="flow")

    def hang_up(self, wait: float) -> list[Event]:
        self.wait(wait).emit("hangup", by="caller", queue_wait=self.waited())
        self.emit("call_end", outcome="abandoned_in_queue", duration=self.t,
                  last_node=self.node, flow=self.flow, language="en")  # fmt: skip
        return self.events

    def exit(self, reason: str, wait: float, target: str | None, outcome: str) -> list[Event]:
        self.wait(wait).emit("queue_exit", reason=reason, queue_wait=self.waited())
        if target is not None:
            self.emit("match", branch=f"on_{reason}", target=target)
            self.enter(target, kind="hangup")
        return self.end(outcome, hangup_by="flow")

    def callback(self, wait: float) -> list[Event]:
        self.wait(wait).emit("queue_exit", reason="key", key="1", queue_wait=self.waited())
        self.emit("callback", number="+8613800")
        self.emit("prompt", prompt="queue_callback", text="We will call you back.",
                  language="en").wait(3)  # fmt: skip
        return self.end("callback_requested", hangup_by="flow")


def clock(text: str) -> float:
    """Seconds after midnight of "HH:MM:SS"."""
    h, m, s = (int(part) for part in text.split(":"))
    return h * H + m * 60 + s


# (call, queue, start, fate, ...): the day's 20 queued calls. For the answered: agent, wait,
# talk; the answering agent rang RING s before the answer and wraps up WRAP_UP[agent] after.
ANSWERED = [
    ("G1", "general", "09:00:00", "ann", 8, 120),
    ("A1", "accounts", "09:05:00", "bob", 25, 240),
    ("G2", "general", "09:10:00", "bob", 15, 200),
    ("G3", "general", "09:20:00", "ann", 20, 90),
    ("G4", "general", "09:30:00", "bob", 45, 300),
    ("A2", "accounts", "09:40:00", "ann", 10, 150),
    ("G5", "general", "10:00:00", "ann", 60, 180),
    ("A5", "accounts", "11:30:00", "ann", 40, 200),
    ("A6", "accounts", "12:30:00", "bob", 12, 120),
    ("G12", "general", "14:00:00", "ann", 25, 100),
]
AFTER_SURVEY = ("G11", "general", "11:20:00", "bob", 5, 60)  # answered, then the survey


def day_of_calls() -> list[list[Event]]:
    calls = []
    for name, queue, start, agent, wait, talk in ANSWERED:
        calls.append(QueueCall(name, clock(start)).join(queue).answer(agent, wait, talk))
    name, queue, start, agent, wait, talk = AFTER_SURVEY
    calls.append(QueueCall(name, clock(start)).join(queue).answer(agent, wait, talk, after=True))
    calls += [
        QueueCall("G6", clock("10:30:00")).join("general").hang_up(3),  # a short abandon
        QueueCall("G7", clock("10:40:00")).join("general").hang_up(50),
        QueueCall("G8", clock("10:50:00")).join("general").hang_up(90),
        QueueCall("G9", clock("11:00:00")).join("general").callback(40),
        QueueCall("G10", clock("11:10:00")).join("general").exit("max_wait", 120,
                                                                 "voicemail", "voicemail"),
        QueueCall("A3", clock("10:10:00")).join("accounts").hang_up(4),  # a short abandon
        QueueCall("A4", clock("10:20:00")).join("accounts").hang_up(35),
        QueueCall("A8", clock("12:40:00")).join("accounts").exit("full", 0, None, "unanswered"),
        QueueCall("A7", clock("15:59:00")).join("accounts").events,  # still waiting
    ]
    # Two calls that never asked for an agent: one served by the flow, one hung up in it.
    served = CallEvents("I1", wall=DAY + clock("08:30:00")).enter("main_menu")
    served.press("4", "branch_hours").enter("branch_hours", kind="say")
    calls.append(served.end("self_service", hangup_by="flow"))
    calls.append(CallEvents("I2", wall=DAY + clock("08:40:00")).enter("main_menu")
                 .end("abandoned", hangup_by="caller"))  # fmt: skip
    return calls


def agent_states() -> list[tuple[str, str, str, float]]:
    """The authority's reports: shifts, a lunch break, and every answered call's ringing,
    on_call, wrap_up and back to available (plus one missed ring for G5)."""
    rows = [
        ("dan", "logged_out", "", DAY - 3 * 86_400),  # nothing in the period: not listed
        ("cy", "available", "", DAY - 2 * H),  # on since 22:00 the day before ...
        ("cy", "logged_out", "", DAY + 1 * H),  # ... until 01:00
        ("ann", "available", "", DAY + 8 * H),
        ("ann", "paused", "lunch", DAY + 12 * H),
        ("ann", "available", "", DAY + 13 * H),
        ("ann", "logged_out", "", DAY + 16 * H),
        ("bob", "available", "", DAY + 9 * H),
        ("bob", "logged_out", "", DAY + 13 * H),
        # G5: ann missed a ring first (15 s of ringing, no answer)
        ("ann", "ringing", "", DAY + clock("10:00:12")),
        ("ann", "available", "", DAY + clock("10:00:27")),
    ]
    for _name, _queue, start, agent, wait, talk in [*ANSWERED, AFTER_SURVEY]:
        answered = DAY + clock(start) + IVR_TIME + wait
        ended = answered + talk
        rows += [
            (agent, "ringing", "", answered - RING),
            (agent, "on_call", "", answered),
            (agent, "wrap_up", "", ended),
            (agent, "available", "", ended + WRAP_UP[agent]),
        ]
    return sorted(rows, key=lambda row: row[3])


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    with CallStore(path) as store:  # threaded, as the engine uses it
        sink = store.agent_sink()
        for events in day_of_calls():
            for event in events:
                store.sink(event)
        for row in agent_states():
            sink(*row)
        store.flush()
    return path


def with_queues(monkeypatch: pytest.MonkeyPatch, **service_levels: float) -> None:
    """ivr.yaml with ``acd.queues.<q>.service_level`` (the configuration's acd part, as
    :func:`service_levels_of` reads it)."""
    load = cli_main.load_config

    def load_config(path: str | None) -> Any:
        config = load(path)
        queues = {name: QueueSpec(name, service_level=s) for name, s in service_levels.items()}
        object.__setattr__(config, "acd", SimpleNamespace(queues=queues))
        return config

    monkeypatch.setattr(cli_main, "load_config", load_config)


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["report", *args, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


THE_DAY = ("--since", "2026-03-02", "--until", "2026-03-02")

GENERAL = {
    "queue": "general",
    "offered": 12,  # G1..G12
    "answered": 7,  # G1 G2 G3 G4 G5 G11 G12
    "answer_rate": 0.5833,  # 7 / 12
    "service_level": 0.3333,  # waits <= 20 s: G1 8, G2 15, G3 20, G11 5 -> 4 / 12
    "service_level_threshold": 20.0,
    "answered_in_threshold": 4,
    "average_speed_of_answer": 25.429,  # (8 + 15 + 20 + 45 + 60 + 5 + 25) / 7 = 178 / 7
    # talk + wrap-up: ann 120+30, bob 200+10, ann 90+30, bob 300+10, ann 180+30, bob 60+10,
    # ann 100+30 = 150 + 210 + 120 + 310 + 210 + 70 + 130 = 1200; / 7
    "average_handle_time": 171.429,
    "average_talk_time": 150.0,  # (120 + 200 + 90 + 300 + 180 + 60 + 100) / 7 = 1050 / 7
    "abandoned": 3,  # G6 3 s, G7 50 s, G8 90 s
    "short_abandoned": 1,  # G6: under 5 s
    "abandon_rate": 0.1667,  # (3 - 1) / 12
    "callbacks": 1,  # G9
    "callback_rate": 0.0833,  # 1 / 12
    "exits": {"callback": 1, "max_wait": 1},  # G9, G10
    "waiting": 0,
}
ACCOUNTS = {
    "queue": "accounts",
    "offered": 8,  # A1..A8
    "answered": 4,  # A1 A2 A5 A6
    "answer_rate": 0.5,  # 4 / 8
    "service_level": 0.375,  # ivr.yaml's 30 s: A1 25, A2 10, A6 12 -> 3 / 8
    "service_level_threshold": 30.0,
    "answered_in_threshold": 3,
    "average_speed_of_answer": 21.75,  # (25 + 10 + 40 + 12) / 4 = 87 / 4
    # bob 240+10, ann 150+30, ann 200+30, bob 120+10 = 250 + 180 + 230 + 130 = 790; / 4
    "average_handle_time": 197.5,
    "average_talk_time": 177.5,  # (240 + 150 + 200 + 120) / 4 = 710 / 4
    "abandoned": 2,  # A3 4 s, A4 35 s
    "short_abandoned": 1,  # A3
    "abandon_rate": 0.125,  # (2 - 1) / 8
    "callbacks": 0,
    "callback_rate": 0.0,
    "exits": {"full": 1},  # A8
    "waiting": 1,  # A7: the call has not ended
}
AGENTS = [
    {
        "agent": "ann",
        "answered": 6,  # G1 G3 A2 G5 A5 G12
        "average_handle_time": 170.0,  # (150 + 120 + 180 + 210 + 230 + 130) / 6 = 1020 / 6
        "occupancy": 0.0405,  # 1020 / 25200
        "staffed_time": 25200.0,  # 08:00-12:00 and 13:00-16:00: 7 h
        "busy_time": 1020.0,  # on the calls and their wrap-ups
        "paused_time": 3600.0,  # lunch
    },
    {
        "agent": "bob",
        "answered": 5,  # A1 G2 G4 G11 A6
        "average_handle_time": 194.0,  # (250 + 210 + 310 + 70 + 130) / 5 = 970 / 5
        "occupancy": 0.0674,  # 970 / 14400
        "staffed_time": 14400.0,  # 09:00-13:00
        "busy_time": 970.0,
        "paused_time": 0.0,
    },
    {
        "agent": "cy",  # logged in at 22:00 the day before: the period holds 00:00-01:00
        "answered": 0, "average_handle_time": 0.0, "occupancy": 0.0,
        "staffed_time": 3600.0, "busy_time": 0.0, "paused_time": 0.0,
    },
]  # fmt: skip


def test_the_day_per_queue_and_per_agent(db: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with_queues(monkeypatch, accounts=30.0)  # general has no threshold in ivr.yaml: 20 s
    data = report_json(capsys, "--db", str(db), *THE_DAY)
    assert data["queues"] == [ACCOUNTS, GENERAL]
    assert data["agents"] == AGENTS
    assert data["short_abandon"] == 5.0


def test_the_day_over_all_calls(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys, "--db", str(db), *THE_DAY)
    assert (data["calls"], data["ended"]) == (22, 21)  # A7 has not ended
    assert data["outcomes"] == {
        "agent": 10,  # the answered calls but G11
        "self_service": 2,  # G11 (after its agent) and I1
        "abandoned_in_queue": 5,  # G6 G7 G8 A3 A4
        "abandoned": 1,  # I2
        "callback_requested": 1, "voicemail": 1, "unanswered": 1,  # G9, G10, A8
    }  # fmt: skip
    assert (data["abandoned_in_ivr"], data["abandoned_in_queue"]) == (1, 5)
    assert (data["contained"], data["queued"], data["answered_by_agent"]) == (1, 19, 11)
    assert {k: data[k] for k in ("containment", "transfer_rate", "queue_rate", "agent_rate",
                                 "abandonment", "queue_abandonment", "failure_rate")} == {
        "containment": 0.0476,  # I1 alone: G11 ended self_service but an agent served it; 1 / 21
        "transfer_rate": 0.0,
        "queue_rate": 0.9048,  # 19 / 21: the 20 queued calls but A7, still waiting
        "agent_rate": 0.5238,  # 11 / 21
        "abandonment": 0.0476,  # in the IVR: I2; 1 / 21
        "queue_abandonment": 0.2381,  # 5 / 21
        "failure_rate": 0.0,
    }  # fmt: skip
    # Without ivr.yaml's threshold, accounts has the default 20 s: A2 10, A6 12 -> 2 / 8
    accounts = data["queues"][0]
    assert (accounts["service_level_threshold"], accounts["service_level"]) == (20.0, 0.25)


def test_thresholds_from_the_command_line(db: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with_queues(monkeypatch, accounts=30.0)
    data = report_json(capsys, "--db", str(db), *THE_DAY, "--service-level", "10",
                       "--short-abandon", "40")  # fmt: skip
    accounts, general = data["queues"]
    assert accounts["service_level"] == 0.375  # ivr.yaml's 30 s still holds for accounts
    # general at 10 s: G1 8, G11 5 -> 2 / 12
    assert (general["service_level_threshold"], general["service_level"]) == (10.0, 0.1667)
    # short under 40 s: G6 3 (G7 50, G8 90 are not) -> (3 - 1) / 12; A3 4, A4 35 -> 0 / 8
    assert (general["short_abandoned"], general["abandon_rate"]) == (1, 0.1667)
    assert (accounts["short_abandoned"], accounts["abandon_rate"]) == (2, 0.0)
    with pytest.raises(SystemExit) as usage:  # argparse's own usage error
        main(["report", "--db", str(db), "--service-level", "soon"])
    assert usage.value.code == 2
    assert "not a number of seconds: 'soon'" in capsys.readouterr().err


def test_a_part_of_the_day(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report_json(capsys, "--db", str(db), "--since", "2026-03-02T09:00:00",
                       "--until", "2026-03-02T09:30:00")  # fmt: skip
    # Calls started 09:00-09:30: G1 G2 G3 (general), A1 (accounts).
    assert [(q["queue"], q["offered"], q["answered"]) for q in data["queues"]] == [
        ("accounts", 1, 1), ("general", 3, 3)]
    ann, bob = data["agents"]  # cy is not on in this half hour
    # ann: available since 08:00, so all 1800 s staffed; busy: G1 150 + G3 120 = 270
    assert (ann["staffed_time"], ann["busy_time"], ann["occupancy"]) == (1800.0, 270.0, 0.15)
    # bob: A1 250 + G2 210 = 460 of 1800 s
    assert (bob["staffed_time"], bob["busy_time"], bob["occupancy"]) == (1800.0, 460.0, 0.2556)
    # The figures are those of the period: G4 (started 09:30) is out, its agent's time too.
    assert bob["answered"] == 2


def test_the_text_shows_the_same_figures(db: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with_queues(monkeypatch, accounts=30.0)
    assert main(["report", "--db", str(db), *THE_DAY]) == 0
    lines = capsys.readouterr().out.splitlines()

    def row(first: str) -> list[str]:
        return next(line for line in lines if line.split()[:1] == [first]).split()

    assert "  containment (self-service)     4.8 %" in lines
    assert "  abandoned in the IVR           4.8 %" in lines
    assert "  abandoned in a queue          23.8 %" in lines
    # queue, offered, answered (rate), service level (threshold), ASA, AHT, abandoned, short,
    # abandon rate, callbacks (rate), waiting
    assert row("general") == ["general", "12", "7", "(58.3", "%)", "33.3", "%", "(20", "s)",
                              "25.4", "171.4", "3", "1", "16.7", "%", "1", "(8.3", "%)", "0"]
    assert row("accounts") == ["accounts", "8", "4", "(50.0", "%)", "37.5", "%", "(30", "s)",
                               "21.8", "197.5", "2", "1", "12.5", "%", "0", "(0.0", "%)", "1"]
    assert "  left unanswered by an exit: accounts: full 1; general: callback 1, max_wait 1" \
        in lines  # fmt: skip
    # agent, answered, AHT, occupancy, staffed, busy, paused (seconds)
    assert row("ann") == ["ann", "6", "170.0", "4.0", "%", "25200.0", "1020.0", "3600.0"]
    assert row("bob") == ["bob", "5", "194.0", "6.7", "%", "14400.0", "970.0", "0.0"]
    assert row("cy") == ["cy", "0", "0.0", "0.0", "%", "3600.0", "0.0", "0.0"]


def test_handle_time_is_the_talk_alone_when_the_wrap_up_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with CallStore(path, threaded=False) as store:  # no agents' record at all
        store.write_many(QueueCall("X", clock("09:00:00")).join("general")
                         .answer("eve", 6, 100))  # fmt: skip
    conn = connect(path)
    try:
        report = build_report(conn, now=DAY + 86_400)
    finally:
        conn.close()
    [queue] = [q.as_dict() for q in report.queues]
    assert (queue["average_handle_time"], queue["average_talk_time"]) == (100.0, 100.0)
    [eve] = [a.as_dict() for a in report.agents]
    assert (eve["answered"], eve["average_handle_time"], eve["occupancy"]) == (1, 100.0, 0.0)


def test_service_levels_are_read_from_either_shape_of_acd_queues() -> None:
    specs = [QueueSpec("general", service_level=15), QueueSpec("vip", service_level=10.5)]
    as_list = SimpleNamespace(acd=SimpleNamespace(queues=specs))
    as_map = SimpleNamespace(acd=SimpleNamespace(queues={s.name: s for s in specs}))
    assert service_levels_of(as_list) == service_levels_of(as_map) == {"general": 15.0,
                                                                       "vip": 10.5}
    assert service_levels_of(SimpleNamespace()) == {}  # an ivr.yaml without acd
    assert service_levels_of(SimpleNamespace(acd=SimpleNamespace(queues=None))) == {}
    odd = SimpleNamespace(acd=SimpleNamespace(queues={"q": SimpleNamespace(service_level=None)}))
    assert service_levels_of(odd) == {}


def test_what_real_sessions_and_the_real_authority_record(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    store = CallStore(path)
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=4, handle=60)})  # wrap-up 5 s
    centre.clock.set_wall(DAY + 9 * H)
    centre.authority.on_state = store.agent_sink()
    centre.ready("ann")  # t = 0
    first = centre.call()  # ann rings at once, answers at 4 s, talks 60 s
    centre.clock.advance(10)
    second = centre.call()  # joins at 10 s while ann is on the first call
    centre.clock.advance(20)
    second.hangup()  # at 30 s: abandoned after 20 s
    centre.clock.advance(34)  # 64 s: ann hangs up; the flow thanks the first caller
    first.finish_prompt()
    centre.clock.advance(100 - centre.clock.now())
    centre.authority.logout("ann")
    assert (first.outcome, second.outcome) == ("self_service", "abandoned_in_queue")
    for call in (first, second):
        store.write_many(call.events)
    store.close()
    conn = connect(path)
    try:
        report = build_report(conn, since="2026-03-02", until="2026-03-02", now=DAY + 86_400)
    finally:
        conn.close()
    data = json.loads(format_json(report))
    [general] = data["queues"]
    assert {k: general[k] for k in ("offered", "answered", "service_level",
                                    "average_speed_of_answer", "average_handle_time",
                                    "abandoned", "abandon_rate")} == {
        "offered": 2, "answered": 1, "service_level": 0.5,  # 4 s <= 20 s; 1 / 2
        "average_speed_of_answer": 4.0,
        "average_handle_time": 65.0,  # 60 s talk + ann's 5 s wrap-up
        "abandoned": 1, "abandon_rate": 0.5,  # 20 s is no short abandon; 1 / 2
    }  # fmt: skip
    # ann: on from 0 to 100 s; on the call 4-64 s and wrapping up 64-69 s: 65 / 100
    assert data["agents"] == [{"agent": "ann", "answered": 1, "average_handle_time": 65.0,
                               "occupancy": 0.65, "staffed_time": 100.0, "busy_time": 65.0,
                               "paused_time": 0.0}]  # fmt: skip
    assert (data["containment"], data["agent_rate"]) == (0.0, 0.5)  # served, then "thanks"
    assert first.of(ev.AGENT_CONNECTED)[0].data["queue_wait"] == 4.0
