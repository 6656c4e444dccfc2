"""Flow regular expressions run in linear time (RE2); what RE2 cannot run is refused."""

from __future__ import annotations

import textwrap

import pytest
from engine_harness import Call

from ivr.flow.expr import ExprError, compile_expr
from ivr.flow.loader import check_text
from ivr.flow.regex import MAX_PATTERN, RegexError, compile_regex, search


def test_a_catastrophic_pattern_on_a_long_caller_id_ends_at_once() -> None:
    # Python's re takes tens of seconds here (2^n backtracking); RE2 answers in microseconds,
    # so this test would hang, not just be slow, if the backtracking engine came back.
    assert not search(r"^(\+?[0-9]+)+$", "1" * 30 + "x")
    assert search(r"^(\+?[0-9]+)+$", "+8613800000001")
    flow = """
    flow: t
    start: route
    nodes:
      route:
        branch:
          when: [{if: "matches(call.caller, '^(\\\\+?[0-9]+)+$')", goto: ok}]
          else: no
      ok: {hangup: {outcome: ok}}
      no: {hangup: {outcome: no}}
    """
    assert Call(flow, caller="1" * 30 + "x").start().run(0.1).outcome == "no"
    assert Call(flow, caller="+8613800000001").start().run(0.1).outcome == "ok"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=6222)", r"(?<!x)1", "a" * (MAX_PATTERN + 1)])
def test_what_re2_cannot_run_in_linear_time_is_refused(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_regex(pattern)
    with pytest.raises(ExprError, match="invalid regular expression"):
        compile_expr("matches(x, '" + pattern.replace("\\", "\\\\") + "')")


def test_validate_refuses_a_collect_pattern_re2_cannot_run() -> None:
    loaded = check_text(textwrap.dedent("""\
        flow: t
        languages: [en]
        start: a
        defaults: {escalate: b}
        nodes:
          a: {collect: {prompt: "Card.", into: card, pattern: "^(6)\\\\1", next: b}}
          b: {hangup: {}}
        """), "t.yaml")
    assert [(d.pos.line, d.severity.value) for d in loaded.diagnostics] == [(6, "error")]
    assert "not a regular expression RE2 runs" in loaded.diagnostics[0].message


def test_collect_patterns_still_match_with_search_semantics() -> None:
    flow = """
    flow: t
    start: a
    defaults: {escalate: bad}
    nodes:
      a:
        collect: {prompt: "Card.", into: card, min: 4, max: 4, pattern: "^62", next: ok,
                  no_match: {after: 1}}
      ok: {hangup: {outcome: ok}}
      bad: {hangup: {outcome: bad}}
    """
    assert Call(flow).start().run(5).press("6222").run(0.1).outcome == "ok"
    assert Call(flow).start().run(5).press("5222").run(0.1).outcome == "bad"
