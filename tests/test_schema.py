"""Stage 2: the JSON Schema, its messages, and the fast checker that must agree with jsonschema."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ivr.flow.model import NODE_TYPES
from ivr.flow.schema import check_schema, flow_schema, where
from ivr.flow.schemacheck import SchemaCompileError, compile_schema
from ivr.flow.yamlload import load_yaml

FLOWS = Path(__file__).parent / "flows"
# Every fixture that is YAML at all (one bad fixture is a YAML syntax error).
PARSABLE = [p for p in sorted(FLOWS.glob("*/*.yaml")) if p.name != "yaml_syntax.yaml"]


def messages(text: str) -> list[tuple[int, int, str]]:
    report = check_schema(load_yaml(text, "f.yaml"))
    return [(d.pos.line, d.pos.col, d.message) for d in report.diagnostics]


FLOW_HEAD = "flow: t\nstart: a\nnodes:\n"


def test_schema_is_valid_draft_2020_12_and_shipped_in_the_package() -> None:
    schema = flow_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_node_type_of_the_model_has_a_schema_entry() -> None:
    types = set(flow_schema()["$defs"]["node"]["properties"])
    assert types == set(NODE_TYPES) | {"prompt"}  # `prompt` is the alias of say


def _properties(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        for name, sub in (schema.get("properties") or {}).items():
            yield f"{path}/{name}", sub
        for key, sub in schema.items():
            if key != "properties":
                yield from _properties(sub, f"{path}/{key}")
        for name, sub in (schema.get("properties") or {}).items():
            yield from _properties(sub, f"{path}/{name}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from _properties(item, f"{path}/{index}")


def test_every_field_has_a_description_for_editors() -> None:
    defs = flow_schema()["$defs"]
    missing = []
    for path, sub in _properties(flow_schema()):
        ref = sub.get("$ref", "")
        described = "description" in sub or "description" in defs.get(ref.split("/")[-1], {})
        if not described:
            missing.append(path)
    assert missing == []


@pytest.mark.parametrize("path", sorted((FLOWS / "good").glob("*.yaml")), ids=lambda p: p.name)
def test_good_flows_fit_the_schema(path: Path) -> None:
    assert check_schema(load_yaml(path.read_text(), str(path))).diagnostics == []


# --- messages ----------------------------------------------------------------------------------


def test_unknown_key_with_did_you_mean() -> None:
    text = FLOW_HEAD + "  a:\n    say: {promt: hi, prompt: hi, next: a}\n"
    assert messages(text) == [
        (5, 11, "node 'a': unknown key 'promt' (did you mean 'prompt'?)")
    ]


def test_unknown_node_type_and_field_outside_its_type() -> None:
    text = FLOW_HEAD + "  a:\n    mneu: {}\n  b:\n    say: {prompt: hi}\n    next: a\n"
    assert messages(text) == [
        (5, 5, "node 'a': unknown node type 'mneu' (did you mean 'menu'?)"),
        (7, 5, "node 'b': missing field 'next'"),
        (8, 5, "node 'b': 'next' belongs inside 'say:' (indent it under it)"),
    ]


def test_exactly_one_node_type() -> None:
    text = FLOW_HEAD + (
        "  a:\n    menu: {prompt: x, choices: {'1': a}}\n    say: {prompt: x, next: a}\n"
    )
    assert messages(text) == [
        (4, 3, "node 'a': exactly one node type expected, found menu and say")
    ]


def test_empty_node_and_node_without_type() -> None:
    assert messages(FLOW_HEAD + "  a:\n  b: {}\n") == [
        (4, 3, "node 'a' is empty: give it a node type such as say: or menu:"),
        (5, 3, "node 'b' has no type: write one of " + ", ".join(
            flow_schema()["$defs"]["node"]["properties"])),
    ]


def test_wrong_types_say_what_was_found_and_hint_at_true_false() -> None:
    text = FLOW_HEAD + "  a:\n    say: {prompt: [], next: 5, barge_in: on}\n"
    assert messages(text) == [
        (5, 19, "node 'a': 'prompt' must not be empty"),
        (5, 29, "node 'a': 'next' must be text, not the number 5"),
        (5, 42, "node 'a': 'barge_in' must be true or false, not text 'on' (write true or false)"),
    ]


def test_enum_and_pattern_messages() -> None:
    text = FLOW_HEAD + (
        "  a:\n    recognize: {prompt: x, grammar: amonut, into: v, next: a}\n"
        "  b:\n    collect: {prompt: x, into: v, next: a, terminator: '##'}\n"
    )
    assert messages(text) == [
        (5, 37, "node 'a': 'grammar' must be one of amount, digits, yes_no, not 'amonut' "
                "(did you mean 'amount'?)"),
        (7, 56, "node 'b': 'terminator' must be one DTMF key: 0-9, * or # (found '##')"),
    ]


def test_bad_node_id_points_at_the_key() -> None:
    assert messages(FLOW_HEAD + "  bad id: {goto: a}\n") == [
        (4, 3, "nodes: 'bad id' is not allowed here: a node id is letters, digits, '_' and '-', "
               "starting with a letter")
    ]


def test_missing_top_level_fields_and_unknown_top_level_key() -> None:
    assert messages("flow: t\nstrat: a\n") == [
        (1, 1, "the flow: missing field 'nodes'"),
        (1, 1, "the flow: missing field 'start'"),
        (2, 1, "the flow: unknown key 'strat' (did you mean 'start'?)"),
    ]


def test_not_a_mapping() -> None:
    assert messages("- a\n- b\n") == [
        (1, 1, "a flow file must be a mapping (flow:, start:, nodes:), not a list")
    ]
    assert messages("") == [
        (1, 1, "a flow file must be a mapping (flow:, start:, nodes:), not empty")
    ]


def test_every_violation_is_reported() -> None:
    text = FLOW_HEAD + (
        "  a: {say: {prompt: x}}\n"
        "  b: {goto: 3}\n"
        "  c: {hangup: {outcome: [x]}}\n"
        "  d: {enqueue: {queue: q, priority: high}}\n"
    )
    assert messages(text) == [
        (4, 7, "node 'a': missing field 'next'"),
        (5, 13, "node 'b': 'goto' must be text, not the number 3"),
        (6, 25, "node 'c': 'outcome' must be text, not a list"),
        (7, 37, "node 'd': 'priority' must be a number 0..10 or an \"= expression\" "
                "(found 'high')"),
    ]


def test_where_names_places_in_words() -> None:
    assert where("") == "the flow"
    assert where("/nodes/main/menu/choices/1/goto") == "node 'main', choice '1'"
    assert where("/nodes/s/survey/questions/0/scale") == "node 's', question 1"
    assert where("/calendars/branches/weekly") == "calendar 'branches'"


# --- the fast checker agrees with jsonschema ---------------------------------------------------


def _mutations(value: Any) -> Iterator[Any]:
    """Copies of ``value`` with one thing changed: a value replaced, a key removed or added."""
    replacements: list[Any] = [None, "x", "", 5, -1, 1.5, True, [], ["x"], {}, {"x": 1}]
    yield from (r for r in replacements if r != value)
    if isinstance(value, dict):
        yield {**value, "zzz": 1}
        for key in value:
            yield {k: v for k, v in value.items() if k != key}
            for changed in _mutations(value[key]):
                yield {**value, key: changed}
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for changed in _mutations(item):
                yield [*value[:index], changed, *value[index + 1 :]]


def _node_validators() -> tuple[Any, Draft202012Validator]:
    schema = {"$ref": "#/$defs/node", "$defs": flow_schema()["$defs"]}
    return compile_schema(schema), Draft202012Validator(schema)


@pytest.mark.parametrize("path", PARSABLE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fast_checker_agrees_with_jsonschema_on_fixtures(path: Path) -> None:
    data = load_yaml(path.read_text(), str(path)).data
    fast = compile_schema(flow_schema())
    assert fast(data) == Draft202012Validator(flow_schema()).is_valid(data)


def test_fast_checker_agrees_with_jsonschema_on_mutated_nodes() -> None:
    fast, slow = _node_validators()
    data = load_yaml((FLOWS / "good" / "bank.yaml").read_text()).data
    checked = disagreements = 0
    for node in data["nodes"].values():
        for mutated in _mutations(copy.deepcopy(node)):
            checked += 1
            if fast(mutated) != slow.is_valid(mutated):
                disagreements += 1
    assert checked > 2000
    assert disagreements == 0


def test_fast_checker_agrees_with_jsonschema_on_mutated_flows() -> None:
    fast = compile_schema(flow_schema())
    slow = Draft202012Validator(flow_schema())
    data = load_yaml((FLOWS / "good" / "main.yaml").read_text()).data
    wrong = [m for m in _mutations(data) if fast(m) != slow.is_valid(m)]
    assert wrong == []


def test_fast_checker_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(SchemaCompileError):
        compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}})
    with pytest.raises(SchemaCompileError):
        compile_schema({"$ref": "https://example.com/other.json"})


def test_fast_checker_json_type_rules() -> None:
    check = compile_schema({"type": "integer"})
    assert check(3) and check(3.0) and not check(True) and not check(3.5)
    unique = compile_schema({"type": "array", "uniqueItems": True})
    assert unique([1, True]) and not unique([1, 1.0])


MAPPINGS = [p for p in PARSABLE if p.name != "not_a_mapping.yaml"]


@pytest.mark.parametrize("path", MAPPINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_validating_only_the_failing_nodes_finds_the_same_errors(path: Path) -> None:
    from ivr.flow.schema import _narrowed

    data = load_yaml(path.read_text(), str(path)).data
    validator = Draft202012Validator(flow_schema())

    def errors(instance: Any) -> list[tuple[str, str]]:
        found = validator.iter_errors(instance)
        return sorted((str(list(e.absolute_path)), e.message) for e in found)

    assert errors(_narrowed(data)) == errors(data)
