"""Loading one flow or a folder: stage errors, digests, versions, and a large generated flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.flow.errors import FlowError, SchemaError, SemanticError, Severity, YamlError
from ivr.flow.loader import check_text, load_flow, load_flowset, load_text, make_flowset
from ivr.flow.model import Pos

FLOWS = Path(__file__).parent / "flows"
OK = "flow: {id}\nstart: a\nnodes:\n  a: {{hangup: {{prompt: \"Bye.\"}}}}\n"


def big_flow(size: int) -> str:
    """A valid flow of ``size`` nodes mixing menus, prompts, digit entry, variables, branches."""
    lines = ["flow: big", "languages: [en, zh]", "start: n0", 'globals: {"0": agent}', "nodes:"]
    for i in range(size - 2):
        nxt = f"n{i + 1}" if i + 1 < size - 2 else "bye"
        kind = i % 5
        lines.append(f"  n{i}:")
        if kind == 0:
            lines += [
                "    menu:",
                f'      prompt: {{en: "Menu {i}, press 1.", zh: "菜单 {i}"}}',
                f'      choices: {{"1": {{say: [next], goto: {nxt}}}, "2": bye}}',
                "      no_input: {reprompt: repeat, goto: agent}",
                '      no_match: {reprompt: {en: "Sorry.", zh: "对不起。"}, goto: agent}',
            ]
        elif kind == 1:
            prompt = f'{{en: "Hi {{name}} {i}.", zh: "你好"}}'
            lines.append(f"    say: {{prompt: {prompt}, next: {nxt}}}")
        elif kind == 2:
            lines.append(f'    collect: {{prompt: {{en: "Digits.", zh: "数字"}}, into: v{i}, '
                         f"min: 2, max: 8, next: {nxt}, no_input: {{goto: agent}}, "
                         "no_match: {goto: agent}}")
        elif kind == 3:
            lines.append(f'    set: {{vars: {{x{i}: "= x + {i}"}}, next: {nxt}}}')
        else:
            lines.append(f'    branch: {{when: [{{if: "x > {i}", goto: {nxt}}}], else: {nxt}}}')
    lines += ['  bye: {hangup: {prompt: {en: "Bye.", zh: "再见。"}}}',
              "  agent: {enqueue: {queue: general}}"]
    return "\n".join(lines) + "\n"


def test_a_generated_flow_of_1000_nodes_loads_clean() -> None:
    loaded = check_text(big_flow(1000), "big.yaml")
    assert loaded.diagnostics == []
    assert loaded.flow is not None and len(loaded.flow.nodes) == 1000


def test_each_stage_raises_its_own_error_type() -> None:
    with pytest.raises(YamlError):
        load_text("a: [\n", "t.yaml")
    with pytest.raises(SchemaError):
        load_text("flow: t\nstart: a\nnodes:\n  a: {mneu: {}}\n", "t.yaml")
    with pytest.raises(SemanticError):
        load_text("flow: t\nstart: a\nnodes:\n  a: {goto: b}\n", "t.yaml")


def test_the_earliest_stage_names_the_error_but_every_diagnostic_is_kept() -> None:
    text = "flow: t\nstart: a\nnodes:\n  a: {goto: b}\n  a: {goto: c}\n  b: {mneu: 1}\n"
    with pytest.raises(YamlError) as info:
        load_text(text, "t.yaml")
    assert {d.stage for d in info.value.diagnostics} == {"yaml", "schema"}
    assert isinstance(info.value, FlowError)


def test_load_flow_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(OK.format(id="x"))
    flow = load_flow(path)
    assert flow.id == "x" and flow.source == str(path) and len(flow.digest) == 64
    with pytest.raises(YamlError) as info:
        load_flow(tmp_path / "missing.yaml")
    assert "cannot read" in str(info.value)


def test_load_flowset_returns_warnings_and_a_version(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(OK.format(id="a"))
    (tmp_path / "b.yaml").write_text(OK.format(id="b") + "  lost: {hangup: {}}\n")
    (tmp_path / "notes.txt").write_text("not a flow")
    flows, warnings = load_flowset(tmp_path)
    assert sorted(flows.flows) == ["a", "b"]
    assert [(w.pos.line, w.severity) for w in warnings] == [(5, Severity.WARNING)]
    assert len(flows.version) == 64
    again, _ = load_flowset(tmp_path)
    assert again.version == flows.version
    (tmp_path / "a.yaml").write_text(OK.format(id="a") + "# changed\n")
    changed, _ = load_flowset(tmp_path)
    assert changed.version != flows.version


def test_load_flowset_raises_with_every_files_errors(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("flow: a\nstart: a\nnodes:\n  a: {goto: x}\n")
    (tmp_path / "b.yaml").write_text("flow: b\nstart: b\nnodes:\n  b: {subflow: {flow: zz, "
                                     "next: c}}\n  c: {hangup: {}}\n")
    (tmp_path / "c.yaml").write_text(OK.format(id="a"))  # the same flow id again
    with pytest.raises(FlowError) as info:
        load_flowset(tmp_path)
    found = {(Path(d.pos.file).name, d.pos.line, d.message.split(":")[0])
             for d in info.value.diagnostics}
    assert ("a.yaml", 4, "node 'a'") in found
    assert ("b.yaml", 4, "node 'b'") in found  # unknown sub-flow
    assert ("c.yaml", 1, "flow id 'a' is already used by " + str(tmp_path / "a.yaml")) in found


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as info:
        load_flowset(tmp_path)
    assert info.value.diagnostics[0].pos == Pos(str(tmp_path), 0, 0)


def test_make_flowset_version_depends_on_ids_and_digests() -> None:
    a = load_text(OK.format(id="a"), "a.yaml")
    b = load_text(OK.format(id="b"), "b.yaml")
    assert make_flowset([a, b]).version == make_flowset([b, a]).version
    assert make_flowset([a]).version != make_flowset([a, b]).version


def test_the_good_fixture_folder_is_one_consistent_set() -> None:
    flows, warnings = load_flowset(FLOWS / "good")
    assert warnings == []
    assert set(flows.flows) == {"good-bank", "good-main", "good-verify"}
    assert flows.get("good-main").nodes["verify"].flow == "good-verify"  # type: ignore[attr-defined]
