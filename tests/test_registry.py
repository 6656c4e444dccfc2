"""FlowRegistry: a reload swaps in a new version only when it has no errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.flow.registry import FlowRegistry

GOOD = 'flow: main\nstart: a\nnodes:\n  a: {{hangup: {{prompt: "{text}"}}}}\n'


def test_reload_keeps_the_old_version_when_the_new_one_is_broken(tmp_path: Path) -> None:
    flow_file = tmp_path / "main.yaml"
    flow_file.write_text(GOOD.format(text="Version one."))
    registry = FlowRegistry(tmp_path)
    assert not registry.loaded
    with pytest.raises(LookupError):
        _ = registry.current

    assert registry.reload() == []
    first = registry.current
    assert first.get("main").nodes["a"].prompt.parts[0].text == {"en": "Version one."}  # type: ignore[attr-defined]

    flow_file.write_text("flow: main\nstart: a\nnodes:\n  a: {goto: nowhere}\n")
    diagnostics = registry.reload()
    assert FlowRegistry.has_errors(diagnostics)
    assert [(d.pos.line, d.pos.col) for d in diagnostics] == [(4, 13)]
    assert registry.current is first  # the broken version never replaced the good one

    flow_file.write_text(GOOD.format(text="Version two."))
    assert registry.reload() == []
    second = registry.current
    assert second is not first and second.version != first.version
    assert second.get("main").nodes["a"].prompt.parts[0].text == {"en": "Version two."}  # type: ignore[attr-defined]
    # a call that started on the first version still has it, unchanged
    assert first.get("main").nodes["a"].prompt.parts[0].text == {"en": "Version one."}  # type: ignore[attr-defined]


def test_a_new_good_version_goes_live_with_its_warnings(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(GOOD.format(text="Hi.") + "  spare: {hangup: {}}\n")
    registry = FlowRegistry(tmp_path)
    diagnostics = registry.reload()
    assert registry.loaded and not FlowRegistry.has_errors(diagnostics)
    assert [d.message for d in diagnostics] == ["node 'spare' is never reached from start 'a'"]


def test_a_broken_first_load_leaves_nothing_loaded(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("flow: main\n")
    registry = FlowRegistry(tmp_path)
    assert FlowRegistry.has_errors(registry.reload())
    assert not registry.loaded


def test_the_folder_defaults_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("flows_dir: my_flows\nlanguages: [en]\n")
    (tmp_path / "my_flows").mkdir()
    (tmp_path / "my_flows" / "main.yaml").write_text(GOOD.format(text="Hi."))
    registry = FlowRegistry(config=load_config(tmp_path / "ivr.yaml"))
    assert registry.flows_dir == tmp_path / "my_flows"
    assert registry.reload() == [] and "main" in registry.current.flows
    with pytest.raises(ValueError):
        FlowRegistry()
