"""The pyVoIP transport against a real registrar + proxy: Kamailio (tests/kamailio_peer.py).

* pyVoIP registers with digest auth (REGISTER, 401, REGISTER, 200 in Kamailio's log); a wrong
  password ends in FAILED.
* A caller (the scripted SIP phone of tests/sip_phone.py, with a real RTP stream) calls the
  extension through Kamailio; the engine answers on the pyVoIP channel: the prompt's audio
  arrives, an in-band key and RFC 2833 keys move the flow on, a transfer fails with "pyVoIP has
  no REFER" and the flow's on_fail runs, the caller's BYE ends the call as abandoned; a second
  call records a message into a WAV and the flow hangs up.
* Our own user agent registers to the same Kamailio with digest auth and a call routed by
  Kamailio reaches the engine (ivr serve's IvrServer).

pyVoIP is always stopped before Kamailio (its de-registration would otherwise wait for an
answer), and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kamailio_peer
import numpy as np
import pytest
from kamailio_peer import Kamailio
from numpy.typing import NDArray
from serve_helpers import record_id
from sip_phone import Leg, Phone, sdp_offer

from ivr.config import load_config
from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.goertzel import COL_FREQS, KEYS, ROW_FREQS
from ivr.media.wav import write_wav
from ivr.pyvoip.channel import NO_REFER
from ivr.pyvoip.phone import PhoneOptions, PyVoipPhone
from ivr.pyvoip.server import PyVoipServeOptions, PyVoipServer
from ivr.rtp.dtmf import dtmf_packets
from ivr.rtp.packet import RtpPacket
from ivr.sim.live_call import synthesize_speech
from ivr.sip.ids import IdGenerator
from ivr.sip.register import RegistrationStatus

pytestmark = [
    pytest.mark.usefixtures("kamailio_program"),
    pytest.mark.timeout(90),
]

USERS = {"1001": "secret", "1002": "native-secret", "1003": "cli-secret",
         "1004": "refusing-secret", "1009": "right-password"}  # fmt: skip

FLOW = """
flow: pyvoip-test
languages: [en]
start: welcome
nodes:
  welcome:
    menu:
      prompt: "Welcome. Press 1 to go on, 7 to leave a message."
      choices: {"1": second, "7": voicemail}
      no_input: {after: 5, goto: bye}
      no_match: {after: 3, goto: bye}
  second:
    menu:
      prompt: "Press 2."
      choices: {"2": third}
      no_input: {after: 5, goto: bye}
      no_match: {after: 3, goto: bye}
  third:
    menu:
      prompt: "Press 9 for an agent."
      choices: {"9": to_agent}
      no_input: {after: 5, goto: bye}
      no_match: {after: 3, goto: bye}
  to_agent:
    transfer:
      to: "sip:agent@agents.example"
      prompt: "Transferring."
      on_fail: transfer_failed
  transfer_failed:
    menu:
      prompt: "No agent. Press 1 to start again."
      choices: {"1": welcome}
      no_input: {after: 5, goto: bye}
      no_match: {after: 3, goto: bye}
  voicemail:
    record:
      prompt: "Leave a message."
      into: message
      max_seconds: 5
      finish_key: "#"
      beep: false
      next: bye
  bye:
    hangup: {prompt: "Goodbye."}
