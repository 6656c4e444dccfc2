"""Header multi-dict and the lexical helpers under it (ivr.sip.headers, ivr.sip.params)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers, header_key
from ivr.sip.params import (
    escape,
    format_params,
    parse_params,
    quote_string,
    read_quoted,
    split_top,
    unescape,
)


def test_lookup_is_case_insensitive_and_knows_compact_forms() -> None:
    headers = Headers([("i", "abc"), ("VIA", "SIP/2.0/UDP a"), ("v", "SIP/2.0/UDP b")])
    assert headers.get("call-id") == "abc"
    assert headers.get("Call-ID") == "abc"
    assert headers.get_all("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert "CALL-ID" in headers and "To" not in headers
    assert headers.get("To", "none") == "none"
    assert [name for name, _ in headers] == ["i", "VIA", "v"]
    assert header_key("x") == "session-expires" and header_key("u") == "allow-events"


def test_list_fields_split_outside_quotes_and_brackets() -> None:
    headers = Headers(
        [
            ("Contact", '"Smith, J" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>'),
            ("m", "sip:e@f"),
            ("Allow", "INVITE,ACK , BYE"),
            ("WWW-Authenticate", 'Digest realm="a", nonce="b", qop="auth,auth-int"'),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("Call-ID", "a,b"),
        ]
    )
    assert headers.values("Contact") == ['"Smith, J" <sip:a@b;x=1,2>;q=0.5', "<sip:c@d>", "sip:e@f"]
    assert headers.values("Allow") == ["INVITE", "ACK", "BYE"]
    assert len(headers.values("WWW-Authenticate")) == 1
    assert headers.values("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert headers.values("Call-ID") == ["a,b"]


def test_set_remove_copy_and_equality() -> None:
    headers = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    copy = headers.copy()
    headers.set("A", "9")
    assert list(headers) == [("A", "9"), ("B", "2")]
    headers.set("C", "4")
    headers.remove("b")
    assert list(headers) == [("A", "9"), ("C", "4")]
    assert len(headers) == 2
    assert copy == Headers([("A", "1"), ("B", "2"), ("a", "3")])
    assert copy != headers


def test_split_top_reports_unterminated_quotes() -> None:
    assert split_top('a;b="x;y";c', ";") == ["a", 'b="x;y"', "c"]
    assert split_top('"a\\"b,c",d', ",") == ['"a\\"b,c"', "d"]
    with pytest.raises(SipParseError, match="unterminated"):
        split_top('"abc, d', ",")


def test_quoted_strings() -> None:
    assert read_quoted('"a \\"b\\" c" rest') == ('a "b" c', 11)
    assert quote_string('a "b" \\') == '"a \\"b\\" \\\\"'
    with pytest.raises(SipParseError):
        read_quoted('"no end')
    with pytest.raises(SipParseError):
        read_quoted("no start")


def test_params_allow_whitespace_and_quotes() -> None:
    assert parse_params(' ; Tag = 12 ;lr; q=0.7 ;x="a;b"') == {
        "tag": "12",
        "lr": None,
        "q": "0.7",
        "x": "a;b",
    }
    assert parse_params("") == {}
    assert format_params({"tag": "1", "lr": None, "x": "a b"}) == ';tag=1;lr;x="a b"'


@pytest.mark.parametrize("text", [";;", "; ;a", ";a=", ";a b=1", "x;a", ';a="b"c', ";a=<b>"])
def test_bad_params(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_params(text)


def test_escapes() -> None:
    assert unescape("a%20b%41") == "a bA"
    assert unescape("%00") == "\x00"
    assert unescape("%ff") == "\udcff"  # not UTF-8: kept as a surrogate escape
    with pytest.raises(SipParseError):
        unescape("50%")
    assert escape("a b@c", "") == "a%20b%40c"
    assert escape("\udcff", "") == "%FF"
