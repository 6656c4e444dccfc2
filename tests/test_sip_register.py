"""REGISTER with digest authentication against a minimal registrar written here from the wire
layer: 401/407 challenges with and without qop, digest checked independently, refresh,
de-registration, and a call that arrives at the registered Contact."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest
from sip_phone import Phone, run, sdp_offer, start_ua

from ivr.sip.call import SipCall
from ivr.sip.digest import parse_auth_params
from ivr.sip.headers import Headers
from ivr.sip.message import Request
from ivr.sip.register import Registration, RegistrationStatus, refresh_delay
from ivr.sip.ua import UserAgent

USER, PASSWORD, REALM = "1001", "s3cret-pw", "pbx.test"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_response(auth: dict[str, str], method: str = "REGISTER") -> str:
    """RFC 2617 §3.2.2.1, computed here on its own (not with ivr.sip.digest)."""
    ha1 = md5(f"{USER}:{REALM}:{PASSWORD}")
    ha2 = md5(f"{method}:{auth['uri']}")
    if "qop" in auth:
        return md5(f"{ha1}:{auth['nonce']}:{auth['nc']}:{auth['cnonce']}:{auth['qop']}:{ha2}")
    return md5(f"{ha1}:{auth['nonce']}:{ha2}")


class Registrar:
    """Answers REGISTERs by hand: the test says which challenge to send."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.uri = f"sip:{phone.address[0]}:{phone.address[1]}"

    async def next(self) -> Request:
        return await self.phone.request("REGISTER")

    def challenge(self, request: Request, nonce: str, *, qop: bool, proxy: bool = False,
                  stale: bool = False) -> None:  # fmt: skip
        params = f'realm="{REALM}", nonce="{nonce}", algorithm=MD5'
        params += ', qop="auth"' if qop else ""
        params += ", stale=TRUE" if stale else ""
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        self.phone.reply(request, 407 if proxy else 401, headers=[(header, f"Digest {params}")])

    def accept(self, request: Request, expires: int) -> None:
        contact = request.headers.get("Contact") or ""
        base = contact.partition(";")[0]
        self.phone.reply(request, 200, headers=[("Contact", f"{base};expires={expires}"),
                                                ("Expires", str(expires))])  # fmt: skip


def credentials_of(request: Request, proxy: bool = False) -> dict[str, str]:
    value = request.headers.get("Proxy-Authorization" if proxy else "Authorization") or ""
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    return parse_auth_params(rest)


async def _ua_and_registrar() -> tuple[UserAgent, Registrar, list[str]]:
    ua = await start_ua()
    registrar = Registrar(await Phone.open())
    return ua, registrar, []


async def _close(ua: UserAgent, registrar: Registrar) -> None:
    """Close the user agent, answering its de-registration when one comes."""
    closing = asyncio.create_task(ua.close())
    while not closing.done():
        try:
            request = await registrar.phone.request("REGISTER", timeout=0.2)
        except TimeoutError:
            continue
        assert request.headers.get("Expires") == "0"
        registrar.accept(request, 0)
    await closing
    registrar.phone.close()


def _status_log(statuses: list[str]) -> object:
    def on_status(registration: Registration) -> None:
        statuses.append(str(registration.status))

    return on_status


@pytest.mark.parametrize("qop", [True, False], ids=["qop-auth", "no-qop"])
def test_register_answers_a_401_challenge(qop: bool) -> None:
    async def scenario() -> None:
        ua, registrar, statuses = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(
            registrar.uri, f"sip:{USER}@{REALM}", USER, PASSWORD, expires=300,
            on_status=_status_log(statuses)))  # type: ignore[arg-type]  # fmt: skip
        first = await registrar.next()
        assert "Authorization" not in first.headers
        assert first.headers.get("Expires") == "300"
        assert first.uri == registrar.uri
        registrar.challenge(first, "n-1", qop=qop)
        second = await registrar.next()
        auth = credentials_of(second)
        assert auth["username"] == USER and auth["realm"] == REALM and auth["uri"] == first.uri
        assert auth["response"] == expected_response(auth)
        assert ("qop" in auth) == qop
        if qop:
            assert auth["nc"] == "00000001" and auth["cnonce"]
        assert second.call_id() == first.call_id()
        assert second.cseq().number == first.cseq().number + 1
        assert second.top_via().branch != first.top_via().branch
        registrar.accept(second, 120)
        registration = await asyncio.wait_for(task, 2)
        assert registration.status == RegistrationStatus.REGISTERED
        assert registration.expires == 120
        assert statuses == ["registering", "registered"]
        await _close(ua, registrar)

    run(scenario())


def test_register_answers_a_407_with_proxy_authorization() -> None:
    async def scenario() -> None:
        ua, registrar, _ = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(registrar.uri, f"sip:{USER}@{REALM}", USER,
                                               PASSWORD))  # fmt: skip
        registrar.challenge(await registrar.next(), "p-1", qop=True, proxy=True)
        second = await registrar.next()
        auth = credentials_of(second, proxy=True)
        assert "Authorization" not in second.headers
        assert auth["response"] == expected_response(auth)
        registrar.accept(second, 3600)
        assert (await asyncio.wait_for(task, 2)).status == RegistrationStatus.REGISTERED
        await _close(ua, registrar)

    run(scenario())