"""

# Every prompt the calls below hear is a recording (a tone), so no synthesizer is needed and the
# caller can tell the prompts apart by pitch.
PROMPT_TONES = {
    "welcome": 440.0, "second": 550.0, "third": 660.0, "to_agent": 330.0,
    "transfer_failed": 770.0, "voicemail": 880.0, "bye": 990.0,
}  # fmt: skip


# --- Kamailio ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with kamailio_peer.running(tmp_path_factory.mktemp("kamailio"), USERS) as proxy:
        yield proxy


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def async_wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def log_lines(proxy: Kamailio, marker: str) -> list[str]:
    return [line.split("<script>: ", 1)[1] for line in proxy.log(1_000_000).splitlines()
            if "<script>: " in line and marker in line]  # fmt: skip


# --- (a) registration -------------------------------------------------------------------------


def test_pyvoip_registers_with_digest_and_a_wrong_password_fails(kamailio: Kamailio) -> None:
    def options(user: str, password: str) -> PhoneOptions:
        return PhoneOptions(kamailio.host, kamailio.port, user, password, register_timeout=2.0)

    phone = PyVoipPhone(options("1009", "right-password"), on_call=lambda leg: None)
    try:
        assert phone.start(timeout=5.0)
        assert phone.status == "REGISTERED"
    finally:
        phone.stop()
    lines = wait_for(lambda: log_lines(kamailio, "REGISTER 1009 saved"), 5, "the binding")
    assert lines[0] == "REGISTER 1009 saved 120"  # pyVoIP asks for 120 s
    assert log_lines(kamailio, "REGISTER 1009")[:2] == ["REGISTER 1009 challenged",
                                                        "REGISTER 1009 saved 120"]  # fmt: skip

    wrong = PyVoipPhone(options("1009", "wrong-password"), on_call=lambda leg: None)
    try:
        assert not wrong.start(timeout=5.0)
        assert wrong.status == "FAILED"  # start() itself did not raise: the status tells
    finally:
        wrong.stop()
    refused = log_lines(kamailio, "REGISTER 1009 refused")
    assert refused, "Kamailio saw no wrong credentials"
    assert len(log_lines(kamailio, "REGISTER 1009 saved")) == 2  # the first binding, its removal


# --- a caller with a real RTP stream ----------------------------------------------------------


class RtpPeer(asyncio.DatagramProtocol):
    """The caller's media: sends a continuous PCMU stream (silence unless told otherwise) and
    RFC 4733 keys on one SSRC with running sequence numbers; keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[RtpPacket] = []
        self.remote: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 100
        self.ts = 16000
        self.ssrc = 0x1234ABCD
        self._audio: list[NDArray[np.int16]] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls) -> RtpPeer:
        loop = asyncio.get_running_loop()
        _, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.received.append(RtpPacket.parse(data))

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable after the call
        pass

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def start(self, remote: tuple[str, int]) -> None:
        self.remote = remote
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None:
            self.transport.close()

    def say(self, samples: NDArray[np.int16]) -> None:
        """Send ``samples`` in the stream (instead of silence) from the next frame on."""
        for i in range(0, len(samples), 160):
            self._audio.append(samples[i : i + 160])

    async def key_rfc2833(self, digit: str) -> None:
        """One key as RFC 4733 events (the audio stream pauses meanwhile, as phones do)."""
        assert self.transport is not None and self.remote is not None
        packets = dtmf_packets(digit, self.ts, self.ssrc, self.seq, duration_ms=100)
        for packet in packets:
            self.transport.sendto(bytes(packet), self.remote)
            await asyncio.sleep(0.02)
        self.seq = (self.seq + len(packets)) & 0xFFFF
        self.ts += 160 * (len(packets) - 2)

    async def _run(self) -> None:
        assert self.transport is not None and self.remote is not None
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            frame = self._audio.pop(0) if self._audio else np.zeros(160, dtype=np.int16)
            frame = np.pad(frame, (0, 160 - len(frame)))
            payload = ulaw_encode(frame).tobytes()
            packet = RtpPacket(0, self.seq, self.ts, self.ssrc, payload)
            self.transport.sendto(bytes(packet), self.remote)
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + 160) & 0xFFFF_FFFF
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    def heard(self, freq: float, since: int = 0) -> bool:
        """Whether the audio received (from packet ``since`` on) holds a tone at ``freq``."""
        audio = [p.payload for p in self.received[since:] if p.payload_type == 0]
        if len(audio) < 10:
            return False
        pcm = ulaw_decode(b"".join(audio)).astype(np.float64)
        return dominant_frequency(pcm) == pytest.approx(freq, abs=15)


def dominant_frequency(pcm: NDArray[np.float64]) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    spectrum[:5] = 0  # DC
    return float(np.argmax(spectrum) * 8000 / len(pcm))


