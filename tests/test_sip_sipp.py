"""The user agent against a real SIP peer: SIPp 3.6.1 (Debian ``sip-tester``) on loopback.

SIPp runs as a child process against the user agent on this test's event loop; the verdict is
SIPp's own: its exit code and the success/failure counters of its statistics file.
"""

from __future__ import annotations

import asyncio
import csv
import socket
from pathlib import Path

import pytest
from sip_phone import run, start_ua

from ivr.sip.call import SipCall
from ivr.sip.ua import UserAgent

SCENARIOS = Path(__file__).parent / "sip_data" / "sipp"
pytestmark = pytest.mark.usefixtures("sipp_program")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def sipp(
    ua: UserAgent,
    tmp: Path,
    scenario: list[str],
    *,
    calls: int = 1,
    limit: int = 1,
    rate: int | None = None,
) -> tuple[int, dict[str, str], str]:
    """Run SIPp against ``ua``; returns its exit code, final statistics and error log."""
    host, port = ua.address
    args = [
        "sipp", *scenario, f"{host}:{port}", "-m", str(calls), "-l", str(limit),
        "-i", "127.0.0.1", "-p", "0", "-mp", str(_free_udp_port()), "-timeout", "30",
        "-timeout_error", "-trace_err", "-error_file", str(tmp / "errors.log"),
        "-trace_stat", "-stf", str(tmp / "stat.csv"), "-nostdin",
    ]  # fmt: skip
    if rate is not None:
        args += ["-r", str(rate)]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=tmp, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await proc.communicate()
    with open(tmp / "stat.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    errors = (tmp / "errors.log").read_text() if (tmp / "errors.log").exists() else ""
    assert proc.returncode is not None
    return proc.returncode, rows[-1], errors + stderr.decode(errors="replace")


class Answering:
    """Accepts every call; optionally hangs up ``hangup_after`` seconds after the ACK."""

    def __init__(self, hangup_after: float | None = None, accept: bool = True) -> None:
        self.calls: list[SipCall] = []
        self.hangups: list[str] = []
        self.hangup_after = hangup_after
        self.accept = accept

    def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        call.on_hangup = lambda: self.hangups.append(call.call_id)
        if self.hangup_after is not None:
            call.on_established = lambda: asyncio.get_running_loop().call_later(
                self.hangup_after or 0, call.hangup)  # fmt: skip
        if self.accept:
            call.accept()


def test_sipp_builtin_uac_call_answered_and_ended_by_sipp(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = Answering()
        ua = await start_ua(on_incoming=app)
        code, stats, errors = await sipp(ua, tmp_path, ["-sn", "uac"])
        assert code == 0, errors
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("1", "0")
        assert len(app.calls) == 1 and app.hangups == [app.calls[0].call_id]
        assert app.calls[0].media is not None and app.calls[0].media.encoding == "PCMU"
        await ua.close()

    run(scenario())


def test_sipp_caller_receives_our_bye(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = Answering(hangup_after=0.2)
        ua = await start_ua(on_incoming=app)
        xml = SCENARIOS / "uac_server_hangs_up.xml"
        code, stats, errors = await sipp(ua, tmp_path, ["-sf", str(xml)])
        assert code == 0, errors
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("1", "0")
        call = app.calls[0]
        await asyncio.wait_for(call.wait_ended(), 5)
        assert call.end_reason == "local bye" and app.hangups == []
        assert call.media is not None and call.media.dtmf_payload_type == 101
        await ua.close()

    run(scenario())


def test_sipp_caller_cancels_while_ringing(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = Answering(accept=False)
        ua = await start_ua(on_incoming=app)
        code, stats, errors = await sipp(ua, tmp_path, ["-sf", str(SCENARIOS / "uac_cancel.xml")])
        assert code == 0, errors
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("1", "0")
        call = app.calls[0]
        assert call.end_reason == "cancelled" and app.hangups == [call.call_id]
        await ua.close()

    run(scenario())


def test_sipp_100_calls_at_50_per_second(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = Answering()
        ua = await start_ua(on_incoming=app, max_calls=200)
        code, stats, errors = await sipp(ua, tmp_path, ["-sn", "uac"], calls=100, limit=100,
                                         rate=50)  # fmt: skip
        assert code == 0, errors
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("100", "0")
        assert len(app.hangups) == 100 and ua.active_calls == 0
        await ua.close()

    run(scenario())
