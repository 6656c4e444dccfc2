"""What the end-to-end tests of ``ivr serve`` share: configurations, a server on its own thread,
the call records, SIPp and baresip runs. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from ivr.config import Config, load_config
from ivr.serve.server import IvrServer, ServeOptions

REPO = Path(__file__).resolve().parents[1]
SIPP_SCENARIOS = Path(__file__).parent / "sip_data" / "sipp"
MONDAY_10AM = "2027-01-04T10:00:00+08:00"  # contact-centre hours in the bank flow
T = TypeVar("T")

# Small flows for what the bank flow cannot show quickly: a one-key menu and a transfer.
MENU_FLOW = """\
flow: e2e-menu
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1 for news."
      choices:
        "1": news
      timeout: 2
      no_input: {after: 1, goto: no_news}
      no_match: {goto: no_news}
  news:
    hangup: {prompt: "Here is the news. Goodbye."}
  no_news:
    hangup: {prompt: "No news today. Goodbye.", outcome: failed}
"""

TRANSFER_FLOW = """\
flow: e2e-transfer
languages: [en]
start: hand_over
nodes:
  hand_over:
    transfer:
      to: "sip:7001@127.0.0.1:{port}"
      prompt: "Transferring you."
      on_fail: failed
  failed:
    hangup: {{prompt: "The transfer failed. Goodbye.", outcome: failed}}
"""


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port nobody uses on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(root: Path, flows_dir: Path, prompts_dir: Path, *, port: int,
                 numbers: dict[str, str] | None = None, **sip: Any) -> Config:  # fmt: skip
    """An ivr.yaml in ``root`` for a server on 127.0.0.1:``port``, its store in ``root``."""
    data = {
        "flows_dir": str(flows_dir),
        "prompts_dir": str(prompts_dir),
        "actions_path": str(REPO / "flows" / "actions"),
        "scripts_dir": str(REPO / "tests" / "scripts"),
        "store": {"path": str(root / "calls.db")},
        "languages": ["en", "zh"],
        "numbers": numbers or {"95588": "bank-main", "default": "bank-main"},
        "transfer_allow": ["sip:*@agents.bank.example", "+86955*", "sip:*@127.0.0.1:*"],
        "vars": {"bank_api": "${IVR_BANK_API:-http://127.0.0.1:8765}"},
        "sip": {"listen": f"127.0.0.1:{port}", "test_headers": True, **sip},
    }
    path = root / "ivr.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def bank_flows(target: Path, port: int) -> Path:
    """The repository's flows plus the two small test flows (the transfer goes to ``port``)."""
    shutil.copytree(REPO / "flows", target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "e2e-menu.yaml").write_text(MENU_FLOW, encoding="utf-8")
    (target / "e2e-transfer.yaml").write_text(TRANSFER_FLOW.format(port=port), encoding="utf-8")
    return target


class ServerThread:
    """An :class:`IvrServer` on an event loop of its own thread (the test's loop stays free)."""

    def __init__(self, config: Config, options: ServeOptions) -> None:
        self.config = config
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ivr-serve", daemon=True)
        self.server: IvrServer | None = None

    def start(self, timeout: float = 60.0) -> ServerThread:
        self.thread.start()
        self.server = IvrServer(self.config, self.options)
        self.run(self.server.start(), timeout)
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def read(self, fn: Callable[[IvrServer], T]) -> T:
        """``fn(server)`` on the server's loop (to read its state safely)."""
        assert self.server is not None
        server = self.server

        async def call() -> T:
            return fn(server)

        return self.run(call(), 10.0)

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return self.server.address

    @property
    def db(self) -> Path:
        return self.config.store_path

    def stop(self) -> None:
        if self.server is not None and self.thread.is_alive():
            try:
                self.run(self.server.drain(), 60.0)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)


# --- call records --------------------------------------------------------------------------------


_BY_SIP_CALL_ID = ("SELECT call_id FROM events WHERE kind = 'call_start' "
                   "AND json_extract(data, '$.sip_call_id') = ? ORDER BY rowid DESC")


def record_ids(db: Path, sip_call_id: str) -> list[str]:
    """Our ids of the calls whose INVITE carried ``sip_call_id`` (the server's record keys),
    the latest first."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute(_BY_SIP_CALL_ID, (sip_call_id,))]


def sip_call_ids(db: Path) -> set[str]:
    """The SIP Call-IDs of every recorded call (the records themselves are keyed by our ids)."""
    if not db.exists():
        return set()
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute(
            "SELECT json_extract(data, '$.sip_call_id') FROM events WHERE kind = 'call_start'")}


def record_id(db: Path, call_id: str) -> str:
    """The record key of the latest call with SIP Call-ID ``call_id`` (``call_id`` itself until
    its call_start is written, or for records keyed by it: the simulator's)."""
    found = record_ids(db, call_id)
    return found[0] if found else call_id


def events(db: Path, call_id: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(kind, node, data) of every recorded event of the call with Call-ID (or our id)
    ``call_id``, in order."""
    if not db.exists():
        return []
    key = record_id(db, call_id)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, node, data FROM events WHERE call_id = ? ORDER BY seq",
                            (key,)).fetchall()  # fmt: skip
    return [(kind, node, json.loads(data or "{}")) for kind, node, data in rows]


def calls(db: Path) -> list[dict[str, Any]]:
    """Every row of the calls table."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM calls ORDER BY started_at")]


