"""``ivr graph`` (ivr/cli/cmd_graph.py), run in-process on flow files written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli.main import main

MINI = """\
flow: mini
languages: [en, zh]
start: welcome
globals: {"0": agent}
nodes:
  welcome:
    menu:
      prompt: {en: "For balance press 1.", zh: "查询余额请按1。"}
      choices:
        "1": {say: {en: [balance], zh: [余额]}, goto: goodbye}
      no_input: {reprompt: repeat, after: 3, goto: agent}
      no_match: {reprompt: repeat, after: 3, goto: agent}
  agent:
    enqueue: {queue: general, prompt: {en: "Please hold.", zh: "请稍候。"}}
  goodbye:
    hangup: {prompt: {en: "Goodbye.", zh: "再见。"}}
"""


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "mini.yaml").write_text(MINI, encoding="utf-8")
    # a file whose name is not its flow id: found through the flow set
    (flows / "other-name.yaml").write_text(MINI.replace("flow: mini", "flow: second"), "utf-8")
    path = tmp_path / "ivr.yaml"
    path.write_text("flows_dir: flows\n", encoding="utf-8")
    return path


def graph(config: Path, *args: str) -> int:
    return main(["-c", str(config), "graph", *args])


def test_mermaid_to_stdout_by_flow_id(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert graph(config, "mini") == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD\n")
    assert "welcome" in out and '|"choice 1"|' in out and '|"no_input / no_match"|' in out


def test_flow_id_that_is_not_a_file_name(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert graph(config, "second", "--format", "dot") == 0
    assert capsys.readouterr().out.startswith('digraph "second" {')


def test_html_to_a_file_by_path(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "mini.html"
    assert graph(config, str(tmp_path / "flows" / "mini.yaml"), "-o", str(out)) == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "goodbye" in page


def test_format_follows_the_output_suffix_unless_given(config: Path, tmp_path: Path) -> None:
    assert graph(config, "mini", "-o", str(tmp_path / "g.dot")) == 0
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")
    assert graph(config, "mini", "-o", str(tmp_path / "g.mmd")) == 0
    assert (tmp_path / "g.mmd").read_text(encoding="utf-8").startswith("flowchart TD")
    assert graph(config, "mini", "-f", "mermaid", "-o", str(tmp_path / "g.html")) == 0
    assert (tmp_path / "g.html").read_text(encoding="utf-8").startswith("flowchart TD")


def test_unknown_flow_or_file_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert graph(config, "nope") == 2
    err = capsys.readouterr().err
    assert "no flow 'nope'" in err and "(flows: mini, second)" in err
    assert graph(config, "missing.yaml") == 2
    assert "no such flow file: missing.yaml" in capsys.readouterr().err


def test_flow_with_errors_prints_positions_and_fails(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(MINI.replace("goto: goodbye", "goto: nowhere"), encoding="utf-8")
    assert graph(config, str(broken)) == 1
    err = capsys.readouterr().err
    assert f"{broken}:" in err and "nowhere" in err


def test_unwritable_output_is_a_usage_error(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert graph(config, "mini", "-o", str(tmp_path / "no" / "such" / "dir.html")) == 2
    assert "cannot write" in capsys.readouterr().err