def sine(freqs: tuple[float, ...], seconds: float, level: float = 0.25) -> NDArray[np.int16]:
    t = np.arange(round(seconds * 8000)) / 8000.0
    x = sum(level * 32767 * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.asarray(x, dtype=np.float64).astype(np.int16)


def key_tone(digit: str, seconds: float = 0.12) -> NDArray[np.int16]:
    index = KEYS.index(digit)
    return sine((ROW_FREQS[index // 4], COL_FREQS[index % 4]), seconds, level=0.2)


def media_port(sdp: bytes) -> int:
    line = next(x for x in sdp.decode().splitlines() if x.startswith("m=audio"))
    return int(line.split()[1])


async def open_phone(name: str) -> Phone:
    """The scripted phone with ids of its own: Kamailio keeps transactions for a while, and
    two phones with the same seed would send the same Call-IDs and branches."""
    phone = await Phone.open()
    phone.ids = IdGenerator(seed=name)
    return phone


async def place_call(phone: Phone, proxy: Kamailio, user: str,
                     caller: str) -> tuple[Leg, RtpPeer]:  # fmt: skip
    rtp = await RtpPeer.open()
    leg = phone.leg((proxy.host, proxy.port), user=user, caller=caller)
    phone.send(leg.invite(sdp_offer(port=rtp.port)), leg.ua)
    ok = await phone.response(200, "INVITE", timeout=6.0)
    phone.send(leg.ack(ok), leg.ua)
    rtp.start(("127.0.0.1", media_port(ok.body)))
    return leg, rtp


# --- the call record --------------------------------------------------------------------------


class Records:
    """Reads the call store the server writes (its own connection, WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, call_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
        if not self.path.exists():
            return []
        key = record_id(self.path, call_id)  # ivr serve keys by its own id; pyVoIP's by Call-ID
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute("SELECT kind, node, data FROM events WHERE call_id = ? "
                                "ORDER BY seq", (key,)).fetchall()  # fmt: skip
        return [(kind, node, json.loads(data or "{}")) for kind, node, data in rows]

    def call(self, call_id: str) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with sqlite3.connect(self.path) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM calls WHERE call_id = ?",
                               (record_id(self.path, call_id),)).fetchone()  # fmt: skip
        return dict(row) if row else None

    def entered(self, call_id: str, node: str) -> bool:
        return any(k == "node_enter" and n == node for k, n, _ in self.events(call_id))

    def prompted(self, call_id: str, prompt: str) -> bool:
        return any(k == "prompt" and d.get("prompt") == prompt for k, _, d in self.events(call_id))


def write_project(root: Path) -> Path:
    """ivr.yaml, the test flow and its recorded prompts under ``root``."""
    (root / "flows").mkdir()
    (root / "flows" / "pyvoip-test.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    for prompt, freq in PROMPT_TONES.items():
        write_wav(root / "prompts" / f"{prompt}.wav", sine((freq,), 0.6))
    (root / "ivr.yaml").write_text(
        "flows_dir: flows\nprompts_dir: prompts\nstore: {path: var/calls.db}\nlanguages: [en]\n"
        "numbers: {default: pyvoip-test}\ntransfer_allow: ['sip:*@agents.example']\n"
        "asr: {backend: 'off'}\n",
        encoding="utf-8",
    )
    return root / "ivr.yaml"


# --- (b) calls through Kamailio to the pyVoIP channel -----------------------------------------


def test_calls_through_kamailio_run_the_flow_on_the_pyvoip_channel(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    config = load_config(write_project(tmp_path))
    records = Records(config.store_path)
    options = PyVoipServeOptions(
        PhoneOptions(kamailio.host, kamailio.port, "1001", "secret", register_timeout=2.0,
                     rtp_ports=(31000, 31999)),
        build_prompts=False,
    )  # fmt: skip

    async def scenario() -> None:
        server = PyVoipServer(config, options)
        await server.start()
        phone = await open_phone("pyvoip-caller")
        try:
            await first_call(phone, server)
            await second_call(phone, server)
        finally:
            phone.close()
            await server.stop()  # pyVoIP de-registers while Kamailio still runs

    async def first_call(phone: Phone, server: PyVoipServer) -> None:
        leg, rtp = await place_call(phone, kamailio, "1001", "5550100")
        call_id = leg.call_id
        try:
            # The flow starts and the welcome prompt's audio (440 Hz) reaches the caller.
            await async_wait_for(lambda: records.prompted(call_id, "welcome"), 5, "welcome")
            await async_wait_for(lambda: rtp.heard(440.0), 5, "the welcome prompt's audio")
            assert server.host.sessions[call_id].channel.info.transport == "pyvoip"
            # An in-band key (tones in the PCMU stream) ...
            rtp.say(key_tone("1"))
            await async_wait_for(lambda: records.entered(call_id, "second"), 5, "node second")
            # ... then RFC 2833 keys (in-band detection stops once events arrive).
            await rtp.key_rfc2833("2")
            await async_wait_for(lambda: records.entered(call_id, "third"), 5, "node third")
            await rtp.key_rfc2833("9")
            await async_wait_for(lambda: records.entered(call_id, "transfer_failed"), 5,
                                 "the transfer's on_fail")  # fmt: skip
            since = len(rtp.received)
            await async_wait_for(lambda: rtp.heard(770.0, since), 5, "the on_fail prompt")
            # The caller hangs up: BYE through Kamailio, 200 back.
            phone.send(leg.request("BYE"), leg.ua)
            await phone.response(200, "BYE", timeout=5.0)
            call = await async_wait_for(
                lambda: (c := records.call(call_id)) and c["outcome"] and c, 5, "call end")
        finally:
            rtp.stop()
        assert call["outcome"] == "abandoned"
        assert call["transport"] == "pyvoip"
        assert call["called"] == "1001" and call["caller"] == "5550100"
        events = records.events(call_id)
        inputs = [d["value"] for k, _, d in events if k == "input"]
        assert inputs == ["1", "2", "9"]  # each key once: no in-band/RFC 2833 duplicates
        transfer = next(d for k, _, d in events if k == "transfer")
        assert transfer["ok"] is False and transfer["reason"] == NO_REFER
        assert [d["by"] for k, _, d in events if k == "hangup"] == ["caller"]

    async def second_call(phone: Phone, server: PyVoipServer) -> None:
        leg, rtp = await place_call(phone, kamailio, "1001", "5550101")
        call_id = leg.call_id
        try:
            await async_wait_for(lambda: records.prompted(call_id, "welcome"), 5, "welcome")
            await rtp.key_rfc2833("7")
            await async_wait_for(lambda: records.entered(call_id, "voicemail"), 5, "voicemail")
            since = len(rtp.received)
            await async_wait_for(lambda: rtp.heard(880.0, since), 5, "the record prompt")
            pumps = server.pumps
            await async_wait_for(lambda: pumps[call_id].recording, 5, "the recording")
            rtp.say(sine((1200.0,), 0.8))  # the message: a 1200 Hz tone
            await asyncio.sleep(1.0)
            await rtp.key_rfc2833("#")
            # The flow says goodbye and hangs up: pyVoIP's BYE reaches us through Kamailio.
            bye = await phone.request("BYE", timeout=8.0)
            phone.reply(bye, 200)
            call = await async_wait_for(
                lambda: (c := records.call(call_id)) and c["outcome"] and c, 5, "call end")
        finally:
            rtp.stop()
        assert call["outcome"] == "self_service"
        recording = next(d for k, _, d in records.events(call_id) if k == "recording")
        with wave.open(recording["path"]) as wav:
            assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        assert 0.8 < recording["duration"] < 5.0
        assert dominant_frequency(pcm.astype(np.float64)) == pytest.approx(1200.0, abs=15)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_call_without_a_flow_gets_486_and_is_recorded_as_refused(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    path = write_project(tmp_path)
    path.write_text(path.read_text().replace("{default: pyvoip-test}", "{'9999': pyvoip-test}"))
    config = load_config(path)
    options = PyVoipServeOptions(
        PhoneOptions(kamailio.host, kamailio.port, "1004", "refusing-secret", register_timeout=2.0,
                     rtp_ports=(31000, 31999)),
        build_prompts=False,
    )  # fmt: skip

    async def scenario() -> str:
        server = PyVoipServer(config, options)
        await server.start()
        phone = await open_phone("pyvoip-refused")
        rtp = await RtpPeer.open()
        try:
            leg = phone.leg((kamailio.host, kamailio.port), user="1004", caller="5550199")
            phone.send(leg.invite(sdp_offer(port=rtp.port)), leg.ua)
            await phone.response(486, "INVITE", timeout=6.0)  # 1004 maps to no flow
            # pyVoIP's deny() fails after its 486 on a call without RTP: the leg finishes it.
            assert server.phone is not None
            calls = server.phone._phone.calls
            await async_wait_for(lambda: leg.call_id not in calls, 5, "the call forgotten")
            return leg.call_id
        finally:
            rtp.stop()
            phone.close()
            await server.stop()  # flushes the store

    call_id = asyncio.run(asyncio.wait_for(scenario(), 60))
    with sqlite3.connect(config.store_path) as conn:
        rows = conn.execute("SELECT call_id, caller, called, status, reason, transport "
                            "FROM refused").fetchall()  # fmt: skip
    assert rows == [(call_id, "5550199", "1004", 486, "no flow for this number", "pyvoip")]


# --- (b') speech on the pyVoIP channel -----------------------------------------------------------

SPEECH_FLOW = """
flow: pyvoip-speech
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: "For your balance, say balance or press 1. For a lost card, say lost card."
      choices:
        "1": {say: [balance, my balance], goto: balance}
        "2": {say: [lost card, stolen card], goto: card}
      timeout: 8
      no_input: {after: 1, goto: bye}
      no_match: {after: 3, goto: bye}
  balance:
    hangup: {prompt: "Goodbye."}
  card:
    hangup: {prompt: "Goodbye."}
  bye:
    hangup: {prompt: "Goodbye.", outcome: failed}
"""


def test_speech_is_recognised_on_the_pyvoip_channel(kamailio: Kamailio, tmp_path: Path) -> None:
    """A caller through Kamailio says "lost card" (espeak-ng, as μ-law RTP); pyVoIP hands the
    audio to the host's speech input (PocketSphinx, one worker process) and the flow takes the
    spoken choice."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pyvoip-speech.yaml").write_text(SPEECH_FLOW, encoding="utf-8")
    (tmp_path / "prompts").mkdir()
    write_wav(tmp_path / "prompts" / "menu.wav", sine((440.0,), 0.6))
    write_wav(tmp_path / "prompts" / "card.wav", sine((990.0,), 0.6))
    (tmp_path / "ivr.yaml").write_text(
        "flows_dir: flows\nprompts_dir: prompts\nstore: {path: var/calls.db}\nlanguages: [en]\n"
        "numbers: {default: pyvoip-speech}\nasr: {backend: pocketsphinx, workers: 1}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "ivr.yaml")
    records = Records(config.store_path)
    speech = synthesize_speech(config.prompts_dir, "lost card", "en")
    options = PyVoipServeOptions(
        PhoneOptions(kamailio.host, kamailio.port, "1001", "secret", register_timeout=2.0,
                     rtp_ports=(31000, 31999)),
        build_prompts=False,
    )  # fmt: skip

    async def scenario() -> dict[str, Any]:
        server = PyVoipServer(config, options)
        await server.start()
        assert server.host.asr is not None
        phone = await open_phone("pyvoip-speaker")
        try:
            leg, rtp = await place_call(phone, kamailio, "1001", "5550102")
            call_id = leg.call_id
            try:
                await async_wait_for(lambda: rtp.heard(440.0), 5, "the menu prompt's audio")
                await asyncio.sleep(1.0)  # after the prompt: no barge-in needed
                rtp.say(speech)
                await async_wait_for(lambda: records.entered(call_id, "card"), 15,
                                     "the spoken choice")  # fmt: skip
                bye = await phone.request("BYE", timeout=8.0)
                phone.reply(bye, 200)
                call = await async_wait_for(
                    lambda: (c := records.call(call_id)) and c["outcome"] and c, 5, "call end")
            finally:
                rtp.stop()
            heard = [d for k, _, d in records.events(call_id) if k == "input"]
            return {"call": call, "inputs": heard}
        finally:
            phone.close()
            await server.stop()

    result = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert result["call"]["outcome"] == "self_service"
    assert result["call"]["transport"] == "pyvoip"
    [spoken] = result["inputs"]
    assert spoken["mode"] == "speech" and spoken["value"] == "lost card", spoken


# --- (c) our own user agent registers and takes a call routed by Kamailio ----------------------


def test_native_user_agent_registers_and_takes_a_call_routed_by_kamailio(
    kamailio: Kamailio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sip.register`` in ivr.yaml: ivr serve signs in to the PBX as extension 1002 (digest,
    the password from the environment) and takes the call Kamailio routes to it."""
    from argparse import Namespace

    from ivr.cli.cmd_serve import options_from
    from ivr.serve.server import IvrServer

    config_path = write_project(tmp_path)
    with config_path.open("a", encoding="utf-8") as out:
        out.write(f"sip:\n  listen: 127.0.0.1:0\n  rtp_ports: 30000-30999\n"
                  f"  register:\n    registrar: {kamailio.host}:{kamailio.port}\n"
                  f"    username: '1002'\n    password: ${{IVR_TEST_SIP_PASSWORD}}\n"
                  f"    domain: 127.0.0.1\n    expires: 300\n")  # fmt: skip
    monkeypatch.setenv("IVR_TEST_SIP_PASSWORD", "native-secret")
    config = load_config(config_path)
    options = options_from(Namespace(listen=None, rtp_ports=None, max_calls=None, no_build=True,
                                     workers=None, priority=None), config)  # fmt: skip
    assert options.register is not None and "native-secret" not in repr(options.register)
    records = Records(config.store_path)

    async def scenario() -> None:
        server = IvrServer(config, options)
        await server.start()  # registers
        phone = await open_phone("native-caller")
        try:
            [registration] = server.ua.registrations
            assert registration.status == RegistrationStatus.REGISTERED
            # Kamailio's log reaches the pipe a moment after the 200: wait for both lines.
            lines = await async_wait_for(
                lambda: (found := log_lines(kamailio, "REGISTER 1002")) and len(found) >= 2
                and found, 5, "Kamailio's REGISTER log lines")
            assert lines[:2] == ["REGISTER 1002 challenged", "REGISTER 1002 saved 300"]
            leg, rtp = await place_call(phone, kamailio, "1002", "5550102")
            try:
                await async_wait_for(lambda: records.prompted(leg.call_id, "welcome"), 5,
                                     "the flow's first prompt")  # fmt: skip
                await async_wait_for(lambda: rtp.heard(440.0), 5, "the welcome prompt's audio")
                await rtp.key_rfc2833("1")
                await async_wait_for(lambda: records.entered(leg.call_id, "second"), 5, "second")
                phone.send(leg.request("BYE"), leg.ua)
                await phone.response(200, "BYE", timeout=5.0)
                call = await async_wait_for(
                    lambda: (c := records.call(leg.call_id)) and c["outcome"] and c, 5, "end")
            finally:
                rtp.stop()
            assert call["outcome"] == "abandoned"
            assert call["transport"] != "pyvoip"
        finally:
            phone.close()
            await server.drain()  # de-registers
        routed = log_lines(kamailio, "INVITE routed to sip:1002@")
        assert routed, "Kamailio did not route the call to the registered contact"

    asyncio.run(asyncio.wait_for(scenario(), 60))


# --- the command -------------------------------------------------------------------------------


def test_serve_pyvoip_command_registers_and_deregisters_on_sigterm(
    kamailio: Kamailio, tmp_path: Path
) -> None:
    config_path = write_project(tmp_path)
    with config_path.open("a", encoding="utf-8") as fh:
        fh.write(f"pyvoip:\n  server: {kamailio.host}:{kamailio.port}\n  username: '1003'\n"
                 "  password: ${TEST_PYVOIP_PASSWORD}\n  register_timeout: 2\n")  # fmt: skip
    env = dict(os.environ, TEST_PYVOIP_PASSWORD="cli-secret")
    ivr = Path(sys.executable).with_name("ivr")
    proc = subprocess.Popen([str(ivr), "-c", str(config_path), "serve-pyvoip", "--no-build"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the command prints one line once registered
        if not line:  # it exited: show why
            pytest.fail(f"ivr serve-pyvoip exited: {proc.communicate(timeout=10)}")
        assert line.startswith(f"ivr: registered 1003 at {kamailio.host}:{kamailio.port}"), line
        assert log_lines(kamailio, "REGISTER 1003 saved") == ["REGISTER 1003 saved 120"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert "ivr: stopping" in out
    saved = wait_for(lambda: len(log_lines(kamailio, "REGISTER 1003 saved")) == 2 and
                     log_lines(kamailio, "REGISTER 1003 saved"), 5, "the de-registration")
    assert saved[-1] == "REGISTER 1003 saved 0"  # pyVoIP removed its binding on the way out
