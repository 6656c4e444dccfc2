"""What a UAS answers to requests it cannot take (ivr.sip.validate)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.message import Request, Response, parse_message
from ivr.sip.validate import (
    ALLOW,
    Drop,
    Reject,
    check_request,
    check_response,
    verdict_for_error,
)

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)
BASE = {
    "Via": "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKabc;rport",
    "Max-Forwards": "70",
    "From": "<sip:caller@127.0.0.2>;tag=f1",
    "To": "<sip:ivr@127.0.0.1>",
    "Call-ID": "c1@127.0.0.2",
    "CSeq": "1 INVITE",
    "Contact": "<sip:caller@127.0.0.2:5060>",
    "Content-Type": "application/sdp",
}


def invite(
    method: str = "INVITE",
    uri: str = "sip:ivr@127.0.0.1",
    body: bytes = SDP,
    drop: tuple[str, ...] = (),
    fields: dict[str, str] | None = None,
    **named: str,
) -> Request:
    """An INVITE (or ``method``) from BASE; ``Content_Type="x"`` or ``fields`` change fields."""
    changes = {**(fields or {}), **{k.replace("_", "-"): v for k, v in named.items()}}
    headers = {**BASE, **changes}
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    data = ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    return Request.parse(data)


def status(request: Request) -> int | None:
    verdict = check_request(request)
    assert not isinstance(verdict, Drop)
    return None if verdict is None else verdict.status


def test_a_plain_invite_passes() -> None:
    assert check_request(invite()) is None
    assert check_request(invite(drop=("Max-Forwards", "Contact"))) is None  # RFC 2543 style
    assert check_request(invite(uri="tel:+8610123")) is None


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_field_is_400(name: str) -> None:
    verdict = check_request(invite(drop=(name,)))
    assert isinstance(verdict, Reject) and verdict.status == 400
    assert name in verdict.why


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CSeq", "1 BYE"),
        ("CSeq", "x INVITE"),
        ("CSeq", "99999999999 INVITE"),
        ("Max-Forwards", "256"),
        ("Max-Forwards", "seventy"),
        ("Call-ID", "has space"),
        ("From", "Bell, A <sip:a@b>"),
        ("To", "<sip:ivr@127.0.0.1"),
        ("Via", "SIP/2.0/UDP"),
        ("Contact", "*"),
        ("Contact", "<sip:a@b> junk"),
    ],
)
def test_bad_field_is_400(field: str, value: str) -> None:
    assert status(invite(fields={field: value})) == 400


def test_version_unknown_method_and_uri() -> None:
    data = bytes(invite()).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    assert status(Request.parse(data)) == 505
    unknown = check_request(invite("FROB", CSeq="1 FROB", body=b""))
    assert isinstance(unknown, Reject) and unknown.status == 501
    assert unknown.headers == (("Allow", ", ".join(ALLOW)),)
    assert status(invite("REGISTER", CSeq="1 REGISTER", body=b"", Contact="*")) is None
    assert status(invite(uri="mailto:a@b")) == 416
    assert status(invite(uri="sip:a@b;;x")) == 400
    assert status(invite(uri="sip:a@b?Subject=x")) == 400


def test_require_and_supported_extensions() -> None:
    verdict = check_request(invite(Require="100rel, timer"))
    assert isinstance(verdict, Reject) and verdict.status == 420
    assert verdict.headers == (("Unsupported", "100rel, timer"),)
    assert check_request(invite(Require="timer"), supported=frozenset({"timer"})) is None
    assert status(invite("CANCEL", CSeq="1 CANCEL", body=b"", Require="100rel")) is None
    assert status(invite(Proxy_Require="foo")) is None


def test_invite_body_type_encoding_and_accept() -> None:
    verdict = check_request(invite(Content_Type="application/xml"))
    assert isinstance(verdict, Reject) and verdict.status == 415
    assert verdict.headers == (("Accept", "application/sdp"),)
    assert status(invite(Content_Type="Application/SDP; charset=utf-8")) is None
    gzip = check_request(invite(Content_Encoding="gzip"))
    assert isinstance(gzip, Reject) and gzip.status == 415
    assert ("Accept-Encoding", "identity") in gzip.headers
    assert status(invite(Content_Encoding="identity")) is None
    assert status(invite(Accept="text/html")) == 406
    assert status(invite(Accept="text/html, application/sdp;q=0.5")) is None
    assert status(invite(Accept="*/*")) is None
    assert status(invite(body=b"", drop=("Content-Type",), Accept="text/plain")) == 406
    # INFO bodies are the user agent's business, not ours
    assert status(invite("INFO", CSeq="2 INFO", Content_Type="application/dtmf-relay")) is None


def test_ack_is_never_answered() -> None:
    ack = invite("ACK", CSeq="1 ACK", Content_Type="text/plain")
    assert check_request(ack) is None
    broken = invite("ACK", CSeq="1 INVITE")
    assert isinstance(check_request(broken), Drop)


def test_responses_are_dropped_when_unmatchable() -> None:
    ok = parse_message(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(ok, Response)
    assert check_response(ok) is None
    ok.headers.remove("Via")
    assert check_response(ok) == Drop("missing Via")
    ok.version = "SIP/3.0"
    assert isinstance(check_response(ok), Drop)


def test_parse_errors_become_400_or_drop() -> None:
    def verdict(data: bytes) -> object:
        with pytest.raises(SipParseError) as info:
            parse_message(data)
        return verdict_for_error(info.value)

    answerable = verdict(b"INVITE  sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n")
    assert isinstance(answerable, Reject) and answerable.status == 400
    assert isinstance(verdict(b"INVITE  sip:a@b SIP/2.0\r\nTo: x\r\n\r\n"), Drop)
    assert isinstance(verdict(b"ACK  sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n"), Drop)
    assert isinstance(verdict(b"\x00\x01garbage"), Drop)
