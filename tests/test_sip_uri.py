"""SIP URIs and name-addr values (ivr.sip.uri)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.uri import AbsoluteUri, NameAddr, SipUri, parse_host_port, parse_uri


def test_full_sip_uri() -> None:
    uri = SipUri.parse("sips:alice:secret@Example.com:5061;transport=TCP;lr?Subject=hi%20there&P=1")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "Example.com",
        5061,
    )
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.headers == (("Subject", "hi there"), ("P", "1"))
    assert str(uri) == "sips:alice:secret@Example.com:5061;transport=TCP;lr?Subject=hi%20there&P=1"


def test_ipv6_and_defaults() -> None:
    uri = SipUri.parse("sip:[2001:db8::1]:5070")
    assert (uri.user, uri.host, uri.port) == (None, "[2001:db8::1]", 5070)
    assert uri.host_port() == ("2001:db8::1", 5070)
    assert SipUri.parse("sip:127.0.0.1").host_port() == ("127.0.0.1", 5060)
    assert parse_host_port("[::1]") == ("[::1]", None)


def test_escaped_and_plain_forms_parse_equal() -> None:
    assert SipUri.parse("sip:%75se%72@host") == SipUri.parse("sip:user@host")
    odd = SipUri(host="h", user="a@b:c d")
    assert str(odd) == "sip:a%40b%3Ac%20d@h"
    assert SipUri.parse(str(odd)) == odd


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:user@",
        "sip:us er@host",
        "sip:user@host:99999",
        "sip:user@host:",
        "sip:user@host;;lr",
        "sip:user@host?",
        "sip:user@[::1",
        "sip:user@[::1]x",
        "sip:u%zz@host",
        "http://example.com",
        "sip:user@ho st",
    ],
)
def test_bad_sip_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        SipUri.parse(text)


def test_other_schemes_stay_opaque() -> None:
    tel = parse_uri("tel:+861012345678;phone-context=example.com")
    assert tel == AbsoluteUri("tel", "+861012345678;phone-context=example.com")
    assert str(tel) == "tel:+861012345678;phone-context=example.com"
    assert isinstance(parse_uri("SIP:a@b"), SipUri)
    for bad in ("no-scheme", "1x:abc", "urn:a b", ":x"):
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_name_addr_forms() -> None:
    quoted = NameAddr.parse('  "Alice \\"A\\" Li" <sip:alice@127.0.0.1> ;tag=abc ; x = "1 2"')
    assert quoted.display == 'Alice "A" Li'
    assert quoted.params == {"tag": "abc", "x": "1 2"}
    tokens = NameAddr.parse("Bob  Smith<sip:bob@h>")
    assert tokens.display == "Bob Smith"
    bare = NameAddr.parse("sip:carol@h;user=phone;tag=9")
    assert bare.display is None
    assert bare.params == {"user": "phone", "tag": "9"}
    assert isinstance(bare.uri, SipUri) and bare.uri.params == {}
    assert NameAddr.parse("<sip:d@h>").display is None
    utf8 = NameAddr.parse('"张三" <sip:zhang@h>')
    assert utf8.display == "张三"


def test_name_addr_serialization_and_tags() -> None:
    addr = NameAddr.parse("sip:carol@h")
    tagged = addr.with_tag("t1")
    assert tagged.tag == "t1" and addr.tag is None
    assert str(tagged) == "<sip:carol@h>;tag=t1"
    named = NameAddr(SipUri(host="h", user="x"), 'A "q"', {"expires": "60"})
    assert str(named) == '"A \\"q\\"" <sip:x@h>;expires=60'
    assert NameAddr.parse(str(named)) == named


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        '"quoted" sip:a@b',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        "sip:a@b?Route=x",
        "sip:a@b, sip:c@d",
        "<sip:a@b> junk",
        "<sip:a@b>;;",
    ],
)
def test_bad_name_addrs(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)
