"""AMI framing, parsing and writing on recorded text (tests/data/ami/panoramisk)."""

from __future__ import annotations

import pytest
from ami_replay import blocks

from ivr.ami.wire import AmiProtocolError, Framer, banner_version, parse, render


def test_crlf_and_lf_frame_alike_even_split_anywhere() -> None:
    _, _, server = blocks("queue_status")
    for line_end in ("\n", "\r\n"):
        data = "".join(b.replace("\n", line_end) + line_end * 2 for b in server).encode()
        for step in (1, 7, len(data)):
            framer = Framer()
            texts = [t for i in range(0, len(data), step) for t in framer.feed(data[i:i + step])]
            assert [parse(t).name for t in texts] == ["Success", "QueueParams"] + \
                ["QueueMember"] * 6 + ["QueueStatusComplete"]  # fmt: skip


def test_parse_a_recorded_command_output() -> None:
    _, _, server = blocks("command_core_show_version")
    message = parse(server[0])
    assert message.kind == "response" and message.name == "Follows"
    assert message.action_id == "action/transaction_uid/1/1"
    assert any("Asterisk 11.11.0" in line for line in message.follows)


def test_banner() -> None:
    assert banner_version(b"Asterisk Call Manager/1.3\r\n") == "1.3"
    with pytest.raises(AmiProtocolError):
        banner_version(b"HTTP/1.1 400 Bad Request\r\n")


def test_the_framer_is_bounded() -> None:
    framer = Framer(limit=1000)
    with pytest.raises(AmiProtocolError):
        framer.feed(b"Event: X\r\nData: " + b"y" * 2000)


def test_render_refuses_line_breaks_and_bad_names() -> None:
    assert render("Redirect", {"Channel": "PJSIP/a-1", "ActionID": "1"}) == \
        b"Action: Redirect\r\nChannel: PJSIP/a-1\r\nActionID: 1\r\n\r\n"  # fmt: skip
    with pytest.raises(ValueError, match="line break"):
        render("Redirect", {"Channel": "PJSIP/a-1\r\nAction: Hangup"})
    with pytest.raises(ValueError, match="not a name"):
        render("Redirect", {"Bad Key": "x"})
