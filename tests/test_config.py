"""ivr.yaml against its schema (ivr/config.py, ivr/configread.py), through the real CLI.

Every mistake ends the command before it starts, with one line per problem on stderr,
``ivr.yaml:LINE:COL: reason``, and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ivr.cli import cmd_serve, cmd_serve_pyvoip
from ivr.cli.main import main
from ivr.config import ConfigError, RegisterConfig, load_config
from ivr.sip.admission import SourceLimits

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the repository's flows; ivr.yaml is written by each test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    (tmp_path / "flows").symlink_to(ROOT / "flows")
    return tmp_path


def ivr(here: Path, text: str, capsys: pytest.CaptureFixture[str], *args: str
        ) -> tuple[int, list[str]]:  # fmt: skip
    """Write ivr.yaml, run ``ivr <args>`` (validate by default), return status and stderr."""
    (here / "ivr.yaml").write_text(text, encoding="utf-8")
    status = main(list(args or ["validate"]))
    return status, capsys.readouterr().err.splitlines()


MISTAKES = {
    "unknown top-level key": (
        "flows_dir: flows\nstor:\n  path: var/calls.db\n",
        "ivr.yaml:2:1: unknown key 'stor' (did you mean 'store'?)",
    ),
    "unknown nested key": (
        "sip:\n  listn: 127.0.0.1:5070\n",
        "ivr.yaml:2:3: unknown key 'listn' in sip (did you mean 'listen'?)",
    ),
    "unknown key, nothing close": (
        "asr:\n  colour: blue\n",
        "ivr.yaml:2:3: unknown key 'colour' in asr (known: backend, workers, models_dir)",
    ),
    "wrong type": (
        "asr:\n  backend: auto\n  workers: many\n",
        "ivr.yaml:3:12: asr.workers must be a whole number, not 'many'",
    ),
    "YAML syntax error": (
        "numbers:\n  \"95588\": bank-main\n default: bank-main\n",
        "ivr.yaml:3:2: YAML syntax: did not find expected key (while parsing a block mapping "
        "at line 1)",
    ),
    "unknown ASR backend": (
        "asr: {backend: vossk}\n",
        "ivr.yaml:1:16: asr.backend must be one of auto, pocketsphinx, vosk, off, not 'vossk' "
        "(did you mean 'vosk'?)",
    ),
    "unknown engine priority": (
        "sip:\n  priority: urgent\n",
        "ivr.yaml:2:13: sip.priority must be one of normal, high, realtime, not 'urgent'",
    ),
    "wrong section type": (
        "sip: 127.0.0.1:5060\n",
        "ivr.yaml:1:6: sip must be a mapping of settings, not '127.0.0.1:5060'",
    ),
    "${...} unquoted in a flow mapping": (
        "asr: {workers: ${IVR_ASR_WORKERS:-2}}\n",
        "ivr.yaml:1:17: YAML syntax: did not find expected ',' or '}' (while parsing a flow "
        "mapping at line 1); a ${...} inside { } or [ ] needs quotes",
    ),
    "duplicate key": (
        "languages: [en]\nlanguages: [zh]\n",
        "ivr.yaml:2:1: duplicate key 'languages' (first defined at line 1)",
    ),
}


@pytest.mark.parametrize("text,line", MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_one_line_and_status_2(
    here: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    assert ivr(here, text, capsys) == (2, [line])


def test_a_broken_ivr_yaml_stops_serve_before_it_starts(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = ivr(here, "asr: {backend: vossk}\n", capsys, "serve", "--listen", "127.0.0.1:0")
    assert status == 2 and len(err) == 1 and err[0].startswith("ivr.yaml:1:16: asr.backend")
    assert "answering SIP" not in capsys.readouterr().out


def test_every_problem_is_reported_at_once_in_file_order(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ("sip:\n  max_calls: 0\n  ringing: [180, 200]\n  test_headers: yes\n"
            "  rtp_ports: 30000-20000\n  listen: localhost\nlog: {format: xml}\n")  # fmt: skip
    status, err = ivr(here, text, capsys)
    assert status == 2
    assert err == [
        "ivr.yaml:2:14: sip.max_calls must be 1 or more, not 0",
        "ivr.yaml:3:18: sip.ringing[1] must be a provisional status code (101-199, e.g. 180 or "
        "183), not 200",
        "ivr.yaml:4:17: sip.test_headers must be true or false, not 'yes'",
        "ivr.yaml:5:14: sip.rtp_ports must be LOW-HIGH ports (1-65535), not '30000-20000'",
        "ivr.yaml:6:11: sip.listen must be HOST:PORT (port 0-65535), not 'localhost'",
        "ivr.yaml:7:15: log.format must be one of text, json, not 'xml'",
    ]


def test_the_bundled_ivr_yaml_loads() -> None:
    config = load_config(ROOT / "ivr.yaml", environ={})
    assert config.languages == ("en", "zh")
    assert config.numbers == {"95588": "bank-main", "95500": "agent-line",
                              "default": "bank-main"}
    assert config.vars == {"bank_api": "http://127.0.0.1:8765"}
    assert config.asr.backend == "auto" and config.asr.models_dir == ROOT / "asr_models"
    assert config.sip.port == 5060 and config.sip.register is None
    assert config.acd is not None  # tests/test_acd_config.py has the details
    assert [q.name for q in config.acd.queues] == ["general", "business"]
    assert config.acd.agent_line.reasons == ("break", "training", "after_call_work")


FULL = """\
flows_dir: flows
prompts_dir: /srv/prompts
scripts_dir: tests/scripts
actions_path: flows/actions
store: {path: var/calls.db}
languages: [en, zh]
numbers: {"95588": bank-main, default: bank-main}
transfer_allow: ["+86955*"]
vars: {bank_api: "${IVR_TEST_API:-http://127.0.0.1:9}", nested: {deep: [1, 2]}}
timers: {no_input_timeout: 7}
asr: {backend: off, workers: "${IVR_TEST_WORKERS:-3}", models_dir: /srv/models}
sip:
  listen: 0.0.0.0:5070
  rtp_host: 192.0.2.10
  rtp_ports: 21000-21999
  max_calls: 50
  ringing: ["180", 183]
  drain_timeout: 2.5
  test_headers: true
  workers: 0
  priority: realtime
  register:
    registrar: pbx.example:5080
    username: 1001
    password: ${IVR_TEST_SIP_PASSWORD}
    expires: 600
