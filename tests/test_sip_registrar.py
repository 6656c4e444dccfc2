"""The registrar agents' phones REGISTER to: digest challenges and checks, nonces (stale, replay,
bounds), §10.3 binding rules (423, caps, removal, CSeq order), expiry, hostile input; then over
UDP through the user agent with a scripted phone, and with baresip registering for real.

Digests are computed here with hashlib on their own (not with ivr.sip.digest), so a shared
mistake cannot hide; the baresip captures carry the digest baresip itself computed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import Baresip, async_wait_for
from sip_phone import Phone, run, start_ua

from ivr.core.clock import LoopClock, VirtualClock
from ivr.sip.digest import Challenge, Credentials, parse_auth_params
from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response
from ivr.sip.registrar import MAX_AUTH_LENGTH, Binding, Registrar, Reply
from ivr.sip.validate import Reject, check_request, verdict_for_error

REALM = "agents.test"
USERS = {"1001": "pw-one", "1002": "pw-two"}
SOURCE = ("127.0.0.1", 5070)
R_URI = "sip:127.0.0.1:5060"
MESSAGES = Path(__file__).parent / "sip_data" / "messages"
needs_baresip = pytest.mark.usefixtures("baresip_program")  # missing: the test fails, naming it


def _hash(algorithm: str, text: str) -> str:
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, text.encode()).hexdigest()


def authorization(
    nonce: str,
    *,
    user: str = "1001",
    password: str | None = None,
    nc: int = 1,
    uri: str = R_URI,
    realm: str = REALM,
    algorithm: str = "MD5",
    cnonce: str = "0a4f113b",
) -> str:
    """RFC 7616 §3.4.1 with qop=auth, computed here."""
    password = USERS.get(user, "?") if password is None else password
    ha1 = _hash(algorithm, f"{user}:{realm}:{password}")
    ha2 = _hash(algorithm, f"REGISTER:{uri}")
    response = _hash(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc:08x}, '
            f'cnonce="{cnonce}"')  # fmt: skip


def register(
    *,
    user: str = "1001",
    auth: str | None = None,
    contacts: tuple[str, ...] = ("<sip:1001@192.0.2.10:5070>",),
    expires: str | None = None,
    call_id: str = "reg-1@192.0.2.10",
    cseq: int = 1,
    to: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> Request:
    """A REGISTER as a phone sends it, serialized and parsed back (and valid per §8.2)."""
    headers = Headers([("Via", "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-r1;rport")])
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:{user}@127.0.0.1>;tag=f1")
    headers.add("To", to or f"<sip:{user}@127.0.0.1>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} REGISTER")
    for contact in contacts:
        headers.add("Contact", contact)
    if expires is not None:
        headers.add("Expires", expires)
    headers.add("User-Agent", "scripted-phone/1")
    if auth is not None:
        headers.add("Authorization", auth)
    for name, value in extra:
        headers.add(name, value)
    request = Request.parse(bytes(Request("REGISTER", R_URI, headers)))
    assert check_request(request) is None
    return request


class Harness:
    """A registrar on a virtual clock that records ``on_change`` calls."""

    def __init__(self, **kwargs: object) -> None:
        self.clock = VirtualClock()
        self.changes: list[tuple[str, Binding | None]] = []
        self.registrar = Registrar(REALM, USERS.get, self.clock,
                                   on_change=lambda u, b: self.changes.append((u, b)),
                                   **kwargs)  # type: ignore[arg-type]  # fmt: skip

    def send(self, request: Request, source: tuple[str, int] = SOURCE) -> Reply:
        return self.registrar.handle(request, source)

    def nonce(self, reply: Reply | None = None, algorithm: str = "MD5") -> str:
        """The nonce of a 401 (a fresh one from an unauthenticated REGISTER by default)."""
        reply = reply or self.send(register())
        assert reply.status == 401
        return challenges(reply)[algorithm].nonce

    def bind(self, **kwargs: object) -> Reply:
        """An authenticated REGISTER on a fresh nonce."""
        user = str(kwargs.get("user", "1001"))
        auth = authorization(self.nonce(), user=user)
        return self.send(register(auth=auth, **kwargs))  # type: ignore[arg-type]


def challenges(reply: Reply) -> dict[str, Challenge]:
    values = [v for name, v in reply.headers if name == "WWW-Authenticate"]
    return {c.algorithm: c for c in (Challenge.parse(v) for v in values)}


def contacts_of(reply: Reply) -> dict[str, str]:
    """Contact URI -> expires, from a 200."""
    out = {}
    for name, value in reply.headers:
        if name == "Contact":
            uri, _, params = value.partition(">;")
            out[uri.lstrip("<")] = params.removeprefix("expires=")
    return out


# --- authentication ---------------------------------------------------------------------------


def test_no_authorization_gets_a_401_md5_challenge_with_qop_auth_and_fresh_nonces() -> None:
    h = Harness()
    first, second = h.send(register()), h.send(register())
    assert first.status == 401 and first.reason is None  # the standard phrase
    challenge = challenges(first)["MD5"]
    assert (challenge.realm, challenge.qop, challenge.stale) == (REALM, ("auth",), False)
    assert len(challenge.nonce) >= 32 and challenge.nonce != challenges(second)["MD5"].nonce
    assert h.registrar.bindings("1001") == [] and h.changes == []


def test_right_credentials_bind_and_the_200_lists_the_contact_with_its_expiry() -> None:
    h = Harness()
    reply = h.bind(expires="600", cseq=2)
    assert reply.status == 200
    assert contacts_of(reply) == {"sip:1001@192.0.2.10:5070": "600"}
    assert any(name == "Date" and value.endswith("GMT") for name, value in reply.headers)
    binding = h.registrar.binding("1001")
    assert binding == Binding("1001", "sip:1001@192.0.2.10:5070", SOURCE, 600.0,
                              "reg-1@192.0.2.10", 2, "scripted-phone/1")  # fmt: skip
    assert h.changes == [("1001", binding)]


def test_sha256_is_offered_first_when_configured_and_either_answer_is_taken() -> None:
    h = Harness(algorithms=("SHA-256", "MD5"))
    reply = h.send(register())
    names = [Challenge.parse(v).algorithm for n, v in reply.headers if n == "WWW-Authenticate"]
    assert names == ["SHA-256", "MD5"]
    nonce = h.nonce(reply, "SHA-256")
    ok = h.send(register(auth=authorization(nonce, algorithm="SHA-256")))
    assert ok.status == 200
    md5 = h.send(register(auth=authorization(h.nonce(), algorithm="MD5"), cseq=2))
    assert md5.status == 200


def test_wrong_password_and_unknown_user_get_the_same_403() -> None:
    h = Harness()
    wrong = h.send(register(auth=authorization(h.nonce(), password="guess")))
    unknown = h.send(register(user="9999", auth=authorization(h.nonce(), user="9999",
                                                              password="guess")))  # fmt: skip
    assert wrong.status == unknown.status == 403
    assert (wrong.reason, wrong.headers) == (unknown.reason, unknown.headers)
    assert h.registrar.users == [] and h.changes == []


def test_a_replayed_authorization_is_refused_as_stale_and_changes_nothing() -> None:
    h = Harness()
    auth = authorization(h.nonce())
    assert h.send(register(auth=auth, cseq=1)).status == 200
    before = h.registrar.binding("1001")
    replay = h.send(register(auth=auth, cseq=2))  # same nonce and nonce count
    assert replay.status == 401 and challenges(replay)["MD5"].stale
    nonce = challenges(replay)["MD5"].nonce
    assert h.registrar.binding("1001") == before and len(h.changes) == 1
    # the same nonce with a higher count is fine; a lower count again is not
    assert h.send(register(auth=authorization(nonce, nc=5), cseq=3)).status == 200
    assert h.send(register(auth=authorization(nonce, nc=3), cseq=4)).status == 401
    assert h.send(register(auth=authorization(nonce, nc=6), cseq=5)).status == 200


def test_an_old_or_unknown_nonce_gets_stale_true_and_a_new_nonce_works() -> None:
    h = Harness(nonce_lifetime=30.0)
    nonce = h.nonce()
    h.clock.advance(31.0)
    old = h.send(register(auth=authorization(nonce)))
    assert old.status == 401 and challenges(old)["MD5"].stale
    unknown = h.send(register(auth=authorization("never-issued")))
    assert unknown.status == 401 and challenges(unknown)["MD5"].stale
    # stale only with a right digest: a wrong password on an old nonce is still 403
    assert h.send(register(auth=authorization(nonce, password="guess"))).status == 403
    assert h.send(register(auth=authorization(h.nonce(old)))).status == 200


@pytest.mark.parametrize("auth", [
    'Digest username="1001", realm="other", nonce="n", uri="sip:127.0.0.1:5060", '
    'response="00", qop=auth, nc=00000001, cnonce="c"',                        # not our realm
    'Digest username="1001", realm="agents.test", nonce="n", uri="sip:127.0.0.1:5060"',
    'Digest username="1001", realm="agents.test", nonce="n", uri="sip:127.0.0.1:5060", '
    'response="00"',                                                           # no qop
    'Digest username="1001", realm="agents.test", nonce="n", uri="sip:127.0.0.1:5060", '
    'response="00", qop=auth, nc=1, cnonce="c"',                               # nc not 8 hex
    'Digest username="1001", realm="agents.test", nonce="n", uri="sip:127.0.0.1:5060", '
    'response="00", qop=auth, nc=00000001, cnonce="c", algorithm=MD5-sess',    # not offered
    'Digest username="1001", realm="agents.test", nonce="n", uri="sip:127.0.0.1:5060", '
    'response="00", qop=auth-int, nc=00000001, cnonce="c"',
    'Digest username="1001, realm="agents.test"',                              # unterminated
    'Basic MTAwMTpwdy1vbmU=',
    'Digest ' + ", ".join(f"p{i}=v" for i in range(MAX_AUTH_LENGTH // 4)),    # too long
])  # fmt: skip
def test_unusable_credentials_get_a_fresh_challenge(auth: str) -> None:
    h = Harness()
    reply = h.send(register(auth=auth))
    assert reply.status == 401 and not challenges(reply)["MD5"].stale


def test_a_digest_uri_that_is_not_the_request_uri_is_a_400() -> None:
    h = Harness()
    auth = authorization(h.nonce(), uri="sip:elsewhere.test")
    assert h.send(register(auth=auth)).status == 400
    assert h.registrar.users == []


def test_an_agent_registers_only_itself() -> None:
    h = Harness()
    other = h.send(register(auth=authorization(h.nonce()), to="<sip:1002@127.0.0.1>"))
    assert other.status == 403 and h.registrar.users == []
    crlf = h.send(register(auth=authorization(h.nonce()), to="<sip:1001%0D%0A@127.0.0.1>"))
    assert crlf.status == 403
    no_user = h.send(register(auth=authorization(h.nonce()), to="<sip:127.0.0.1>"))
    assert no_user.status == 404 and h.registrar.users == []


def test_hostile_user_names_are_refused_without_reaching_the_lookup() -> None:
    looked_up: list[str] = []

    def lookup(user: str) -> str | None:
        looked_up.append(user)
        return USERS.get(user)

    registrar = Registrar(REALM, lookup, VirtualClock())
    for name in ("10\x0101", "a b", "x" * 65, "1001\udcff"):
        nonce = challenges(registrar.handle(register(), SOURCE))["MD5"].nonce
        auth = authorization(nonce).replace('username="1001"', f'username="{name}"')
        assert registrar.handle(register(auth=auth), SOURCE).status == 403
    assert looked_up == []
    # a CR/LF inside the quoted name ends the header line: the message does not parse, and the
    # transport answers 400 before a registrar sees it
    raw = bytes(register(auth=authorization("n"))).replace(b'username="1001"',
                                                           b'username="10\r\n01"')  # fmt: skip
    with pytest.raises(SipParseError) as err:
        Request.parse(raw)
    assert isinstance(verdict_for_error(err.value), Reject)


# --- bindings ---------------------------------------------------------------------------------


def test_423_below_min_expires_and_long_expiries_are_capped() -> None:
    h = Harness(min_expires=60, max_expires=600)
    brief = h.bind(expires="30")
    assert brief.status == 423 and ("Min-Expires", "60") in brief.headers
    assert h.registrar.users == []
    param = h.bind(contacts=("<sip:1001@192.0.2.10:5070>;expires=10",), expires="3600", cseq=2)
    assert param.status == 423  # the Contact's parameter wins over Expires
    long = h.bind(expires="99999999999999999999999", cseq=3)
    assert long.status == 200 and contacts_of(long) == {"sip:1001@192.0.2.10:5070": "600"}
    default = h.bind(cseq=4)  # no expiry named: the default, capped
    assert contacts_of(default) == {"sip:1001@192.0.2.10:5070": "600"}


def test_expires_zero_removes_one_binding_and_star_removes_all() -> None:
    h = Harness()
    h.bind(contacts=("<sip:1001@192.0.2.10:5070>", "<sip:1001@192.0.2.11:5070>"))
    assert len(h.registrar.bindings("1001")) == 2
    one = h.bind(contacts=("<sip:1001@192.0.2.10:5070>;expires=0",), cseq=2)
    assert contacts_of(one) == {"sip:1001@192.0.2.11:5070": "3600"}
    assert h.changes[-1][1] is not None and h.changes[-1][1].contact.endswith("11:5070")
    assert h.bind(contacts=("*",), expires="5", cseq=3).status == 400
    assert h.bind(contacts=("*", "<sip:1001@192.0.2.10>"), expires="0", cseq=3).status == 400
    gone = h.bind(contacts=("*",), expires="0", cseq=3)
    assert gone.status == 200 and contacts_of(gone) == {}
    assert h.registrar.users == [] and h.changes[-1] == ("1001", None)


def test_refresh_order_follows_call_id_and_cseq() -> None:
    h = Harness()
    h.bind(cseq=10, expires="100")
    h.clock.advance(50.0)
    assert h.bind(cseq=11, expires="100").status == 200  # a refresh: expiry moves on
    refreshed = h.registrar.binding("1001")
    assert refreshed is not None and (refreshed.cseq, refreshed.expires_at) == (11, 150.0)
    for cseq in (11, 9):  # the same Call-ID must go up
        late = h.bind(cseq=cseq, expires="0")
        assert (late.status, late.reason) == (500, "CSeq Out Of Order")
    assert h.registrar.binding("1001") == refreshed
    # a new Call-ID (the phone restarted) takes over whatever its CSeq
    assert h.bind(cseq=1, call_id="restart@192.0.2.10").status == 200
    taken = h.registrar.binding("1001")
    assert taken is not None and taken.call_id == "restart@192.0.2.10"


def test_a_query_lists_bindings_and_bindings_expire_on_the_clock() -> None:
    h = Harness(min_expires=10)
    h.bind(expires="30")
    h.clock.advance(12.0)
    query = h.bind(contacts=(), cseq=2)
    assert query.status == 200 and contacts_of(query) == {"sip:1001@192.0.2.10:5070": "18"}
    assert len(h.changes) == 1  # a query changes nothing
    h.clock.advance(17.0)
    assert h.registrar.users == ["1001"]
    h.clock.advance(2.0)
    assert h.registrar.users == [] and h.changes[-1] == ("1001", None)


def test_a_contact_behind_nat_keeps_both_addresses() -> None:
    h = Harness()
    reply = h.bind(contacts=("<sip:1001@10.0.0.5:5060;transport=udp>",))
    assert reply.status == 200
    binding = h.registrar.binding("1001")
    assert binding is not None
    assert binding.contact == "sip:1001@10.0.0.5:5060;transport=udp"
    assert binding.contact_address == ("10.0.0.5", 5060) and binding.source == SOURCE
    assert binding.behind_nat
    direct = Binding("1001", "sip:1001@127.0.0.1:5070", SOURCE, 0.0, "c", 1)
    assert not direct.behind_nat


def test_contacts_per_user_are_capped() -> None:
    h = Harness(max_contacts=2)
    many = tuple(f"<sip:1001@192.0.2.{i}>" for i in range(1, 4))
    assert h.bind(contacts=many).status == 403
    h.bind(contacts=many[:2])
    assert h.bind(contacts=many[2:], cseq=2).status == 403
    assert len(h.registrar.bindings("1001")) == 2


def test_a_failing_on_change_does_not_break_the_registrar() -> None:
    def broken(user: str, binding: Binding | None) -> None:
        raise RuntimeError("listener bug")

    registrar = Registrar(REALM, USERS.get, VirtualClock(), on_change=broken)
    nonce = challenges(registrar.handle(register(), SOURCE))["MD5"].nonce
    assert registrar.handle(register(auth=authorization(nonce)), SOURCE).status == 200


# --- bounds and hostile input ------------------------------------------------------------------


def test_many_users_and_nonces_stay_bounded() -> None:
    h = Harness(max_nonces=64)
    statuses = set()
    for i in range(3000):
        user = f"u{i}"
        statuses.add(h.send(register(user=user)).status)
        auth = authorization(f"forged-{i}", user=user, password="x")
        statuses.add(h.send(register(user=user, auth=auth)).status)
    assert statuses == {401, 403}
    assert h.registrar.outstanding_nonces == 64 and h.registrar.users == []
    assert h.bind().status == 200  # and a phone that answers its challenge still gets in


def _authorized_datagram() -> tuple[Registrar, bytes]:
    registrar = Registrar(REALM, USERS.get, VirtualClock())
    nonce = challenges(registrar.handle(register(), SOURCE))["MD5"].nonce
    return registrar, bytes(register(auth=authorization(nonce), expires="120"))


NASTY = [b":", b";", b",", b"=", b'"', b"\\", b"<", b">", b"*", b"%0D%0A", b" ", b"\r\n", b"\x00",
         b"\xff", b"0", b"99999999999999999999", b"Digest ", b"nc=", b"expires=0"]  # fmt: skip
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(NASTY)), max_size=4))
def test_mutated_registers_are_answered_never_raise(edits: list[tuple[int, bytes]]) -> None:
    registrar, data = _authorized_datagram()
    for pos, piece in edits:
        pos %= len(data)
        data = data[:pos] + piece + data[pos:]
    try:
        request = Request.parse(data)
    except SipParseError:
        return
    if request.method != "REGISTER" or check_request(request) is not None:
        return
    reply = registrar.handle(request, SOURCE)
    assert reply.status in (200, 400, 401, 403, 404, 423)


@FUZZ
@given(st.text(max_size=300))
def test_credentials_parser_raises_only_its_own_error(text: str) -> None:
    with contextlib.suppress(SipParseError):
        Credentials.parse("Digest " + text)
    with contextlib.suppress(SipParseError):
        Credentials.parse(text)


def test_credentials_parse_and_the_expected_response_match_rfc_7616() -> None:
    creds = Credentials.parse(authorization("abc", nc=7))
    assert (creds.username, creds.nc, creds.qop, creds.algorithm) == ("1001", 7, "auth", "MD5")
    assert creds.expected_response("REGISTER", "pw-one") == creds.response
    assert creds.response not in repr(creds)
    with pytest.raises(SipParseError) as err:
        Credentials.parse('Digest username="1001", realm="r", nonce="n", uri="u"')
    assert "response" in err.value.reason


# --- real traffic ------------------------------------------------------------------------------


def test_baresip_register_captures() -> None:
    """baresip 1.0's REGISTERs (password "secret", realm "ivr", answering nonce "abcMD5")."""
    registrar = Registrar("ivr", {"1001": "secret"}.get, VirtualClock())
    first = Request.parse((MESSAGES / "baresip_register.sip").read_bytes())
    assert registrar.handle(first, SOURCE).status == 401
    second = Request.parse((MESSAGES / "baresip_register_auth.sip").read_bytes())
    reply = registrar.handle(second, SOURCE)
    # baresip's digest checks out; the nonce is not one this registrar issued
    assert reply.status == 401 and challenges(reply)["MD5"].stale
    wrong = Registrar("ivr", {"1001": "not-secret"}.get, VirtualClock())
    assert wrong.handle(second, SOURCE).status == 403


