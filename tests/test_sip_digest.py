"""Digest authentication: the RFC 2617 and RFC 7616 worked examples, and real challenges."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ivr.sip.digest import (
    Challenge,
    Credentials,
    challenge_value,
    credentials,
    digest_response,
    parse_auth_params,
    pick_challenge,
)
from ivr.sip.errors import SipParseError
from ivr.sip.message import Response

DATA = Path(__file__).parent / "sip_data" / "messages"


def test_rfc2617_section_3_5_example() -> None:
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    response, qop = digest_response(challenge, method="GET", uri="/dir/index.html",
                                    username="Mufasa", password="Circle Of Life",
                                    cnonce="0a4f113b", nc=1)  # fmt: skip
    assert (response, qop) == ("6629fae49393a05397450978507c4ef1", "auth")


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])  # fmt: skip
def test_rfc7616_section_3_9_1_examples(algorithm: str, expected: str) -> None:
    challenge = Challenge.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    response, _ = digest_response(challenge, method="GET", uri="/dir/index.html",
                                  username="Mufasa", password="Circle of Life",
                                  cnonce=cnonce)  # fmt: skip
    assert response == expected


def test_kamailio_challenge_without_qop_gives_rfc2069_credentials() -> None:
    response = Response.parse((DATA / "kamailio_401_register.sip").read_bytes())
    challenge = pick_challenge(response.headers.get_all("WWW-Authenticate"))
    assert challenge is not None
    assert (challenge.realm, challenge.qop, challenge.algorithm) == ("127.0.0.1", (), "MD5")
    value = credentials(challenge, method="REGISTER", uri="sip:127.0.0.1", username="1001",
                        password="secret", cnonce="unused")  # fmt: skip
    params = parse_auth_params(value.removeprefix("Digest "))
    ha1 = hashlib.md5(b"1001:127.0.0.1:secret").hexdigest()
    ha2 = hashlib.md5(b"REGISTER:sip:127.0.0.1").hexdigest()
    assert params["response"] == hashlib.md5(f"{ha1}:{challenge.nonce}:{ha2}".encode()).hexdigest()
    assert "nc" not in params and "cnonce" not in params and "qop" not in params
    assert params["algorithm"] == "MD5" and params["uri"] == "sip:127.0.0.1"


def test_credentials_with_qop_carry_nc_cnonce_and_opaque() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth", opaque="o p"')
    params = parse_auth_params(credentials(challenge, method="INVITE", uri="sip:x@y",
                                           username="u", password="p", cnonce="c",
                                           nc=3).removeprefix("Digest "))  # fmt: skip
    assert (params["qop"], params["nc"], params["cnonce"], params["opaque"]) == (
        "auth", "00000003", "c", "o p")
    assert "algorithm" not in params  # not in the challenge, so not in the answer


def test_md5_sess_and_auth_int() -> None:
    sess = Challenge.parse('Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth-int"')
    response, qop = digest_response(sess, method="REGISTER", uri="sip:r", username="u",
                                    password="p", cnonce="c", nc=1, body=b"")  # fmt: skip
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    ha1 = md5(f"{md5('u:r:p')}:n:c")
    ha2 = md5(f"REGISTER:sip:r:{md5('')}")
    assert qop == "auth-int"
    assert response == md5(f"{ha1}:n:00000001:c:auth-int:{ha2}")


def test_pick_prefers_the_strongest_challenge_we_can_answer() -> None:
    values = [
        'Digest realm="r", nonce="1", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="2", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="3", algorithm=SHA3-999, qop="auth"',
        'Basic realm="r"',
    ]
    chosen = pick_challenge(values)
    assert chosen is not None and chosen.nonce == "2"
    assert pick_challenge(['Digest realm="r", nonce="4", qop="auth-conf"']) is None
    assert pick_challenge(["Digest realm=r"]) is None  # no nonce


def test_auth_params_grammar() -> None:
    assert parse_auth_params('a=1, b="x, y", c = "q\\"uote"') == {
        "a": "1", "b": "x, y", "c": 'q"uote'}
    with pytest.raises(SipParseError):
        parse_auth_params('a="unterminated')
    with pytest.raises(SipParseError):
        parse_auth_params("a=1 b=2")


def test_server_challenge_round_trips_and_our_credentials_check_out() -> None:
    value = challenge_value("agents", "n-1", algorithm="SHA-256", stale=True, opaque="o")
    challenge = Challenge.parse(value)
    assert (challenge.realm, challenge.nonce, challenge.algorithm, challenge.qop,
            challenge.stale, challenge.opaque) == ("agents", "n-1", "SHA-256", ("auth",), True,
                                                   "o")  # fmt: skip
    header = credentials(challenge, method="REGISTER", uri="sip:r", username="u", password="p",
                         cnonce="c", nc=2)  # fmt: skip
    creds = Credentials.parse(header)
    assert (creds.nc, creds.cnonce, creds.qop, creds.opaque) == (2, "c", "auth", "o")
    assert creds.supported and creds.expected_response("REGISTER", "p") == creds.response
    assert creds.expected_response("REGISTER", "other") != creds.response
    plain = Credentials.parse(credentials(Challenge.parse('Digest realm="r", nonce="n"'),
                                          method="REGISTER", uri="sip:r", username="u",
                                          password="p", cnonce="c"))  # fmt: skip
    assert (plain.qop, plain.nc) == (None, None)  # RFC 2069 style
    assert plain.expected_response("REGISTER", "p") == plain.response


def test_auth_params_read_a_long_list() -> None:
    text = ", ".join(f'p{i}="v{i}"' for i in range(5000))
    params = parse_auth_params(text)
    assert len(params) == 5000 and params["p4999"] == "v4999"
