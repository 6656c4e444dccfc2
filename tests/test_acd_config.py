"""``acd:`` in ivr.yaml (ivr/acd/config.py) and the flows checked against it (ivr/acd/checks.py),
through the real CLI.

Every mistake stops the command with one line on stderr, ``ivr.yaml:LINE:COL: reason`` (or
``queues.yaml:...`` for the file ``acd.file`` names) and exit status 2; an enqueue naming no
queue is a flow error at the node; a password or PIN is never printed, logged or repr'd.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from ivr.acd.config import AcdConfig, AgentAccount
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.cli.main import main
from ivr.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
SECRET = "hunter2-Zq9"  # a password that must never be shown
PIN = "739146"
# the repository's ivr.yaml without its acd: section (flows, numbers, transfer_allow ...)
BANK = (ROOT / "ivr.yaml").read_text(encoding="utf-8").split("\nacd:")[0] + "\n"


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a copy of the repository's flows; ivr.yaml is written by each test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    return tmp_path


def ivr(here: Path, text: str, capsys: pytest.CaptureFixture[str], *args: str
        ) -> tuple[int, list[str], list[str]]:  # fmt: skip
    """Write ivr.yaml, run ``ivr <args>`` (validate by default): status, stdout, stderr lines."""
    (here / "ivr.yaml").write_text(text, encoding="utf-8")
    status = main(list(args or ["validate"]))
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.splitlines()


def acd(agents: str = "    ann: {password: pw}\n", queues: str = "    general: {}\n") -> str:
    return f"acd:\n  agents:\n{agents}  queues:\n{queues}"


MISTAKES = {
    "agent line attempts out of range": (
        acd() + "  agent_line: {attempts: 0}\n",
        "ivr.yaml:6:26: acd.agent_line.attempts must be 1 to 20, not 0",
    ),
    "agent line lockout not positive": (
        acd() + "  agent_line: {lockout: -5}\n",
        "ivr.yaml:6:25: acd.agent_line.lockout must be more than 0, not -5",
    ),
    "agent line pause reason not an id": (
        acd() + "  agent_line: {reasons: [break, 'lunch time']}\n",
        "ivr.yaml:6:33: acd.agent_line.reasons[1]: a pause reason is letters, digits, '.', '_' "
        "and '-', starting with a letter or digit",
    ),
    "callback trunk without the number": (
        acd() + "  callback: {trunk: 'sip:desk@127.0.0.1:5090'}\n",
        "ivr.yaml:6:21: acd.callback.trunk must be a sip: URI with {number}, e.g. "
        "sip:{number}@127.0.0.1:5090, not 'sip:desk@127.0.0.1:5090'",
    ),
    "unknown key in acd": (
        "acd:\n  relm: bank\n",
        "ivr.yaml:2:3: unknown key 'relm' in acd (did you mean 'realm'?)",
    ),
    "unknown key in an agent": (
        acd("    ann: {password: pw, skils: [general]}\n"),
        "ivr.yaml:3:25: unknown key 'skils' in acd.agents.ann (did you mean 'skills'?)",
    ),
    "unknown key in a queue": (
        acd(queues="    general:\n      ring_timeot: 10\n"),
        "ivr.yaml:6:7: unknown key 'ring_timeot' in acd.queues.general (did you mean "
        "'ring_timeout'?)",
    ),
    "wrong type": (
        acd(queues="    general: {ring_timeout: soon}\n"),
        "ivr.yaml:5:29: acd.queues.general.ring_timeout must be a number, not 'soon'",
    ),
    "agents not a mapping": (
        "acd:\n  agents: [ann, bo]\n",
        "ivr.yaml:2:11: acd.agents must be a mapping, not a list",
    ),
    "unknown strategy": (
        acd(queues="    general: {strategy: round-robbin}\n"),
        "ivr.yaml:5:25: acd.queues.general.strategy must be one of longest-idle, round-robin, "
        "ring-all, fewest-calls, skill-level, not 'round-robbin' (did you mean 'round-robin'?)",
    ),
    "unknown agent tier": (
        acd("    ann: {password: pw, tier: acounts}\n"),
        "ivr.yaml:3:31: acd.agents.ann.tier must be one of general, accounts, full, not "
        "'acounts' (did you mean 'accounts'?)",
    ),
    "unknown queue tier": (
        acd(queues="    general: {tier: top}\n"),
        "ivr.yaml:5:21: acd.queues.general.tier must be one of general, accounts, full, not "
        "'top'",
    ),
    "ring timeout of 0": (
        acd(queues="    general: {ring_timeout: 0}\n"),
        "ivr.yaml:5:29: acd.queues.general.ring_timeout must be more than 0, not 0",
    ),
    "negative retry delay": (
        acd(queues="    general: {retry_delay: -1}\n"),
        "ivr.yaml:5:28: acd.queues.general.retry_delay must be 0 or more, not -1",
    ),
    "max_callers of 0": (
        acd(queues="    general: {max_callers: 0}\n"),
        "ivr.yaml:5:28: acd.queues.general.max_callers must be 1 or more, not 0",
    ),
    "max_wait of 0": (
        acd(queues="    general: {max_wait: 0}\n"),
        "ivr.yaml:5:25: acd.queues.general.max_wait must be more than 0, not 0",
    ),
    "member that is not an agent": (
        acd("    ann: {password: pw}\n    bo: {password: pw}\n",
            "    general: {members: [ann, boo]}\n"),
        "ivr.yaml:6:30: acd.queues.general.members[1]: no agent 'boo' in acd.agents (did you "
        "mean 'bo'?)",
    ),
    "duplicate usernames": (
        acd("    ann: {password: pw, username: '1001'}\n"
            "    bo: {password: pw, username: '1001'}\n"),
        "ivr.yaml:4:34: acd.agents.bo: username '1001' is taken already, by agent 'ann'",
    ),
    "a username that is another agent's id": (
        acd("    ann: {password: pw}\n    bo: {password: pw, username: ann}\n"),
        "ivr.yaml:4:34: acd.agents.bo: username 'ann' is taken already, by agent 'ann'",
    ),
    "skill level above 10": (
        acd("    ann: {password: pw, skills: {accounts: 11}}\n"),
        "ivr.yaml:3:44: acd.agents.ann.skills.accounts must be 1 to 10, not 11",
    ),
    "skill level 0": (
        acd("    ann: {password: pw, skills: {accounts: 0}}\n"),
        "ivr.yaml:3:44: acd.agents.ann.skills.accounts must be 1 to 10, not 0",
    ),
    "skills of the wrong shape": (
        acd("    ann: {password: pw, skills: accounts}\n"),
        "ivr.yaml:3:33: acd.agents.ann.skills must be skill: level pairs (1 to 10) or a list of "
        "skills, not 'accounts'",
    ),
    "no password": (
        acd("    ann: {name: Ann Li}\n"),
        "ivr.yaml:3:5: acd.agents.ann needs a password (password: \"${IVR_AGENT_ANN}\", set in "
        "the environment)",
    ),
    "an agent with nothing at all": (
        acd("    ann-li:\n"),
        "ivr.yaml:3:5: acd.agents.ann-li needs a password (password: \"${IVR_AGENT_ANN_LI}\", "
        "set in the environment)",
    ),
    "password from an unset variable": (
        acd("    ann: {password: \"${IVR_TEST_UNSET_PW}\"}\n"),
        "ivr.yaml:3:21: acd.agents.ann.password is empty: ${IVR_TEST_UNSET_PW} is not set in "
        "the environment",
    ),
    "empty password": (
        acd("    ann: {password: ''}\n"),
        "ivr.yaml:3:21: acd.agents.ann.password must not be empty",
    ),
    "PIN with letters": (
        acd("    ann: {password: pw, pin: '12ab'}\n"),
        "ivr.yaml:3:30: acd.agents.ann.pin must be 4 to 8 digits",
    ),
    "PIN unquoted (a leading zero would be lost)": (
        acd("    ann: {password: pw, pin: 0123}\n"),
        "ivr.yaml:3:30: acd.agents.ann.pin must be text in quotes, not a number",
    ),
    "agent id with a space": (
        acd("    ann li: {password: pw}\n"),
        "ivr.yaml:3:5: acd.agents.ann li: an agent id is letters, digits, '.', '_' and '-', "
        "starting with a letter or digit",
    ),
    "username with a space": (
        acd("    ann: {password: pw, username: ann li}\n"),
        "ivr.yaml:3:35: acd.agents.ann.username must be a SIP user name (letters, digits, '.', "
        "'_', '+', '-'), not 'ann li'",
    ),
    "realm with a quote": (
        "acd:\n  realm: 'a\"b'\n",
        "ivr.yaml:2:10: acd.realm must be text without \" or \\, not 'a\"b'",
    ),
    "acd.file escaping the folder": (
        "acd: {file: ../queues.yaml}\n",
        "ivr.yaml:1:13: acd.file must be a file inside the folder of ivr.yaml, not "
        "'../queues.yaml'",
    ),
    "acd.file absolute, outside the folder": (
        "acd: {file: /etc/hostname}\n",
        "ivr.yaml:1:13: acd.file must be a file inside the folder of ivr.yaml, not "
        "'/etc/hostname'",
    ),
    "acd.file that does not exist": (
        "acd: {file: queus.yaml}\n",
        "ivr.yaml:1:13: acd.file: there is no file 'queus.yaml'",
    ),
    "a setting beside acd.file": (
        "acd: {file: queues.yaml, realm: bank}\n",
        "ivr.yaml:1:26: acd.realm cannot stand beside acd.file: write it in queues.yaml",
    ),
}


@pytest.mark.parametrize("text,line", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_one_line_and_status_2(
    here: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    (here / "queues.yaml").write_text("queues: {general: {}}\n")
    status, out, err = ivr(here, text, capsys)
    assert (status, err, out) == (2, [line], [])


QUEUES_MISTAKES = {
    "unknown key": (
        "agents:\n  ann: {password: pw}\nqueus:\n  general: {}\n",
        "queues.yaml:3:1: unknown key 'queus' (did you mean 'queues'?)",
    ),
    "member that is not an agent": (
        "agents:\n  ann: {password: pw}\nqueues:\n  general: {members: [an]}\n",
        "queues.yaml:4:23: queues.general.members[0]: no agent 'an' in agents (did you mean "
        "'ann'?)",
    ),
    "YAML syntax": (
        "agents:\n  ann: {password: pw\n",
        "queues.yaml:3:1: YAML syntax: did not find expected ',' or '}' (while parsing a flow "
        "mapping at line 2)",
    ),
    "nested file": (
        "file: other.yaml\n",
        "queues.yaml:1:1: unknown key 'file' (known: realm, control, agents, queues, callback, "
        "asterisk, agent_line)",
    ),
    "not a mapping": (
        "- ann\n",
        "queues.yaml:1:1: the file must be a mapping of settings, not a list",
    ),
}


@pytest.mark.parametrize("text,line", QUEUES_MISTAKES.values(), ids=QUEUES_MISTAKES.keys())
def test_a_mistake_in_the_named_file_is_reported_there(
    here: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    (here / "queues.yaml").write_text(text, encoding="utf-8")
    status, out, err = ivr(here, "acd: {file: queues.yaml}\n", capsys)
    assert (status, err, out) == (2, [line], [])


def test_problems_of_both_files_come_at_once_ivr_yaml_first(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "conf").mkdir()
    (here / "conf" / "queues.yaml").write_text("agents:\n  ann: {password: pw, tier: ful}\n")
    (here / "conf" / "ivr.yaml").write_text("log: {format: xml}\nacd: {file: queues.yaml}\n")
    assert main(["--config", "conf/ivr.yaml", "validate"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "conf/ivr.yaml:1:15: log.format must be one of text, json, not 'xml'",
        "conf/queues.yaml:2:29: agents.ann.tier must be one of general, accounts, full, not "
        "'ful' (did you mean 'full'?)",
    ]


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("queues: {general: {}}\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "queues.yaml").symlink_to(tmp_path / "outside.yaml")
    (project / "ivr.yaml").write_text("acd: {file: queues.yaml}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(project / "ivr.yaml", environ={})
    assert [p.message for p in caught.value.problems] == [
        "acd.file must be a file inside the folder of ivr.yaml, not 'queues.yaml'"]


def test_a_file_in_a_subfolder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "acd").mkdir()
    (tmp_path / "acd" / "queues.yaml").write_text(
        "realm: bank\ncontrol: /run/ivr/acd.sock\nagents:\n  ann: {password: pw}\n"
        "queues:\n  general: {members: [ann]}\n")  # fmt: skip
    (tmp_path / "ivr.yaml").write_text("acd: {file: acd/queues.yaml}\n")
    found = load_config(tmp_path / "ivr.yaml", environ={}).acd
    assert found is not None
    assert (found.realm, found.control, found.where("queues")) == (
        "bank", Path("/run/ivr/acd.sock"), f"{tmp_path}/acd/queues.yaml queues")
    assert found.queues == (QueueSpec("general", members=("ann",)),)


# --- secrets -------------------------------------------------------------------------------


def test_a_password_or_pin_never_appears_in_output_repr_or_log(
    here: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IVR_TEST_PW", SECRET)
    monkeypatch.setenv("IVR_TEST_PIN", PIN)
    monkeypatch.setenv("IVR_TEST_BAD_PIN", SECRET)
    good = acd(f"    ann: {{password: '${{IVR_TEST_PW}}', pin: '${{IVR_TEST_PIN}}'}}\n"
               f"    bo: {{password: '{SECRET}x', pin: '{PIN}1'}}\n")  # fmt: skip
    caplog.set_level(logging.DEBUG)
    status, out, err = ivr(here, BANK + good + "    business: {}\n", capsys, "--log-level",
                           "debug", "validate")  # fmt: skip
    assert status == 0 and err == []
    config = load_config(here / "ivr.yaml")
    assert config.acd is not None and config.acd.accounts["ann"].password == SECRET
    assert config.acd.accounts["ann"].pin == PIN
    shown = [repr(config), str(config.acd), repr(config.acd.accounts), *out, caplog.text]

    bad = acd(f"    ann: {{password: ['${{IVR_TEST_PW}}'], pin: '${{IVR_TEST_BAD_PIN}}'}}\n"
              f"    bo: {{password: {PIN}, pin: '{SECRET}'}}\n"
              f"    cy: {{password: '{SECRET}', username: '${{IVR_TEST_PW}}', pin: true}}\n"
              f"    di: {{password: '{SECRET}', username: '${{IVR_TEST_PW}}'}}\n")  # fmt: skip
    status, out, err = ivr(here, bad, capsys)
    assert status == 2
    assert err == [
        "ivr.yaml:3:21: acd.agents.ann.password must be text in quotes, not a list",
        "ivr.yaml:3:46: acd.agents.ann.pin must be 4 to 8 digits (the value of "
        "${IVR_TEST_BAD_PIN})",
        "ivr.yaml:4:20: acd.agents.bo.password must be text in quotes, not a number",
        "ivr.yaml:4:33: acd.agents.bo.pin must be 4 to 8 digits",
        "ivr.yaml:5:68: acd.agents.cy.pin must be text in quotes, not true or false",
        "ivr.yaml:6:45: acd.agents.di: username the value of ${IVR_TEST_PW} is taken already, "
        "by agent 'cy'",
    ]
    for text in [*shown, *out, *err, caplog.text]:
        assert SECRET not in text and PIN not in text


# --- the bundled ivr.yaml ------------------------------------------------------------------


def test_the_bundled_ivr_yaml_has_the_bank_queues_and_agents() -> None:
    acd_config = load_config(ROOT / "ivr.yaml", environ={}).acd
    assert acd_config is not None
    assert (acd_config.realm, acd_config.control) == ("ivr", ROOT / "var" / "acd.sock")
    general, business = acd_config.queues
    assert general == QueueSpec("general", strategy="longest-idle", ring_timeout=15,
                                retry_delay=5, max_wait=600, max_callers=50,
                                service_level=20)  # fmt: skip
    assert (business.name, business.strategy, business.service_level, business.tier) == (
        "business", "skill-level", 15, "accounts")
    tiers = [agent.tier for agent in acd_config.agents]
    assert tiers.count("general") > len(tiers) / 2 and tiers.count("full") >= 2
    assert "accounts" in tiers
    ann = acd_config.agent("ann")
    assert ann == AgentSpec("ann", "Ann Li", {"general": 5}, "general", ("en", "zh"))
    usernames = [account.username for account in acd_config.accounts.values()]
    assert usernames == [f"{n}" for n in range(1001, 1001 + len(acd_config.agents))]
    # the demo passwords, unless the environment says otherwise; no PIN unless it does
    assert acd_config.accounts["ann"] == AgentAccount("1001", "demo-1001", None)
    assert acd_config.agent_for_username("1008") == "grace"
    env = {"IVR_AGENT_1001": SECRET, "IVR_AGENT_1001_PIN": PIN}
    from_env = load_config(ROOT / "ivr.yaml", environ=env).acd
    assert from_env is not None
    assert (from_env.accounts["ann"].password, from_env.accounts["ann"].pin) == (SECRET, PIN)


def test_every_bank_call_has_agents_who_could_take_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    assert main(["lint"]) == 0
    assert capsys.readouterr() == ("3 flows OK\n", "")


# --- flows against the queues ----------------------------------------------------------------


def _node_line(flow: Path, node: str) -> int:
    lines = flow.read_text().splitlines()
    return lines.index(f"  {node}:") + 1


def test_an_enqueue_naming_no_queue_is_an_error_at_the_node(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = here / "flows" / "bank-main.yaml"
    flow.write_text(flow.read_text().replace("queue: general\n", "queue: genral\n"))
    config = (ROOT / "ivr.yaml").read_text()
    status, out, err = ivr(here, config, capsys)
    assert (status, err) == (1, [])
    assert out == [
        f"flows/bank-main.yaml:{_node_line(flow, 'general_queue')}:3: error: node "
        "'general_queue': no queue 'genral' in ivr.yaml acd.queues (did you mean 'general'?)",
        "1 error in 1 flow",
    ]


def test_the_named_file_is_named_in_the_flow_error(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (here / "queues.yaml").write_text(
        "agents: {ann: {password: pw, skills: [corporate, small_business], tier: full}}\n"
        "queues: {general: {}, busness: {}}\n")  # fmt: skip
    config = BANK + "acd: {file: queues.yaml}\n"
    status, out, _ = ivr(here, config, capsys)
    flow = here / "flows" / "bank-main.yaml"
    assert status == 1
    assert out[:2] == [
        f"flows/bank-main.yaml:{_node_line(flow, name)}:3: error: node '{name}': no queue "
        "'business' in queues.yaml queues (did you mean 'busness'?)"
        for name in ("corporate_queue", "business_queue")
    ]


def test_lint_warns_when_no_agent_could_ever_take_the_call(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # nobody may do account work for corporate customers; small businesses are served
    config = BANK + acd(
        "    ann: {password: pw}\n"
        "    bo: {password: pw, skills: [small_business], tier: accounts}\n"
        "    cy: {password: pw, skills: [corporate], tier: general}\n"
        "    di: {password: pw, skills: [corporate], tier: full, languages: [fr]}\n",
        "    general: {}\n    business: {tier: accounts}\n")  # fmt: skip
    flow = here / "flows" / "bank-main.yaml"
    warning = (f"flows/bank-main.yaml:{_node_line(flow, 'corporate_queue')}:3: warning: node "
               "'corporate_queue': no agent of queue 'business' can take its calls (skills "
               "corporate; tier accounts; language en or zh), so every caller takes the "
               "no-agents exit")  # fmt: skip
    status, out, err = ivr(here, config, capsys)
    assert (status, out, err) == (0, [warning, "3 flows OK, 1 warning"], [])
    status, out, err = ivr(here, config, capsys, "lint")
    assert (status, out, err) == (1, [warning, "1 warning in 1 flow"], [])


def test_members_limit_who_could_take_the_call(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    business = "      service_level: 15\n      tier: accounts\n"
    config = (ROOT / "ivr.yaml").read_text()
    assert business in config
    config = config.replace(business, business + "      members: [ann]\n")
    status, out, _ = ivr(here, config, capsys, "lint")
    assert status == 1
    assert [line.split(": warning: ")[1].split(" (")[0] for line in out[:-1]] == [
        "node 'corporate_queue': no agent of queue 'business' can take its calls",
        "node 'business_queue': no agent of queue 'business' can take its calls",
    ]
    assert "(skills corporate; members ann; tier accounts; language en or zh)" in out[0]


def test_a_pause_reason_ops_did_not_list_is_an_error_at_the_node(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flow = here / "flows" / "agent-line.yaml"
    flow.write_text(flow.read_text().replace("reason: training}", "reason: trainning}"))
    config = BANK + acd() + "  agent_line: {reasons: [break, training, after_call_work]}\n"
    status, out, _err = ivr(here, config, capsys)
    line = _node_line(flow, "pause_training")
    assert (status, out[0]) == (1, f"flows/agent-line.yaml:{line}:3: error: node "
                                   "'pause_training': pause reason 'trainning' is not in ivr.yaml "
                                   "acd.agent_line.reasons (did you mean 'training'?)")  # fmt: skip
    _status, out, _err = ivr(here, BANK + acd(), capsys)  # no list: any reason goes
    assert not [line for line in out if "pause reason" in line]


def test_without_acd_an_enqueue_is_fine_but_lint_warns_once(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = BANK
    flow = here / "flows" / "bank-main.yaml"
    warning = (f"flows/bank-main.yaml:{_node_line(flow, 'corporate_queue')}:3: warning: node "
               "'corporate_queue': ivr.yaml has no acd: section, so every enqueue takes its "
               "no-agents exit (docs/ACD.md, \"Configuration\")")  # fmt: skip
    line = _node_line(here / "flows" / "agent-line.yaml", "check_login")
    line_warning = (f"flows/agent-line.yaml:{line}:3: warning: node 'check_login': ivr.yaml has "
                    "no acd: section, so every acd action takes its on_error (docs/ACD.md, \"The "
                    "agent line\")")  # fmt: skip
    assert ivr(here, config, capsys) == (0, [line_warning, warning, "3 flows OK, 2 warnings"], [])
    assert ivr(here, config, capsys, "lint") == (1, [line_warning, warning,
                                                     "2 warnings in 2 flows"], [])


# --- what the section gives ------------------------------------------------------------------


def test_every_documented_key_is_accepted_and_typed(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("""\
acd:
  realm: bank
  control: run/acd.sock
  agents:
    ann:
      name: Ann Li
      username: "1001"
      password: "${IVR_TEST_ANN}"
      pin: "${IVR_TEST_ANN_PIN}"
      skills: {accounts: 7, general: 5}
      tier: accounts
      languages: [en, zh]
      wrap_up: 12.5
      max_misses: 2
    bo:
      password: "${IVR_TEST_BO:-bo-pw}"
      pin: "${IVR_TEST_BO_PIN:-}"
      skills: [general, accounts]
  queues:
    general:
      strategy: ring-all
      ring_timeout: 12
      retry_delay: 0
      max_wait: 300
      max_callers: 20
      service_level: 30
      members: [ann, bo, ann]
      skills: [general]
      tier: general
      hold_music: moh
    business:
""", encoding="utf-8")
    env = {"IVR_TEST_ANN": "ann-pw", "IVR_TEST_ANN_PIN": "0042"}
    found = load_config(tmp_path / "ivr.yaml", environ=env).acd
    assert found == AcdConfig(
        agents=(AgentSpec("ann", "Ann Li", {"accounts": 7, "general": 5}, "accounts",
                          ("en", "zh"), 12.5, 2),
                AgentSpec("bo", "bo", {"general": 5, "accounts": 5})),
        queues=(QueueSpec("general", "ring-all", 12, 0, 300, 20, 30, ("ann", "bo"), ("general",),
                          "general", "moh"),
                QueueSpec("business")),
        accounts={"ann": AgentAccount("1001", "ann-pw", "0042"),
                  "bo": AgentAccount("bo", "bo-pw", None)},
        realm="bank", control=tmp_path / "run" / "acd.sock", file=f"{tmp_path}/ivr.yaml",
    )  # fmt: skip
    assert found.agent_for_username("bo") == "bo" and found.agent_for_username("ann") is None
    assert found.where("queues") == f"{tmp_path}/ivr.yaml acd.queues"


def test_no_acd_section_means_no_agent_queue(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("languages: [en]\n")
    assert load_config(tmp_path / "ivr.yaml").acd is None
    assert load_config(tmp_path / "absent.yaml").acd is None


def test_an_empty_named_file_gives_an_empty_agent_queue(tmp_path: Path) -> None:
    (tmp_path / "queues.yaml").write_text("# nobody yet\n")
    (tmp_path / "ivr.yaml").write_text("acd: {file: queues.yaml}\n")
    found = load_config(tmp_path / "ivr.yaml").acd
    assert found is not None and (found.agents, found.queues) == ((), ())
    assert found.control == tmp_path / "var" / "acd.sock"


def test_the_display_name_follows_the_config_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ivr.yaml").write_text("acd: {file: q.yaml}\n")
    (tmp_path / "conf" / "q.yaml").write_text("queues: {general: {}}\n")
    found = load_config(os.path.join("conf", "ivr.yaml")).acd
    assert found is not None and found.where("queues") == "conf/q.yaml queues"


def test_a_broken_agent_is_reported_once_not_again_as_a_member(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "acd:\n  agents:\n    ann: {password: pw}\n    bo:\n"
        "  queues:\n    general: {members: [ann, bo]}\n")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml", environ={})
    assert [(p.pos.line, p.message) for p in caught.value.problems] == [
        (4, "acd.agents.bo needs a password (password: \"${IVR_AGENT_BO}\", set in the "
            "environment)")]  # fmt: skip


def test_only_a_phone_number_is_ever_put_into_the_callback_route() -> None:
    from ivr.acd.config import CallbackConfig

    route = CallbackConfig("sip:{number}@127.0.0.1:5090")
    assert route.uri("+8613800000009") == "sip:+8613800000009@127.0.0.1:5090"
    for hostile in ("", "x", "123;maddr=192.0.2.1", "1@evil.example", "../1", "+", "1" * 30,
                    "12\r\nVia: x"):  # fmt: skip
        assert route.uri(hostile) is None, hostile
