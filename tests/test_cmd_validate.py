"""``ivr validate``, ``ivr lint`` and ``ivr schema`` run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ivr.cli.cmd_validate import summary
from ivr.cli.main import main

FLOWS = Path(__file__).parent / "flows"
# the agent queue good/bank.yaml's enqueue needs (without one, validate warns)
ACD = "acd: {agents: {ann: {password: x, skills: [accounts]}}, queues: {general: {}}}\n"
# good/bank.yaml calls {config.bank_api}/balance (without a webhook_allow, validate warns)
WEBHOOKS = 'webhook_allow: ["bank.example"]\nvars: {bank_api: "https://bank.example/api"}\n'


@pytest.fixture(autouse=True)
def _no_repo_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with a small ivr.yaml, so the repository's own configuration does not leak in."""
    (tmp_path / "ivr.yaml").write_text(f"languages: [en]\n{ACD}{WEBHOOKS}")
    monkeypatch.setenv("IVR_CONFIG", str(tmp_path / "ivr.yaml"))


def test_validate_good_flows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(FLOWS / "good")]) == 0
    assert capsys.readouterr().out == "3 flows OK\n"


def test_validate_prints_file_line_col_and_a_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FLOWS)
    path = "bad/unknown_target.yaml"
    assert main(["validate", path]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{path}:7:40: error: node 'welcome': next goes to unknown node "
                      "'main_mneu' (did you mean 'main_menu'?)")
    assert f"{path}:13:21: error: node 'main_menu': choice 2 goes to unknown node 'lost'" in out
    assert out[-1] == "2 errors, 2 warnings in 1 flow"


def test_absolute_paths_inside_the_working_folder_are_shown_relative(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FLOWS.parent)
    assert main(["validate", str(FLOWS / "bad" / "builtin_as_node_id.yaml")]) == 1
    assert capsys.readouterr().out.startswith("flows/bad/builtin_as_node_id.yaml:8:3: error:")


def test_validate_defaults_to_the_configured_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "a.yaml").write_text("flow: a\nstart: a\nnodes:\n  a: {hangup: {}}\n")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "1 flow OK\n"


def test_validate_a_file_resolves_sub_flows_from_its_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(FLOWS / "good" / "main.yaml")]) == 0
    assert capsys.readouterr().out == "1 flow OK\n"


def test_warnings_pass_validate_and_fail_lint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FLOWS)
    path = "warn/unreachable_node.yaml"
    assert main(["validate", path]) == 0
    out = capsys.readouterr().out
    assert f"{path}:10:3: warning: node 'forgotten' is never reached" in out
    assert out.endswith("1 flow OK, 1 warning\n")
    assert main(["lint", path]) == 1
    assert capsys.readouterr().out.endswith("1 warning in 1 flow\n")
    assert main(["lint", "good"]) == 0


def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/nonexistent/flows"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_schema_prints_json_or_writes_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "ivr flow" and "node" in schema["$defs"]
    target = tmp_path / "flow.schema.json"
    assert main(["schema", "--output", str(target)]) == 0
    assert json.loads(target.read_text()) == schema


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ((3, 0, 0, 0, False), "3 flows OK"),
        ((1, 0, 2, 1, False), "1 flow OK, 2 warnings"),
        ((4, 2, 1, 1, False), "2 errors, 1 warning in 1 flow"),
        ((4, 1, 0, 2, False), "1 error in 2 flows"),
        ((4, 0, 3, 2, True), "3 warnings in 2 flows"),
    ],
)
def test_summary_line(counts: tuple[int, int, int, int, bool], text: str) -> None:
    flows, errors, warnings, with_problems, strict = counts
    assert summary(flows, errors, warnings, with_problems, strict=strict) == text


# --- ivr.yaml ------------------------------------------------------------------------------


def numbers_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, numbers: str) -> None:
    """An ivr.yaml in the working folder whose flows are tests/flows/good."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_CONFIG")
    (tmp_path / "ivr.yaml").write_text(
        f"flows_dir: {FLOWS / 'good'}\nnumbers:\n{numbers}{ACD}{WEBHOOKS}")


def test_a_number_mapped_to_no_flow_is_an_ivr_yaml_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers_config(tmp_path, monkeypatch, '  "95588": good-main\n  "95599": good-mian\n')
    assert main(["validate"]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "ivr.yaml:4:12: number '95599' maps to flow 'good-mian', which does not exist "
        "(flows: good-bank, good-main, good-verify)"]  # fmt: skip
    assert out == "3 flows OK\n"  # the flows are still checked and reported


def test_the_default_number_is_checked_too_and_lint_checks_numbers_as_well(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers_config(tmp_path, monkeypatch, "  default: bank-main\n")
    assert main(["validate", str(FLOWS / "good" / "main.yaml")]) == 2
    assert capsys.readouterr().err == (
        "ivr.yaml:3:12: the default number maps to flow 'bank-main', which does not exist "
        "(flows: good-bank, good-main, good-verify)\n")
    assert main(["lint", str(FLOWS / "good")]) == 2
    assert "the default number maps to flow 'bank-main'" in capsys.readouterr().err


def test_numbers_that_map_to_flows_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers_config(tmp_path, monkeypatch, '  "1": good-main\n  default: good-bank\n')
    assert main(["validate"]) == 0
    assert capsys.readouterr() == ("3 flows OK\n", "")


def test_flow_errors_keep_status_1_when_ivr_yaml_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers_config(tmp_path, monkeypatch, '  "1": good-main\n')
    assert main(["validate", str(FLOWS / "bad" / "unknown_target.yaml")]) == 1
    assert capsys.readouterr().err == ""


def test_the_repository_ivr_yaml_validates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = FLOWS.parent.parent
    monkeypatch.chdir(root)
    monkeypatch.delenv("IVR_CONFIG")
    assert main(["validate"]) == 0
    assert capsys.readouterr().err == ""


def test_webhooks_without_an_allow_list_are_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ivr.yaml").write_text(f"languages: [en]\n{ACD}")
    assert main(["validate", str(FLOWS / "good")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("bank.yaml:86:3: warning: " + str(tmp_path / "ivr.yaml") + " sets no "
                           "webhook_allow, so webhooks may reach any host; list the hosts they "
                           "call (docs/SECURITY.md)")
    assert out[-1] == "3 flows OK, 1 warning"
    assert main(["lint", str(FLOWS / "good")]) == 1


def test_a_webhook_to_a_host_outside_the_allow_list_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ivr.yaml").write_text(f"languages: [en]\n{ACD}webhook_allow: [bank.example]\n"
                                       'vars: {bank_api: "http://10.9.9.9:8080/api"}\n')
    assert main(["validate", str(FLOWS / "good")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("bank.yaml:86:3: error: node 'get_balance': webhook "
                           "http://10.9.9.9:8080 is not in webhook_allow (bank.example), so "
                           "every call would be refused")


@pytest.mark.parametrize(("url", "origin"), [
    ("{config.api}/balance", "https://bank.example:8443"),
    ("https://bank.example/{account}", "https://bank.example"),
    ("https://bank.example", "https://bank.example"),
    ("https://{host}/x", None),  # the call decides the host: judged during the call
    ("{config.missing}/x", None),
    ("https://bank.{zone}/x", None),
])
def test_the_fixed_part_of_a_webhook_url_names_its_host(url: str, origin: str | None) -> None:
    from ivr.flow.webhookcheck import fixed_origin

    assert fixed_origin(url, {"api": "https://bank.example:8443/v1"}) == origin