pyvoip:
  server: pbx.example:5062
  username: "1002"
  password: ${IVR_TEST_PYVOIP_PASSWORD:-}
  local_ip: 127.0.0.1
  local_port: 5064
  rtp_ports: 10000-10999
  register_timeout: 2
  max_calls: 10
log: {format: json}
"""


def test_every_documented_key_is_accepted_and_typed(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(FULL, encoding="utf-8")
    env = {"IVR_TEST_SIP_PASSWORD": "s3cret", "IVR_TEST_WORKERS": ""}
    config = load_config(tmp_path / "ivr.yaml", environ=env)
    assert config.prompts_dir == Path("/srv/prompts")
    assert config.store_path == tmp_path / "var" / "calls.db"
    assert config.vars == {"bank_api": "http://127.0.0.1:9", "nested": {"deep": [1, 2]}}
    assert config.timers == {"no_input_timeout": 7}
    assert (config.asr.backend, config.asr.workers) == ("off", 3)  # YAML 1.2: off is text
    sip = config.sip
    assert (sip.host, sip.port, sip.rtp_host, sip.rtp_ports) == ("0.0.0.0", 5070, "192.0.2.10",
                                                                 (21000, 21999))  # fmt: skip
    assert (sip.max_calls, sip.ringing, sip.drain_timeout, sip.test_headers, sip.workers) == (
        50, ("180", "183"), 2.5, True, 0)
    assert sip.priority == "realtime"
    assert sip.register == RegisterConfig(registrar="pbx.example:5080", host="pbx.example",
                                          port=5080, username="1001", password="s3cret",
                                          expires=600)  # fmt: skip
    assert sip.register.registrar_uri == "sip:pbx.example:5080"
    assert sip.register.aor == "sip:1001@pbx.example"
    assert "s3cret" not in repr(config)
    pv = config.pyvoip
    assert (pv.server, pv.port, pv.username, pv.password, pv.local_port) == (
        "pbx.example", 5062, "1002", "", 5064)
    assert (pv.rtp_ports, pv.register_timeout, pv.max_calls) == ((10000, 10999), 2.0, 10)
    assert config.log.format == "json"


def test_register_takes_a_sip_uri_and_a_domain(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "sip:\n  register: {registrar: 'sip:pbx.example;transport=udp', username: '7001',\n"
        "             domain: voice.example}\n")  # fmt: skip
    register = load_config(tmp_path / "ivr.yaml").sip.register
    assert register is not None
    assert (register.registrar_uri, register.aor, register.expires) == (
        "sip:pbx.example;transport=udp", "sip:7001@voice.example", 3600)


def test_register_needs_a_registrar_and_a_username(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("sip:\n  register:\n    password: x\n    expires: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml")
    assert [p.message for p in caught.value.problems] == [
        "sip.register needs registrar", "sip.register needs username",
        "sip.register.expires must be 1 or more, not 0"]  # fmt: skip


def test_a_value_from_the_environment_is_never_printed(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "sip:\n  register:\n    registrar: ${IVR_TEST_REGISTRAR}\n    username: '1001'\n"
        "    password:\n      - ${IVR_TEST_PASSWORD}\n"
        "    expires: ${IVR_TEST_EXPIRES}\n")  # fmt: skip
    env = {"IVR_TEST_REGISTRAR": "hunter2 :", "IVR_TEST_PASSWORD": "hunter2",
           "IVR_TEST_EXPIRES": "hunter2"}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml", environ=env)
    text = str(caught.value)
    assert "hunter2" not in text
    assert text.splitlines() == [
        f"{tmp_path}/ivr.yaml:3:16: sip.register.registrar must be host[:port] or a sip: URI, "
        "not the value of ${IVR_TEST_REGISTRAR}",
        f"{tmp_path}/ivr.yaml:6:7: sip.register.password must be text, not a list",
        f"{tmp_path}/ivr.yaml:7:14: sip.register.expires must be a whole number, not the value "
        "of ${IVR_TEST_EXPIRES}",
    ]


def test_a_number_with_a_leading_zero_must_be_quoted_where_text_is_meant(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("pyvoip: {server: pbx.example, username: 0101}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml")
    assert [str(p).split(": ", 1)[1] for p in caught.value.problems] == [
        "pyvoip.username: write '0101' in quotes (unquoted it is the number 101)"]


def test_false_is_not_an_asr_backend(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("asr: {backend: false}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml")
    assert str(caught.value) == (f"{tmp_path}/ivr.yaml:1:16: asr.backend must be one of auto, "
                                 "pocketsphinx, vosk, off, not false")


def test_a_backend_factory_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("asr: {backend: 'asr_fakes:make_fake'}\n")
    assert load_config(tmp_path / "ivr.yaml").asr.backend == "asr_fakes:make_fake"


def serve_args(**flags: object) -> argparse.Namespace:
    values: dict[str, object] = {"listen": None, "rtp_ports": None, "max_calls": None,
                                 "no_build": True, "workers": None, "priority": None}  # fmt: skip
    return argparse.Namespace(**{**values, **flags})


def test_serve_options_come_from_sip_and_flags_win(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "sip: {listen: 127.0.0.2:5070, rtp_ports: 21000-21099, max_calls: 7, workers: 2,\n"
        "      ringing: [], drain_timeout: 1, test_headers: true}\n")  # fmt: skip
    config = load_config(tmp_path / "ivr.yaml")
    options = cmd_serve.options_from(serve_args(), config)
    assert (options.host, options.port, options.rtp_ports, options.max_calls, options.workers,
            options.ringing, options.drain_timeout, options.test_headers) == (
        "127.0.0.2", 5070, (21000, 21099), 7, 2, (), 1.0, True)  # fmt: skip
    assert options.priority == "high"  # the default of sip.priority
    flagged = cmd_serve.options_from(
        serve_args(listen="127.0.0.3:5080", rtp_ports="22000-22009", max_calls=3, workers=1,
                   priority="normal"),
        config)  # fmt: skip
    assert (flagged.host, flagged.port, flagged.rtp_ports, flagged.max_calls,
            flagged.workers, flagged.priority) == ("127.0.0.3", 5080, (22000, 22009), 3, 1,
                                                   "normal")  # fmt: skip


def test_serve_pyvoip_options_come_from_pyvoip_and_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "pyvoip: {server: pbx.example, port: 5070, username: '1001', local_port: 5064}\n")
    monkeypatch.setenv("IVR_PYVOIP_PASSWORD", "from-env")
    config = load_config(tmp_path / "ivr.yaml")
    args = argparse.Namespace(server=None, username=None, local_port=None, no_build=True)
    phone = cmd_serve_pyvoip.options_from(args, config).phone
    assert (phone.server, phone.port, phone.username, phone.password, phone.local_port) == (
        "pbx.example", 5070, "1001", "from-env", 5064)
    args = argparse.Namespace(server="127.0.0.1:5090", username="1002", local_port=0,
                              no_build=True)  # fmt: skip
    phone = cmd_serve_pyvoip.options_from(args, config).phone
    assert (phone.server, phone.port, phone.username, phone.local_port) == (
        "127.0.0.1", 5090, "1002", 0)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ValueError, match=r"pyvoip\.server is required"):
        cmd_serve_pyvoip.options_from(
            argparse.Namespace(server=None, username=None, local_port=None, no_build=True),
            load_config(tmp_path / "empty.yaml"))


def test_hardening_settings_reach_the_server_and_bad_ones_are_reported(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "sip:\n  media_timeout: 12\n  refuse_without_store: false\n"
        "  per_source: {max_calls: 4, max_unconfirmed: 2, rate: 1.5, burst: 3}\n")
    options = cmd_serve.options_from(serve_args(), load_config(tmp_path / "ivr.yaml"))
    assert (options.media_timeout, options.refuse_without_store) == (12.0, False)
    assert options.per_source == SourceLimits(max_calls=4, max_unconfirmed=2, rate=1.5, burst=3)
    default = cmd_serve.options_from(serve_args(), load_config(tmp_path / "none.yaml"))
    assert default.per_source == SourceLimits() and default.refuse_without_store
    (tmp_path / "bad.yaml").write_text(
        "sip:\n  media_timeout: 0\n  per_source: {rate: -1, burst: 0, flood: 9}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "bad.yaml")
    text = str(caught.value)
    for key in ("media_timeout", "rate", "burst", "flood"):
        assert key in text