def _auth_response(request: Request) -> str:
    value = request.headers.get("Authorization") or ""
    return parse_auth_params(value.removeprefix("Digest "))["response"]


def test_a_scripted_phone_registers_over_udp_and_a_replay_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the user agent: 401, 200, then the same Authorization again (a new branch and
    CSeq, as an attacker who captured it would send) gets 401 stale."""
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        changes: list[tuple[str, Binding | None]] = []
        registrar = Registrar(REALM, USERS.get, LoopClock(),
                              on_change=lambda u, b: changes.append((u, b)))  # fmt: skip
        ua = await start_ua(registrar=registrar)
        phone = await Phone.open()
        host, port = ua.address
        uri = f"sip:{host}:{port}"
        try:
            def request(cseq: int, auth: str | None) -> Request:
                h = Headers([("Via", phone.via()), ("Max-Forwards", "70")])
                h.add("From", f"<sip:1001@{host}>;tag=t1")
                h.add("To", f"<sip:1001@{host}>")
                h.add("Call-ID", "scripted-reg@127.0.0.1")
                h.add("CSeq", f"{cseq} REGISTER")
                h.add("Contact", f"<sip:1001@{phone.address[0]}:{phone.address[1]}>")
                if auth:
                    h.add("Authorization", auth)
                return Request("REGISTER", uri, h)

            phone.send(request(1, None), ua.address)
            challenge = Challenge.parse((await phone.response(401, "REGISTER")).headers.get(
                "WWW-Authenticate") or "")  # fmt: skip
            auth = authorization(challenge.nonce, uri=uri)
            phone.send(request(2, auth), ua.address)
            ok = await phone.response(200, "REGISTER")
            assert f"<sip:1001@127.0.0.1:{phone.address[1]}>;expires=3600" in ok.headers.values(
                "Contact")  # fmt: skip
            assert [u for u, _ in changes] == ["1001"]
            binding = changes[0][1]
            assert binding is not None and binding.source == phone.address
            phone.send(request(3, auth), ua.address)
            replay = await phone.response(401, "REGISTER")
            assert Challenge.parse(replay.headers.get("WWW-Authenticate") or "").stale
            assert registrar.binding("1001") == binding and len(changes) == 1
            phone.send(request(4, authorization(challenge.nonce, password="guess", nc=2,
                                                uri=uri)), ua.address)  # fmt: skip
            assert isinstance(await phone.response(403, "REGISTER"), Response)
        finally:
            phone.close()
            await ua.close()
            registrar.close()

    run(scenario(), timeout=20)
    secret_bits = [*USERS.values(), "guess"]
    assert not [bit for bit in secret_bits if bit in caplog.text]
    assert "response=" not in caplog.text and "Authorization" not in caplog.text


def test_our_own_client_registers_with_sha256_refreshes_on_its_nonce_and_unregisters() -> None:
    """ivr.sip.register against the registrar: a SHA-256 challenge is answered, a refresh
    reuses the nonce with the next nonce count (no new challenge), close() removes the binding."""

    async def scenario() -> None:
        changes: list[tuple[str, Binding | None]] = []
        registrar = Registrar(REALM, USERS.get, LoopClock(), min_expires=1, max_expires=2,
                              algorithms=("SHA-256",),  # success proves SHA-256 works
                              on_change=lambda u, b: changes.append((u, b)))  # fmt: skip
        server = await start_ua(registrar=registrar)
        agent = await start_ua(user="1001")
        host, port = server.address
        try:
            registration = await agent.register(f"sip:{host}:{port}", f"sip:1001@{host}",
                                                "1001", USERS["1001"], expires=2)  # fmt: skip
            assert registration.bound and registration.expires == 2
            await async_wait_for(lambda: len(changes) > 1, 10)
            first, refreshed = changes[0][1], changes[-1][1]
            assert first is not None and refreshed is not None
            assert refreshed.cseq == first.cseq + 1  # answered at once: no second challenge
            assert registrar.outstanding_nonces == 1
            assert refreshed.contact == f"sip:1001@127.0.0.1:{agent.address[1]}"
        finally:
            await agent.close()  # unregisters (Expires: 0)
            await server.close()
            registrar.close()
        assert changes[-1] == ("1001", None)

    run(scenario(), timeout=20)


def test_without_a_registrar_register_is_still_405() -> None:
    async def scenario() -> None:
        ua = await start_ua()
        phone = await Phone.open()
        try:
            leg = phone.leg(ua.address)
            phone.send(leg.request("REGISTER"), ua.address)
            assert "INVITE" in ((await phone.response(405, "REGISTER")).headers.get("Allow")
                                or "")  # fmt: skip
        finally:
            phone.close()
            await ua.close()

    run(scenario(), timeout=10)


@contextlib.contextmanager
def _baresips() -> Iterator[list[Baresip]]:
    started: list[Baresip] = []
    try:
        yield started
    finally:
        for phone in started:
            phone.stop()


@needs_baresip
def test_baresip_registers_a_wrong_password_is_refused_and_a_binding_expires(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        changes: list[tuple[str, Binding | None]] = []
        registrar = Registrar(REALM, USERS.get, LoopClock(), min_expires=1, max_expires=2,
                              on_change=lambda u, b: changes.append((u, b)))  # fmt: skip
        ua = await start_ua(registrar=registrar)
        port = ua.address[1]
        try:
            with _baresips() as phones:
                good = Baresip(tmp_path / "good", None, seconds=30, account=(
                    f"<sip:1001@127.0.0.1:{port}>;auth_pass={USERS['1001']};regint=60"))
                phones.append(good)
                await async_wait_for(lambda: changes, 10)
                user, binding = changes[0]
                assert user == "1001" and binding is not None
                assert binding.source == ("127.0.0.1", good.sip_port)
                assert (binding.user_agent or "").startswith("baresip")
                assert binding.expires_at - ua.clock.now() <= 2.0  # capped at max_expires
                # baresip refreshes before the 2 s run out (on the same nonce, a higher nc)
                await async_wait_for(lambda: len(changes) > 1, 10)
                refreshed = changes[-1][1]
                assert refreshed is not None and refreshed.cseq > binding.cseq
                assert refreshed.call_id == binding.call_id

                bad = Baresip(tmp_path / "bad", None, seconds=30, account=(
                    f"<sip:1002@127.0.0.1:{port}>;auth_pass=wrong-password;regint=60"))
                phones.append(bad)
                log = await async_wait_for(lambda: "403" in bad.log and bad.log, 10)
                assert "Forbidden" in log
                assert registrar.bindings("1002") == []

                good.proc.send_signal(signal.SIGKILL)  # gone without unregistering
                good.proc.wait(5)
                await async_wait_for(lambda: changes[-1] == ("1001", None), 10)
                assert registrar.users == []
                assert all(u == "1001" for u, _ in changes)
        finally:
            await ua.close()
            registrar.close()

    run(scenario(), timeout=60)
    assert "wrong-password" not in caplog.text and USERS["1001"] not in caplog.text
