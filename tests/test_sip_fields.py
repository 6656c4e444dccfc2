"""Via, CSeq, Max-Forwards and Call-ID (ivr.sip.fields)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.fields import CSeq, Via, is_call_id, parse_max_forwards


def test_via_with_rport_and_received() -> None:
    via = Via.parse("SIP/2.0/udp 127.0.0.2:5062;branch=z9hG4bK776;rport;received=127.0.0.9")
    assert (via.protocol, via.version, via.transport) == ("SIP", "2.0", "UDP")
    assert (via.host, via.port, via.branch, via.received) == (
        "127.0.0.2",
        5062,
        "z9hG4bK776",
        "127.0.0.9",
    )
    assert via.wants_rport and via.rport is None and via.rfc3261_branch
    answered = via.with_params(rport="5062", received="127.0.0.2")
    assert answered.rport == 5062
    assert str(answered) == (
        "SIP/2.0/UDP 127.0.0.2:5062;branch=z9hG4bK776;rport=5062;received=127.0.0.2"
    )
    assert Via.parse(str(answered)) == answered


def test_via_whitespace_ipv6_and_rfc2543() -> None:
    spaced = Via.parse("SIP  /  2.0 / TCP   host.example.com : 5070  ;  branch = z9hG4bKx  ")
    assert (spaced.transport, spaced.host, spaced.port, spaced.branch) == (
        "TCP",
        "host.example.com",
        5070,
        "z9hG4bKx",
    )
    v6 = Via.parse("SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bKq")
    assert (v6.host, v6.port) == ("[2001:db8::5]", 5060)
    old = Via.parse("SIP/2.0/UDP iftgw.example.com")
    assert (old.branch, old.rfc3261_branch, old.port) == (None, False, None)
    assert not Via.parse("SIP/2.0/UDP h;branch=z9hG4bK").rfc3261_branch


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host:99999",
        "SIP/2.0/UDP ho st",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
    ],
)
def test_bad_vias(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("0009 INVITE") == CSeq(9, "INVITE")
    assert str(CSeq.parse(" 4294967295   BYE ")) == "4294967295 BYE"
    for bad in ("INVITE", "1", "-1 INVITE", "4294967296 INVITE", "1 IN VITE", "9" * 5000 + " X"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)


def test_max_forwards() -> None:
    assert parse_max_forwards(" 0068 ") == 68
    assert parse_max_forwards("255") == 255
    for bad in ("256", "300", "-1", "", "7a", "1" * 5000):
        with pytest.raises(SipParseError):
            parse_max_forwards(bad)


def test_call_id() -> None:
    assert is_call_id("f736d9b174774027")
    assert is_call_id("1-24786@127.0.0.1")
    assert not is_call_id("")
    assert not is_call_id("a b")
    assert not is_call_id("a@b@c")
