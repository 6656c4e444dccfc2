"""Calls out from the server's user agent (UserAgent.call): to baresip (auto-answer, ringing,
rejecting), to our own user agent, and to a scripted phone for the races (no provisional
response, a 200 crossing our CANCEL). Verdicts come from SIP state and baresip's log."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from media_helpers import dominant_frequency, wait_until
from serve_helpers import BARESIP_CONFIG, async_wait_for, free_port
from sip_phone import App, Phone, run, sdp_offer, start_ua

from ivr.media.g711 import PCMA
from ivr.rtp.bridge import Bridge
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import StreamConfig
from ivr.sip.message import Request
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.ua import UserAgent

pytestmark = pytest.mark.timeout(120)
needs_baresip = pytest.mark.usefixtures("baresip_program")  # missing: the test fails, naming it


class BaresipCallee:
    """baresip 1.0 waiting for calls on 127.0.0.1 (``answermode`` auto or manual), playing a
    440 Hz sine; key presses on its UDP console ("b" rejects a ringing call with 486)."""

    def __init__(self, home: Path, answermode: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port()
        self.cons_port = free_port(socket.SOCK_STREAM)
        (home / "config").write_text(BARESIP_CONFIG.format(sip_port=self.sip_port,
                                                           cons_port=self.cons_port, tone=440))
        (home / "accounts").write_text(
            f"<sip:agent@127.0.0.1>;regint=0;answermode={answermode}\n")
        self.log_path = home / "baresip.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(home), "-t", "60"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def uri(self) -> str:
        return f"sip:agent@127.0.0.1:{self.sip_port}"

    @property
    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    async def ready(self) -> None:
        await async_wait_for(lambda: "baresip is ready" in self.log, 10)

    async def wait_log(self, text: str, timeout: float = 10) -> None:
        await async_wait_for(lambda: text in self.log, timeout)

    def keys(self, text: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), ("127.0.0.1", self.cons_port))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


# --- baresip ------------------------------------------------------------------------------------


@needs_baresip
def test_the_server_calls_baresip_media_flows_and_our_bye_ends_it(tmp_path: Path) -> None:
    agent = BaresipCallee(tmp_path / "baresip", "auto")

    async def scenario() -> None:
        ua = await start_ua(max_calls=1)
        engine = MediaEngine(asyncio.get_running_loop(), seed=3)
        try:
            await agent.ready()
            stream = await engine.open_stream("agent-leg")
            host, port = stream.local_address
            call = ua.call(agent.uri, LocalMedia(host, port), caller="+8613800000001",
                           display="Queue general", timeout=10)  # fmt: skip
            assert await call.wait_answered(10) == 200
            assert call.answered and call.connected and not call.ringing
            plan = call.media
            assert plan is not None and plan.encoding == "PCMU" and plan.dtmf_payload_type == 101
            # The agent saw the call come from the server's own socket, with our From user.
            await agent.wait_log("Call established")
            ua_host, ua_port = ua.address
            assert f"from sip:+8613800000001@{ua_host}:{ua_port}" in agent.log
            # A call out is in the calls table but not counted against max_calls.
            assert ua.active_calls == 1 and ua.incoming_calls == 0
            frames: list[np.ndarray] = []
            stream.on_audio = frames.append
            stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                         plan.dtmf_payload_type)  # fmt: skip
            await wait_until(lambda: len(frames) >= 50)
            heard = np.concatenate(frames[10:50])
            assert dominant_frequency(heard) == pytest.approx(440, abs=15)  # baresip's ausine
            call.hangup()
            await call.wait_ended(10)
            assert call.end_reason == "local bye" and ua.active_calls == 0
            await agent.wait_log("terminated")
            assert not ua.dialer.calls
        finally:
            engine.close()
            await ua.close()

    try:
        run(scenario())
    finally:
        agent.stop()


@needs_baresip
def test_an_agent_who_never_answers_is_cancelled_at_the_ring_timeout(tmp_path: Path) -> None:
    agent = BaresipCallee(tmp_path / "baresip", "manual")

    async def scenario() -> None:
        ua = await start_ua()
        try:
            await agent.ready()
            call = ua.call(agent.uri, LocalMedia("127.0.0.1", 41000), timeout=1.0)
            await wait_until(lambda: call.ringing)
            await agent.wait_log("Incoming call from")
            assert await call.wait_answered(10) == 487  # baresip's answer to our CANCEL
            assert call.ended and call.timed_out and call.cancelled and not call.answered
            assert call.end_reason == "no answer"
            statuses = [status for _, status, _ in call.progress]
            assert 180 in statuses and statuses[-1] == 487
            await agent.wait_log("session closed")
            assert "Call established" not in agent.log
        finally:
            await ua.close()

    try:
        run(scenario())
    finally:
        agent.stop()


@needs_baresip
def test_an_agent_rejecting_the_call_is_reported_as_486(tmp_path: Path) -> None:
    agent = BaresipCallee(tmp_path / "baresip", "manual")

    async def scenario() -> None:
        ua = await start_ua()
        try:
            await agent.ready()
            call = ua.call(agent.uri, LocalMedia("127.0.0.1", 41000), timeout=20)
            await wait_until(lambda: call.ringing)
            await agent.wait_log("Incoming call from")
            agent.keys("b")  # baresip's hang-up key on a ringing call: 486
            assert await call.wait_answered(10) == 486
            assert call.ended and not call.answered and not call.timed_out
            assert call.end_reason == "rejected 486"
            await agent.wait_log("rejecting incoming call")
        finally:
            await ua.close()

    try:
        run(scenario())
    finally:
        agent.stop()


@needs_baresip
def test_an_agent_called_out_is_bridged_to_a_caller(tmp_path: Path) -> None:
    """What the queue does when an agent is chosen: call the agent from the server's socket,
    then relay the media between the caller's leg (PCMA here) and the agent's (PCMU)."""
    agent = BaresipCallee(tmp_path / "baresip", "auto")

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        config = StreamConfig(inactivity_timeout=None)
        ua = await start_ua()
        server = MediaEngine(loop, seed=4, config=config)
        phones = MediaEngine(loop, seed=5, config=config)  # the caller's phone
        try:
            await agent.ready()
            caller_leg, phone = await server.open_stream("caller"), await phones.open_stream()
            caller_leg.start(phone.local_address, PCMA, 101)
            phone.start(caller_leg.local_address, PCMA, 101)
            agent_leg = await server.open_stream("agent")
            call = ua.call(agent.uri, LocalMedia(*agent_leg.local_address), timeout=10)
            assert await call.wait_answered(10) == 200 and call.connected
            plan = call.media
            assert plan is not None
            agent_leg.start((plan.remote_address, plan.remote_port), plan.payload_type,
                            plan.dtmf_payload_type)  # fmt: skip
            frames: list[np.ndarray] = []
            phone.on_audio = frames.append
            bridge = Bridge(caller_leg, agent_leg)
            await wait_until(lambda: len(frames) >= 60)
            heard = np.concatenate(frames[20:60])
            assert dominant_frequency(heard) == pytest.approx(440, abs=15)  # baresip's sine
            phone.send_dtmf("5")
            await agent.wait_log("received event: '5'")  # RFC 4733, relayed by the bridge
            assert bridge.a_to_b.stats.keys == 1
            bridge.stop()
            call.hangup()
            await call.wait_ended(10)
            assert call.end_reason == "local bye"
        finally:
            phones.close()
            server.close()
            await ua.close()

    try:
        run(scenario())
    finally:
        agent.stop()


# --- our own user agent as the callee -----------------------------------------------------------


def test_calls_out_pass_max_calls_and_draining_and_drain_waits_for_them() -> None:
    async def scenario() -> None:
        server = await start_ua(max_calls=1, on_incoming=App())
        agents = App()
        callee = await start_ua(on_incoming=agents)
        host, port = callee.address
        phone = await Phone.open()
        try:
            first = server.call(f"sip:1001@{host}:{port}", LocalMedia("127.0.0.1", 41000))
            assert await first.wait_answered(5) == 200 and first.connected
            # The one incoming call max_calls allows is still taken ...
            leg = phone.leg(server.address)
            await leg.establish()
            assert server.incoming_calls == 1 and server.active_calls == 2
            # ... and a call out still goes when that limit is reached.
            second = server.call(f"sip:1002@{host}:{port}", LocalMedia("127.0.0.1", 41002))
            assert await second.wait_answered(5) == 200
            drain = asyncio.ensure_future(server.drain(timeout=30))
            await wait_until(lambda: server.draining)
            third = server.call(f"sip:1003@{host}:{port}", LocalMedia("127.0.0.1", 41004))
            assert await third.wait_answered(5) == 200  # draining refuses calls in, not out
            other = phone.leg(server.address)
            phone.send(other.invite(), server.address)
            await phone.response(503, "INVITE")
            for call in (first, second, third):
                call.hangup()
            await asyncio.wait_for(asyncio.gather(*(c.wait_ended() for c in (first, second,
                                                                              third))), 5)
            assert not drain.done()  # the phone's call is still up
            phone.send(leg.request("BYE"), server.address)
            await asyncio.wait_for(drain, 10)
            assert [c.end_reason for c in agents.calls] == ["remote bye"] * 3
        finally:
            phone.close()
            await server.close()
            await callee.close()

    run(scenario())


def test_an_out_call_rejected_by_our_own_user_agent_reports_its_status() -> None:
    async def scenario() -> None:
        server = await start_ua()
        callee = await start_ua(on_incoming=App(reject=486))
        host, port = callee.address
        try:
            call = server.call(f"sip:1001@{host}:{port}", LocalMedia("127.0.0.1", 41000))
            assert await call.wait_answered(5) == 486
            assert call.end_reason == "rejected 486" and not server.dialer.calls
        finally:
            await server.close()
            await callee.close()

    run(scenario())


# --- races, with a scripted phone as the callee -------------------------------------------------


async def invite_at(phone: Phone, ua: UserAgent) -> Request:
    """The INVITE the user agent sent to ``phone``; it must come from the UA's own socket."""
    message, source = await asyncio.wait_for(phone.inbox.get(), 5)
    assert isinstance(message, Request) and message.method == "INVITE"
    assert source == ua.address
    return message


