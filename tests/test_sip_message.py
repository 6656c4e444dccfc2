"""SIP message parsing and serialization: captured traffic and the RFC 4475 torture tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ivr.sip.message import (
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
)
from ivr.sip.uri import SipUri
from ivr.sip.validate import Drop, Reject, Verdict, check_request, check_response, verdict_for_error

DATA = Path(__file__).parent / "sip_data" / "messages"
RFC4475 = Path(__file__).parent / "data" / "rfc4475"

# What our UAS does with each torture message: "ok" (process it), a status code (answer
# with it instead), or "drop" (send nothing). Where INDEX.tsv allows a choice, the comment
# says which one we made.
EXPECTED: dict[str, str | int] = {
    "wsinv.dat": "ok",
    "intmeth.dat": 501,
    "esc01.dat": "ok",
    "escnull.dat": "ok",
    "esc02.dat": 501,
    "lwsdisp.dat": "ok",
    "longreq.dat": "ok",
    "dblreq.dat": "ok",  # the REGISTER; the INVITE after it is ignored
    "semiuri.dat": "ok",
    "transports.dat": "ok",
    "mpart01.dat": "ok",
    "unreason.dat": "ok",
    "noreason.dat": "ok",
    "badinv01.dat": 400,
    "clerr.dat": 400,
    "ncl.dat": 400,
    "scalar02.dat": 400,
    "scalarlg.dat": "drop",
    "quotbal.dat": 400,
    "ltgtruri.dat": 400,  # strict: no stripping of <>
    "lwsruri.dat": 400,  # strict: no guessing around LWS in the request line
    "lwsstart.dat": 400,
    "trws.dat": 400,
    "escruri.dat": 400,
    "baddate.dat": "ok",  # we never read Date, so its bad time zone does not matter
    "regbadct.dat": 400,
    "badaspec.dat": 400,
    "baddn.dat": 400,
    "badvers.dat": 505,
    "mismatch01.dat": 400,
    "mismatch02.dat": 501,  # unknown method wins over the CSeq mismatch, as RFC 4475 prefers
    "bigcode.dat": "drop",
    "badbranch.dat": "ok",  # accepted; RFC 2543-style transaction matching applies
    "insuf.dat": 400,
    "unkscm.dat": 416,
    "novelsc.dat": 416,
    "unksm2.dat": "ok",  # parses; only a registrar would reject the isbn: To
    "bext01.dat": 420,
    "invut.dat": 415,
    "regaut01.dat": "ok",  # not a registrar: the Authorization header is ignored
    "multi01.dat": 400,
    "mcl01.dat": 400,
    "bcast.dat": "ok",  # a valid response; no transaction matches it, so it goes nowhere
    "zeromf.dat": "ok",  # addressed to us: Max-Forwards 0 is only a proxy's concern
    "cparam01.dat": "ok",
    "cparam02.dat": "ok",
    "regescrt.dat": "ok",
    "sdp01.dat": 406,
    "inv2543.dat": "ok",
}


def triage(data: bytes) -> tuple[Request | Response | None, Verdict | None]:
    """Parse and validate as the user agent will: the message (if readable) and the verdict."""
    try:
        message = parse_message(data)
    except SipParseError as err:
        return None, verdict_for_error(err)
    if isinstance(message, Request):
        return message, check_request(message)
    return message, check_response(message)


def outcome(verdict: Verdict | None) -> str | int:
    if verdict is None:
        return "ok"
    return verdict.status if isinstance(verdict, Reject) else "drop"


def torture(name: str) -> bytes:
    return (RFC4475 / name).read_bytes()


def test_expectations_cover_every_torture_file_and_index_row() -> None:
    files = {p.name for p in RFC4475.glob("*.dat")}
    with (RFC4475 / "INDEX.tsv").open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(files) == 49
    assert {row["file"] for row in rows} == files == set(EXPECTED)
    for row in rows:  # the RFC's invalid messages are never processed as they are
        if row["rfc_verdict"] == "invalid":
            assert EXPECTED[row["file"]] != "ok" or row["file"] == "baddate.dat"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rfc4475_outcome(name: str) -> None:
    message, verdict = triage(torture(name))
    assert outcome(verdict) == EXPECTED[name]
    if isinstance(verdict, Reject):
        # Every rejection can be sent: it answers the request's top Via with a real status line.
        request = message if isinstance(message, Request) else None
        if request is None:
            with pytest.raises(SipParseError) as info:
                parse_message(torture(name))
            assert isinstance(info.value.partial, Request)
            request = info.value.partial
        response = parse_message(bytes(verdict.response(request, to_tag="t1")))
        assert isinstance(response, Response)
        assert response.status == verdict.status
        assert response.headers.get_all("Via") == request.headers.get_all("Via")


@pytest.mark.parametrize("name", sorted(n for n, v in EXPECTED.items() if v == "ok"))
def test_rfc4475_valid_messages_survive_a_round_trip(name: str) -> None:
    message = parse_message(torture(name))
    again = parse_message(bytes(message))
    assert bytes(again) == bytes(message)
    # Serializing adds the Content-Length an RFC 2543 sender left out (inv2543.dat); nothing else
    # changes.
    assert without_length(again) == without_length(message)
    assert again.body == message.body


def without_length(message: Request | Response) -> list[tuple[str, str]]:
    return [(n, v) for n, v in message.headers if n.lower() not in ("content-length", "l")]


def test_wsinv_folding_and_whitespace() -> None:
    request = Request.parse(torture("wsinv.dat"))
    assert request.method == "INVITE"
    assert request.max_forwards() == 68
    assert (request.cseq().number, request.cseq().method) == (9, "INVITE")
    assert request.to_addr().tag == "1918181833n"
    from_ = request.from_addr()
    assert from_.display == 'J Rosenberg \\"'
    assert from_.tag == "98asjd8"
    vias = request.vias()
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    contact = request.contacts()[0]
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert len(request.body) == 150


def test_escapes_in_uris_are_expanded() -> None:
    request = Request.parse(torture("esc01.dat"))
    uri = request.request_uri()
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host) == ("sips:user@example.com", "example.net")
    assert str(request.to_addr().uri) == "sip:user@example.com"
    from_uri = request.from_addr().uri
    assert isinstance(from_uri, SipUri) and from_uri.user == "I have spaces"
    contact = request.contacts()[0].uri
    assert isinstance(contact, SipUri)
    assert contact.user == "caller"
    assert contact.params == {"lr": None, "name": "value%41"}


def test_escaped_nulls_do_not_truncate() -> None:
    request = Request.parse(torture("escnull.dat"))
    users = [c.uri.user for c in request.contacts() if isinstance(c.uri, SipUri)]
    assert users == ["\x00", "\x00\x00"]
    to = request.to_addr().uri
    assert isinstance(to, SipUri) and to.user == "null-\x00-null"


def test_percent_in_method_and_header_names_is_literal() -> None:
    request = Request.parse(torture("esc02.dat"))
    assert request.method == "RE%47IST%45R"
    assert len(request.contacts()) == 2
    assert request.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_semicolon_in_user_part() -> None:
    uri = Request.parse(torture("semiuri.dat")).request_uri()
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u@example.net", "example.com", {})


def test_long_values_and_34_vias() -> None:
    request = Request.parse(torture("longreq.dat"))
    vias = request.vias()
    assert len(vias) == 34
    assert vias[0].host == "sip33.example.com"
    assert vias[-1].received == "192.0.2.5"
    assert request.to_addr().uri.port == 6000  # type: ignore[union-attr]
    params = request.from_addr().params
    valueless = [name for name in params if name.startswith("unknownvaluelessparamname")]
    assert len(valueless) == 1 and params[valueless[0]] is None


def test_trailing_octets_after_content_length_are_ignored() -> None:
    request = Request.parse(torture("dblreq.dat"))
    assert (request.method, request.body) == ("REGISTER", b"")
    assert request.call_id() == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"


def test_odd_characters_in_tokens_and_quoted_strings() -> None:
    request = Request.parse(torture("intmeth.dat"))
    assert request.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert request.to_addr().display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    from_ = request.from_addr()
    assert from_.display == "token1~` token2'+_ token3*%!.-"
    assert from_.params["fromparam''~+*_!.-%"] == "работающий"
    assert from_.tag == "_token~1'+`*%!-."
    uri = request.request_uri()
    assert isinstance(uri, SipUri)
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert request.call_id() == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_binary_multipart_body_is_framed_by_content_length() -> None:
    request = Request.parse(torture("mpart01.dat"))
    assert len(request.body) == 553
    assert b"\x00" in request.body and request.body.endswith(b"--7a9cbec02ceef655--\r\n")


def test_reason_phrases() -> None:
    unusual = Response.parse(torture("unreason.dat"))
    assert unusual.status == 200
    assert unusual.reason.startswith("= 2**3 * 5**2 \u043d\u043e")
    empty = Response.parse(torture("noreason.dat"))
    assert (empty.status, empty.reason) == (100, "")


def test_contact_parameters_with_and_without_brackets() -> None:
    bare = Request.parse(torture("cparam01.dat")).contacts()[0]
    assert bare.params == {"unknownparam": None}
    assert isinstance(bare.uri, SipUri) and bare.uri.params == {}
    bracketed = Request.parse(torture("cparam02.dat")).contacts()[0]
    assert bracketed.params == {}
    assert isinstance(bracketed.uri, SipUri) and bracketed.uri.params == {"unknownparam": None}
    escaped = Request.parse(torture("regescrt.dat")).contacts()[0].uri
    assert isinstance(escaped, SipUri)
    assert escaped.headers == (("Route", "<sip:sip.example.com>"),)


def test_unknown_transports_and_broadcast_via_parse() -> None:
    vias = Request.parse(torture("transports.dat")).vias()
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert Response.parse(torture("bcast.dat")).vias()[1].host == "255.255.255.255"


def test_rejections_carry_the_headers_rfc_3261_asks_for() -> None:
    _, bext = triage(torture("bext01.dat"))
    assert isinstance(bext, Reject)
    assert bext.headers == (("Unsupported", "nothingSupportsThis, nothingSupportsThisEither"),)
    _, invut = triage(torture("invut.dat"))
    assert isinstance(invut, Reject) and ("Accept", "application/sdp") in invut.headers
    _, intmeth = triage(torture("intmeth.dat"))
    assert isinstance(intmeth, Reject) and intmeth.headers[0][0] == "Allow"


def test_unparseable_request_keeps_enough_for_a_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(torture("clerr.dat"))
    partial = info.value.partial
    assert isinstance(partial, Request) and partial.method == "INVITE"
    response = make_response(partial, 400, to_tag="x1")
    assert response.call_id() == "clerr.0ha0isndaksdjweiafasdk3"
    assert response.cseq().number == 8
    assert response.to_addr().tag == "x1"
    assert response.top_via().branch == "z9hG4bK-39234-23523"


def test_bad_response_is_dropped_not_answered() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(torture("bigcode.dat"))
    assert isinstance(info.value.partial, Response)
    assert isinstance(verdict_for_error(info.value), Drop)


def test_missing_headers_still_get_a_400_with_what_there_is() -> None:
    request = Request.parse(torture("insuf.dat"))
    verdict = check_request(request)
    assert isinstance(verdict, Reject) and verdict.status == 400
    response = verdict.response(request)
    assert response.headers.get("CSeq") == "193942 INVITE"
    assert "Call-ID" not in response.headers


@pytest.mark.parametrize("path", sorted(DATA.glob("*.sip")), ids=lambda p: p.name)
def test_captured_messages_round_trip(path: Path) -> None:
    message = parse_message(path.read_bytes())
    assert parse_message(bytes(message)) == message
    message.cseq()
    message.top_via()
    message.from_addr()
    message.to_addr()
    verdict = check_request(message) if isinstance(message, Request) else check_response(message)
    assert verdict is None


def test_captured_baresip_invite_fields() -> None:
    request = Request.parse((DATA / "baresip_invite.sip").read_bytes())
    via = request.top_via()
    assert (via.host, via.port, via.wants_rport, via.rport) == ("127.0.0.1", 5396, True, None)
    assert via.rfc3261_branch
    assert request.headers.values("Allow")[:3] == ["INVITE", "ACK", "BYE"]
    assert request.content_type() == "application/sdp"
    assert len(request.body) == 340


def test_serialization_fixes_content_length_and_keeps_names() -> None:
    request = Request.parse((DATA / "sipp_uac_invite.sip").read_bytes())
    request.body = b"v=0\r\n"
    data = bytes(request)
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in data
    assert data.startswith(b"INVITE sip:service@127.0.0.1:5391 SIP/2.0\r\nVia: ")
    compact = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\ni: x\r\nl: 0\r\n\r\n")
    assert bytes(compact) == b"OPTIONS sip:a@b SIP/2.0\r\ni: x\r\nl: 0\r\n\r\n"


def test_authentication_header_is_not_split_on_commas() -> None:
    response = Response.parse((DATA / "kamailio_401_register.sip").read_bytes())
    challenge = response.headers.values("WWW-Authenticate")
    assert len(challenge) == 1 and 'nonce="ZWQ1' in challenge[0]
    assert response.top_via().received == "127.0.0.1"
    assert response.top_via().rport == 5070


def test_make_response_follows_rfc3261_8_2_6() -> None:
    request = Request.parse(
        b"INVITE sip:ivr@127.0.0.1 SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKa\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKb, SIP/2.0/UDP 127.0.0.4;branch=z9hG4bKc\r\n"
        b"Record-Route: <sip:127.0.0.3;lr>\r\n"
        b"f: <sip:a@127.0.0.2>;tag=1\r\nt: <sip:ivr@127.0.0.1>\r\n"
        b"i: abc\r\nCSeq: 4 INVITE\r\nTimestamp: 54\r\nContent-Length: 0\r\n\r\n"
    )
    trying = make_response(request, 100)
    assert trying.to_addr().tag is None
    assert trying.headers.get("Timestamp") == "54"
    assert "Record-Route" not in trying.headers
    ok = make_response(
        request, 200, to_tag="ivr1", extra_headers=[("Contact", "<sip:ivr@127.0.0.1>")]
    )
    assert ok.reason == "OK"
    assert [v.branch for v in ok.vias()] == ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc"]
    assert ok.to_addr().tag == "ivr1"
    assert ok.from_addr().tag == "1"
    assert (ok.call_id(), str(ok.cseq())) == ("abc", "4 INVITE")
    assert ok.headers.get("Record-Route") == "<sip:127.0.0.3;lr>"
    assert bytes(ok).endswith(b"Contact: <sip:ivr@127.0.0.1>\r\nContent-Length: 0\r\n\r\n")
    tagged = make_response(Request.parse(bytes(make_request_with_to_tag())), 481, to_tag="other")
    assert tagged.to_addr().tag == "theirs"


def make_request_with_to_tag() -> Request:
    return Request.parse(
        b"BYE sip:ivr@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKz\r\n"
        b"From: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:ivr@127.0.0.1>;tag=theirs\r\n"
        b"Call-ID: q\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", "not ended by an empty line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\n Via: x\r\n\r\n", "continuation line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia x\r\n\r\n", "bad header line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nV(a): x\r\n\r\n", "bad header line"),
        (b"OPTIONS sip:a@b HTTP/1.1\r\nl: 0\r\n\r\n", "bad SIP version"),
        (b"SIP/2.0 99 Low\r\nl: 0\r\n\r\n", "bad status code"),
        (b"SIP/2.0 200 OK\r\nl: 5\r\n\r\nabc", "shorter than Content-Length"),
        (b"SIP/2.0 200 OK\r\nl: 1e3\r\n\r\nabc", "bad Content-Length"),
    ],
)
def test_malformed_messages_raise_sip_parse_error(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError, match=reason):
        parse_message(data)


def test_lenient_framing() -> None:
    lf_only = parse_message(b"\r\nOPTIONS sip:a@b SIP/2.0\nCall-ID: x\n\nbody")
    assert isinstance(lf_only, Request)
    assert (lf_only.call_id(), lf_only.body) == ("x", b"body")
    no_length = parse_message(b"SIP/2.0 200 OK\r\nCall-ID: y\r\n\r\nrest of datagram")
    assert no_length.body == b"rest of datagram"
    assert parse_message(b"SIP/2.0 200 OK\r\nl: 004\r\n\r\nabcdef").body == b"abcd"


def test_raw_octets_survive_a_round_trip() -> None:
    data = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: \xff\xfe caf\xc3\xa9\r\nl: 0\r\n\r\n"
    message = parse_message(data)
    assert message.headers.get("Subject") == "\udcff\udcfe caf\u00e9"
    assert bytes(message) == data