def prompts(db: Path, call_id: str) -> list[str]:
    """The prompt ids the call heard, in order."""
    return [data["prompt"] for kind, _, data in events(db, call_id) if kind == "prompt"]


def wait_for(check: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """Poll ``check()`` until it returns something true; raise TimeoutError with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value!r} after {timeout} s")
        time.sleep(interval)


async def async_wait_for(check: Callable[[], T], timeout: float, interval: float = 0.1) -> T:
    """:func:`wait_for` without blocking the running loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(interval)


def ended_call(db: Path, call_id: str) -> dict[str, Any] | None:
    """The call's summary row once its outcome is written."""
    key = record_id(db, call_id)
    row = next((c for c in calls(db) if c["call_id"] == key), None)
    return row if row is not None and row["outcome"] is not None else None


# --- SIPp ----------------------------------------------------------------------------------------


def sipp(address: tuple[str, int], tmp: Path, scenario: list[str], *, calls: int = 1,
         limit: int = 1, rate: int | None = None, timeout: float = 60.0
         ) -> tuple[int, dict[str, str], str]:  # fmt: skip
    """Run SIPp against ``address``; its exit code, final statistics row and error log."""
    host, port = address
    args = [
        "sipp", *scenario, f"{host}:{port}", "-m", str(calls), "-l", str(limit),
        "-i", "127.0.0.1", "-p", "0", "-mp", str(free_port()), "-timeout", str(int(timeout)),
        "-timeout_error", "-trace_err", "-error_file", str(tmp / "errors.log"),
        "-trace_stat", "-stf", str(tmp / "stat.csv"), "-nostdin",
    ]  # fmt: skip
    if rate is not None:
        args += ["-r", str(rate)]
    proc = subprocess.run(args, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=timeout + 15, check=False)  # fmt: skip
    with open(tmp / "stat.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    errors = (tmp / "errors.log").read_text() if (tmp / "errors.log").exists() else ""
    return proc.returncode, rows[-1], errors + proc.stderr.decode(errors="replace")


# --- baresip -------------------------------------------------------------------------------------

BARESIP_CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
net_interface\t\t127.0.0.1
audio_player\t\taubridge,nullsink
audio_source\t\tausine,{tone}
audio_alert\t\taubridge,nullsink
ausrc_srate\t\t48000
ausrc_channels\t\t2
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taubridge.so
module\t\t\tcons.so
module_app\t\taccount.so
module_app\t\tmenu.so
cons_listen\t\t127.0.0.1:{cons_port}
"""
# baresip's sndfile module: what a call sends and receives, to WAV files in a folder
BARESIP_RECORDING = "module\t\t\tsndfile.so\nsnd_path\t\t{snd_path}\n"


class Baresip:
    """baresip 1.0 as a child process: dials on start (unless ``dial`` is None), takes key
    presses on its UDP console; ``account`` is its accounts line (no registration by default);
    it sends a sine of ``tone`` Hz; with ``record`` it writes what each call receives and sends
    to WAV files under ``home/snd`` (:meth:`received_tone`).

    It exits 0 whatever happens (REAL-PEERS.md): its log is the verdict.
    """

    def __init__(self, home: Path, dial: str | None, seconds: int = 20,
                 account: str = "<sip:baresip@127.0.0.1>;regint=0", *, tone: int = 440,
                 record: bool = False, sip_port: int | None = None) -> None:  # fmt: skip
        home.mkdir(parents=True, exist_ok=True)
        self.cons_port = free_port(socket.SOCK_STREAM)  # cons binds TCP and UDP on it
        self.sip_port = sip_port or free_port()
        self.snd = home / "snd"
        config = BARESIP_CONFIG.format(sip_port=self.sip_port, cons_port=self.cons_port,
                                       tone=tone)  # fmt: skip
        if record:
            self.snd.mkdir(exist_ok=True)
            config += BARESIP_RECORDING.format(snd_path=self.snd)
        (home / "config").write_text(config)
        (home / "accounts").write_text(account + "\n")
        self.log_path = home / "baresip.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        commands = [] if dial is None else ["-e", f"/dial {dial}"]
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(home), *commands, "-t", str(seconds)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")

    def keys(self, text: str) -> None:
        """Type ``text`` on baresip's console (in a call, digits are sent as DTMF)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(text.encode(), ("127.0.0.1", self.cons_port))

    def wait_log(self, text: str, timeout: float) -> str:
        return wait_for(lambda: self.log if text in self.log else "", timeout)

    def received_tone(self) -> float | None:
        """The dominant frequency of what the last call received (``record``), or None before
        baresip has completed that file (it does when the call ends)."""
        files = sorted(self.snd.glob("*-dec.wav"))
        if not files:
            return None
        try:
            with wave.open(str(files[-1])) as wav:
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
                channels, rate = wav.getnchannels(), wav.getframerate()
        except (wave.Error, EOFError):
            return None
        pcm = pcm[::channels]
        if len(pcm) < 4000:
            return None
        spectrum = np.abs(np.fft.rfft(pcm[2000:] * np.hanning(len(pcm) - 2000)))
        spectrum[0] = 0.0
        return float(np.fft.rfftfreq(len(pcm) - 2000, 1 / rate)[int(np.argmax(spectrum))])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