def test_wrong_password_fails_after_one_answer_and_retries_later() -> None:
    async def scenario() -> None:
        ua, registrar, statuses = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(
            registrar.uri, f"sip:{USER}@{REALM}", USER, PASSWORD, retry_interval=0.2,
            on_status=_status_log(statuses)))  # type: ignore[arg-type]  # fmt: skip
        registrar.challenge(await registrar.next(), "n-1", qop=True)
        registrar.challenge(await registrar.next(), "n-2", qop=True)  # refused: not stale
        registration = await asyncio.wait_for(task, 2)
        assert registration.status == RegistrationStatus.FAILED
        assert "credentials refused" in registration.reason
        retry = await registrar.next()  # retry_interval later, with the last challenge
        assert credentials_of(retry)["nonce"] == "n-2"
        registrar.accept(retry, 60)
        for _ in range(100):
            if registration.status == RegistrationStatus.REGISTERED:
                break
            await asyncio.sleep(0.01)
        assert statuses[-1] == "registered"
        await _close(ua, registrar)

    run(scenario())


def test_stale_nonce_is_answered_again() -> None:
    async def scenario() -> None:
        ua, registrar, _ = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(registrar.uri, f"sip:{USER}@{REALM}", USER,
                                               PASSWORD))  # fmt: skip
        registrar.challenge(await registrar.next(), "old", qop=True)
        registrar.challenge(await registrar.next(), "new", qop=True, stale=True)
        third = await registrar.next()
        assert credentials_of(third)["nonce"] == "new"
        registrar.accept(third, 60)
        assert (await asyncio.wait_for(task, 2)).status == RegistrationStatus.REGISTERED
        await _close(ua, registrar)

    run(scenario())


def test_refresh_before_expiry_reuses_the_nonce_and_close_deregisters() -> None:
    async def scenario() -> None:
        ua, registrar, _ = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(registrar.uri, f"sip:{USER}@{REALM}", USER,
                                               PASSWORD, expires=2))  # fmt: skip
        registrar.challenge(await registrar.next(), "n-1", qop=True)
        registrar.accept(await registrar.next(), 2)
        await asyncio.wait_for(task, 2)
        refresh = await registrar.next()  # refresh_delay(2) = 1 s later
        auth = credentials_of(refresh)
        assert auth["nonce"] == "n-1" and auth["nc"] == "00000002"
        assert auth["response"] == expected_response(auth)
        registrar.accept(refresh, 2)
        closing = asyncio.create_task(ua.close())
        goodbye = await registrar.next()
        assert goodbye.headers.get("Expires") == "0"
        assert "expires=0" in (goodbye.headers.get("Contact") or "")
        registrar.accept(goodbye, 0)
        await asyncio.wait_for(closing, 3)
        registrar.phone.close()

    run(scenario())


def test_password_and_digest_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr")

    async def scenario() -> str:
        ua, registrar, _ = await _ua_and_registrar()
        task = asyncio.create_task(ua.register(registrar.uri, f"sip:{USER}@{REALM}", USER,
                                               PASSWORD))  # fmt: skip
        registrar.challenge(await registrar.next(), "n-1", qop=True)
        second = await registrar.next()
        registrar.phone.reply(second, 403)
        await asyncio.wait_for(task, 2)
        await _close(ua, registrar)
        return credentials_of(second)["response"]

    digest = run(scenario())
    text = caplog.text
    assert "REGISTER" in text  # the wire lines were logged ...
    assert PASSWORD not in text and digest not in text and "Authorization" not in text


def test_call_to_the_registered_contact_is_taken_like_any_other() -> None:
    async def scenario() -> None:
        calls: list[SipCall] = []

        def accept(call: SipCall) -> None:
            calls.append(call)
            call.accept()

        ua = await start_ua(on_incoming=accept)
        registrar = Registrar(await Phone.open())
        task = asyncio.create_task(ua.register(registrar.uri, f"sip:{USER}@{REALM}", USER,
                                               PASSWORD))  # fmt: skip
        request = await registrar.next()
        registrar.accept(request, 3600)
        await asyncio.wait_for(task, 2)
        contact = (request.headers.get("Contact") or "").partition(";")[0].strip("<>")
        # The PBX now sends a call for the dialled number 95588 to our Contact.
        host, port = registrar.phone.address
        headers = Headers([
            ("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bKpbx1"), ("Max-Forwards", "69"),
            ("From", f"<sip:+8613800000002@{REALM}>;tag=pbx"), ("To", f"<sip:95588@{REALM}>"),
            ("Call-ID", "via-registrar@pbx"), ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:pbx@{host}:{port}>"), ("Content-Type", "application/sdp"),
        ])  # fmt: skip
        registrar.phone.send(Request("INVITE", contact, headers, sdp_offer()), ua.address)
        ok = await registrar.phone.response(200, "INVITE")
        assert ok.to_addr().tag
        assert calls[0].caller == "+8613800000002" and calls[0].called == "95588"
        await _close(ua, registrar)

    run(scenario())


def test_refresh_delay() -> None:
    assert refresh_delay(3600) == 3540
    assert refresh_delay(60) == 30
    assert refresh_delay(2) == 1