def test_without_a_provisional_response_the_ring_timeout_says_no_answer() -> None:
    async def scenario() -> None:
        ua = await start_ua()
        phone = await Phone.open()
        try:
            host, port = phone.address
            call = ua.call(f"sip:1001@{host}:{port}", LocalMedia("127.0.0.1", 41000),
                           timeout=0.5)  # fmt: skip
            invite = await invite_at(phone, ua)
            assert await call.wait_answered(5) == 408  # nothing came that a CANCEL may follow
            assert call.ended and call.end_reason == "no answer" and call.timed_out
            # A 180 that still comes is followed by our CANCEL; the 487 is ACKed.
            phone.reply(invite, 180)
            cancel = await phone.request("CANCEL")
            assert cancel.headers.get("Via") == invite.headers.get("Via")
            phone.reply(cancel, 200)
            phone.reply(invite, 487)
            await phone.request("ACK")
            assert call.status == 408 and call.progress[-1][1] == 487
            await wait_until(lambda: not ua.dialer.calls)
        finally:
            phone.close()
            await ua.close()

    run(scenario())


def test_a_200_crossing_our_cancel_is_acked_then_ended_with_bye() -> None:
    async def scenario() -> None:
        ua = await start_ua()
        phone = await Phone.open()
        try:
            host, port = phone.address
            call = ua.call(f"sip:1001@{host}:{port}", LocalMedia("127.0.0.1", 41000))
            invite = await invite_at(phone, ua)
            contact = [("Contact", f"<sip:1001@{host}:{port}>")]
            phone.reply(invite, 180, to_tag="agent", headers=contact)
            await wait_until(lambda: call.ringing)
            call.hangup()  # the caller went away while the agent rang ...
            cancel = await phone.request("CANCEL")
            # ... and the agent answered before the CANCEL reached it.
            phone.reply(invite, 200, to_tag="agent", body=sdp_offer(42000),
                        headers=[*contact, ("Content-Type", "application/sdp")])  # fmt: skip
            phone.reply(cancel, 481)
            ack = await phone.request("ACK")
            bye = await phone.request("BYE")
            assert ack.headers.get("Call-ID") == bye.headers.get("Call-ID") == call.call_id
            phone.reply(bye, 200, to_tag="agent")
            await call.wait_ended(5)
            assert call.cancelled and not call.answered and not call.connected
            assert call.end_reason == "cancelled" and call.status == 200
            assert ua.active_calls == 0 and not ua.dialer.calls
        finally:
            phone.close()
            await ua.close()

    run(scenario())


def test_closing_the_user_agent_cancels_a_ringing_call() -> None:
    async def scenario() -> None:
        ua = await start_ua()
        phone = await Phone.open()
        try:
            host, port = phone.address
            call = ua.call(f"sip:1001@{host}:{port}", LocalMedia("127.0.0.1", 41000))
            invite = await invite_at(phone, ua)
            phone.reply(invite, 180, to_tag="agent")
            await wait_until(lambda: call.ringing)
            await ua.close()
            await phone.request("CANCEL")
            assert call.ended and call.end_reason == "cancelled"
        finally:
            phone.close()

    run(scenario())
