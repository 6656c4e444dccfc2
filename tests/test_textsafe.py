"""Caller-chosen text (From user, called number) is printable before it reaches logs or records."""

from __future__ import annotations

import logging

import pytest
from engine_harness import Call
from sip_phone import run, setup

from ivr.core import events as ev
from ivr.core.callinfo import CallInfo
from ivr.core.textsafe import MAX_CALLER_TEXT, MAX_FILE_STEM, file_stem, printable


def test_control_characters_become_visible_escapes() -> None:
    assert printable("+8613800000001") == "+8613800000001"
    assert printable("alice\n2026-01-01 forged\x1b[31m") == "alice\\x0a2026-01-01 forged\\x1b[31m"
    assert printable("a\u2028b\u202ec") == "a\\u2028b\\u202ec"  # line separator, RTL override
    assert printable("张三") == "张三"


def test_long_caller_text_is_cut() -> None:
    text = printable("9" * 10_000)
    assert len(text) == MAX_CALLER_TEXT + 3 and text.endswith("...")


def test_call_info_and_the_call_record_hold_the_escaped_caller() -> None:
    info = CallInfo("c1", "x\x1b]0;pwned\x07", "95588\n")
    assert info.caller == "x\\x1b]0;pwned\\x07" and info.called == "95588\\x0a"
    call = Call("flow: t\nstart: bye\nnodes:\n  bye: {hangup: {}}\n", caller="a\nb").start()
    start = call.of(ev.CALL_START)[0]
    assert start.data["caller"] == "a\\x0ab"
    assert call.session.vars["call"]["caller"] == "a\\x0ab"


def test_a_from_header_with_encoded_newline_and_escape_is_logged_printable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.sip")

    async def scenario() -> None:
        ua, phone, app = await setup()
        leg = phone.leg(ua.address, user="95588", caller="bob%0aFAKE%20LINE%1b%5b2J")
        phone.send(leg.invite(), ua.address)
        await phone.response(200, "INVITE")
        call = app.calls[0]
        assert "\n" in call.caller  # the URI parser decodes it: the SIP layer keeps what came
        assert call.info().caller == "bob\\x0aFAKE LINE\\x1b[2J"
        phone.close()
        await ua.close()

    run(scenario())
    lines = [r.getMessage() for r in caplog.records if "INVITE from" in r.getMessage()]
    assert lines and "bob\\x0aFAKE LINE\\x1b[2J" in lines[0]
    assert not any("\n" in line or "\x1b" in line for line in lines)


def test_a_call_id_becomes_a_file_stem_that_stays_in_its_folder() -> None:
    assert file_stem("r9lnrekhk55dwbf20b2qoewo@127.0.0.1") == "r9lnrekhk55dwbf20b2qoewo@127.0.0.1"
    assert file_stem("../../etc/passwd") == "_._.._etc_passwd"
    assert file_stem("a\x00b/c") == "a_b_c" and file_stem("") == "_"
    assert len(file_stem("x" * 1000)) == MAX_FILE_STEM
