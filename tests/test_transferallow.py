"""Transfer targets are parsed as SIP URIs or numbers and matched part by part, never globbed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from engine_harness import Call

from ivr.config import ConfigError, load_config
from ivr.core import events as ev
from ivr.flow.loader import check_text
from ivr.flow.transferallow import allowed, bad_entry

BANK = ("sip:*@agents.bank.example", "+86955*")


@pytest.mark.parametrize("target", [
    "sip:fraud@agents.bank.example", "sip:1001@AGENTS.bank.example", "+8695588", "+869551234",
])
def test_plain_targets_in_the_list_are_allowed(target: str) -> None:
    assert allowed(target, BANK)


@pytest.mark.parametrize("target", [
    "sip:x@evil.example;a=@agents.bank.example",  # the glob crossed ';' and '@'
    "sip:x@evil.example?h=@agents.bank.example",
    "sip:x@agents.bank.example.evil.example",
    "sip:x:pw@agents.bank.example",
    "sip:x@agents.bank.example:5070",
    "sip:x%40evil.example@agents.bank.example",
    "sips:x@agents.bank.example",
    "sip:@agents.bank.example",
    "tel:+8695588",
    "+86955 88",
    "+8695588;phone-context=evil",
    "",
])
def test_anything_else_is_refused(target: str) -> None:
    assert not allowed(target, BANK)


def test_a_port_wildcard_admits_any_port_of_that_host_only() -> None:
    entries = ("sip:*@127.0.0.1:*",)
    assert allowed("sip:agent@127.0.0.1:5071", entries) and allowed("sip:a@127.0.0.1", entries)
    assert not allowed("sip:a@127.0.0.2:5071", entries)


def test_entries_must_be_numbers_or_plain_sip_uris() -> None:
    assert bad_entry("sip:*@agents.bank.example") is None and bad_entry("+86955*") is None
    assert bad_entry("sip:*@*") is not None  # no glob in the host
    assert bad_entry("*") is not None and bad_entry("sip:*@a.example;transport=tcp") is not None


def test_a_templated_target_that_escapes_the_domain_is_refused_during_the_call() -> None:
    flow = """
    flow: t
    start: go
    vars: {target: "sip:x@evil.example;a=@agents.example"}
    nodes:
      go: {transfer: {to: "{target}", on_fail: nope}}
      nope: {hangup: {outcome: failed}}
    """
    call = Call(flow).start().run(0.1)  # the harness allows sip:*@agents.example
    assert call.channel.transfers == [] and call.nodes[-1] == "nope"
    assert call.of(ev.TRANSFER)[0].data["reason"] == "target not in the transfer allow-list"


def test_validate_refuses_glob_entries_in_a_flow_and_in_ivr_yaml(tmp_path: Path) -> None:
    loaded = check_text(textwrap.dedent("""\
        flow: t
        start: a
        transfer_allow: ["sip:*@*.example"]
        nodes:
          a: {hangup: {}}
        """), "t.yaml")
    assert [(d.pos.line, d.pos.col, d.severity.value) for d in loaded.diagnostics] == [
        (3, 18, "error")]
    assert "neither a number" in loaded.diagnostics[0].message
    (tmp_path / "ivr.yaml").write_text('transfer_allow: ["sip:*"]\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "ivr.yaml")
    assert "transfer_allow entry 'sip:*'" in caught.value.problems[0].message
