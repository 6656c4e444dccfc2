"""DTMF in SIP INFO bodies."""

from __future__ import annotations

import pytest

from ivr.sip.dtmf_info import DTMF, DTMF_RELAY, DtmfBodyError, parse_dtmf_body


@pytest.mark.parametrize(("content_type", "body", "key"), [
    (DTMF_RELAY, b"Signal=5\r\nDuration=160\r\n", "5"),
    (DTMF_RELAY, b"Signal= *\nDuration= 100", "*"),
    (DTMF_RELAY, b"Duration=160\r\nsignal=#\r\n", "#"),
    (DTMF_RELAY, b"Signal=11\r\nDuration=160", "#"),
    (DTMF_RELAY, b"Signal=a\r\n", "A"),
    (DTMF, b"9", "9"),
    (DTMF, b" 0\r\n", "0"),
])  # fmt: skip
def test_keys_are_read(content_type: str, body: bytes, key: str) -> None:
    assert parse_dtmf_body(content_type, body) == key


@pytest.mark.parametrize(("content_type", "body"), [
    (DTMF_RELAY, b"Duration=160\r\n"),
    (DTMF_RELAY, b"Signal=55\r\n"),
    (DTMF, b"x"),
    ("text/plain", b"5"),
])  # fmt: skip
def test_bodies_without_a_key_are_errors(content_type: str, body: bytes) -> None:
    with pytest.raises(DtmfBodyError):
        parse_dtmf_body(content_type, body)
