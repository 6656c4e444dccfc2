"""pyVoIP 1.6.8 behind a small typed surface: one registered phone, its calls, their audio.

Everything pyVoIP-specific that the rest of :mod:`ivr.pyvoip` relies on lives here, including
the two places where it reads pyVoIP's internals (the version is pinned in setup.cfg because of
them): how much prompt audio is still queued in a call's RTP sender, and the Request-URI of an
INVITE. What was measured about pyVoIP (see the README, "Transports"):

* ``VoIPPhone.start()`` registers synchronously and never raises on a refused password; the
  status turns FAILED after three attempts, so :meth:`PyVoipPhone.start` polls it.
* ``start()``/``stop()`` block for ``register_timeout`` (30 s by default) when the registrar is
  silent; :class:`PhoneOptions` sets it to a few seconds.
* The call callback runs on a ``threading.Timer`` 1 s after the INVITE, in a thread of its own;
  the call stays known to pyVoIP only while that thread lives, so the call's media loop runs in
  it (see :mod:`ivr.pyvoip.pump`).
* Audio in both directions is 8-bit unsigned linear, 160 bytes per 20 ms.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyVoIP
from pyVoIP.VoIP import CallState, InvalidStateError, PhoneStatus, VoIPCall, VoIPPhone

from ivr.engine.channel import CallInfo

log = logging.getLogger("ivr.pyvoip")

FRAME_BYTES = 160  # 20 ms of 8 kHz 8-bit audio
RECEIVE_LOOP_DELAY = 1.0  # pyVoIP starts reading its SIP socket on a 1 s Timer after start()
PYVOIP_VERSION = pyVoIP.__version__


@dataclass(frozen=True)
class PhoneOptions:
    """Where to register and how (ivr.yaml ``pyvoip:``).

    Attributes:
        server: The registrar/proxy's address (pyVoIP sends every request and response there).
        port: Its UDP port.
        username: The extension (also the digest user name).
        password: Its password (never logged).
        local_ip: The address pyVoIP binds and puts in Contact and SDP.
        local_port: pyVoIP's SIP port (0: any free port).
        rtp_ports: The range pyVoIP picks RTP ports from, at random and without trying them:
            keep it clear of other sockets and of the kernel's ephemeral ports (Linux:
            32768-60999), or an answer can fail on a port in use.
        register_timeout: pyVoIP's wait for each registrar answer (its default is 30 s).
        max_calls: Calls beyond this many get 486 Busy Here.
    """

    server: str
    port: int = 5060
    username: str = ""
    password: str = ""
    local_ip: str = "127.0.0.1"
    local_port: int = 0
    rtp_ports: tuple[int, int] = (10000, 20000)
    register_timeout: float = 5.0
    max_calls: int = 40

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PhoneOptions:
        """From ivr.yaml's ``pyvoip:`` section (``server: host[:port]`` or ``server`` + ``port``).

        Raises:
            ValueError: a value is missing or malformed.
        """
        server = str(data.get("server") or "")
        if not server:
            raise ValueError("pyvoip.server is required (the registrar's host or host:port)")
        port = int(data.get("port") or 5060)
        if ":" in server:
            server, _, port_text = server.rpartition(":")
            port = int(port_text)
        low, _, high = str(data.get("rtp_ports") or "10000-20000").partition("-")
        username = str(data.get("username") or "")
        if not username:
            raise ValueError("pyvoip.username is required (the extension to register)")
        return cls(
            server=server,
            port=port,
            username=username,
            password=str(data.get("password") or ""),
            local_ip=str(data.get("local_ip") or "127.0.0.1"),
            local_port=int(data.get("local_port") or 0),
            rtp_ports=(int(low), int(high or low)),
            register_timeout=float(data.get("register_timeout") or 5.0),
            max_calls=int(data.get("max_calls") or 40),
        )


def free_port(host: str) -> int:
    """A UDP port on ``host`` that nothing is bound to now (pyVoIP cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class CallLeg:
    """One pyVoIP call, as the channel's media loop uses it (all methods on the call's thread)."""

    def __init__(self, call: VoIPCall) -> None:
        self._call = call
        request = call.request
        self.call_id = str(request.headers.get("Call-ID", ""))
        heading = bytes(getattr(request, "heading", b"")).decode("utf-8", "replace")
        self.request_uri = heading.split(" ")[1] if heading.count(" ") >= 2 else ""
        self.caller = _user(request.headers.get("From"))
        self.called = _user(request.headers.get("To")) or _uri_user(self.request_uri)

    def info(self) -> CallInfo:
        return CallInfo(call_id=self.call_id, caller=self.caller, called=self.called,
                        transport="pyvoip")  # fmt: skip

    @property
    def ringing(self) -> bool:
        return self._call.state == CallState.RINGING

    @property
    def ended(self) -> bool:
        return self._call.state == CallState.ENDED

    def answer(self) -> None:
        self._call.answer()

    def deny(self) -> None:
        """486 Busy Here (the only refusal pyVoIP can send)."""
        with contextlib.suppress(InvalidStateError, KeyError):  # answered or gone meanwhile
            try:
                self._call.deny()
            except AttributeError:
                # pyVoIP 1.6.8 sends the 486, then stops the call's RTP clients, which fails on
                # one never started (no socket yet): finish what deny() left, or the call stays
                # in the phone's table for good.
                self._call.state = CallState.ENDED
                self._call.phone.calls.pop(self.call_id, None)

    def hangup(self) -> None:
        """Send BYE (when the call is up)."""
        with contextlib.suppress(InvalidStateError, KeyError):
            self._call.hangup()

    def write(self, audio: bytes) -> None:
        """Queue 8-bit unsigned audio for sending (pyVoIP sends 160 bytes every 20 ms)."""
        self._call.write_audio(audio)

    def read(self) -> bytes:
        """The next 20 ms of received audio (8-bit unsigned; 0x80 when nothing arrived)."""
        return self._call.read_audio(FRAME_BYTES, blocking=False)

    def dtmf(self) -> str:
        """The RFC 2833 keys received since the last call ("" if none)."""
        keys = []
        while key := self._call.get_dtmf(1):
            keys.append(key)
        return "".join(keys)

    def queued(self) -> int:
        """Bytes written but not yet sent: what a stop cannot take back.

        pyVoIP 1.6.8 internals: the sender's ``pmout`` buffer starts at absolute offset
        ``pmout.offset``; it has sent up to ``pmout.offset + buffer.tell()``; ``outOffset`` is
        where the next write goes.
        """
        total = 0
        for client in self._call.RTPClients:
            manager = client.pmout
            if manager.offset > client.outOffset:  # nothing written yet
                continue
            total = max(total, client.outOffset - (manager.offset + manager.buffer.tell()))
        return total


def _user(header: Any) -> str:
    if isinstance(header, dict):
        return str(header.get("number") or "")
    return ""


def _uri_user(uri: str) -> str:
    if not uri.startswith(("sip:", "sips:")) or "@" not in uri:
        return ""
    return uri.split(":", 1)[1].split("@", 1)[0]


CallHandler = Callable[[CallLeg], None]


class PyVoipPhone:
    """A pyVoIP phone registered as one extension; each call the registrar sends goes to
    ``on_call`` on a pyVoIP thread of its own, which owns the call until it returns.

    Args:
        options: Registrar, account and local addresses.
        on_call: ``(leg) -> None``; runs on the call's thread for the whole call.
    """

    def __init__(self, options: PhoneOptions, on_call: CallHandler,
                 on_refused: Callable[[CallLeg, str], None] | None = None) -> None:  # fmt: skip
        self.options = options
        self.on_call = on_call
        self.on_refused = on_refused  # (leg, reason) after a 486 for max_calls
        self._lock = threading.Lock()
        self.active = 0
        self._phone = self._make(options.local_port or free_port(options.local_ip))

    def _make(self, port: int) -> VoIPPhone:
        options = self.options
        self.local_port = port
        low, high = options.rtp_ports
        phone = VoIPPhone(
            options.server, options.port, options.username, options.password,
            myIP=options.local_ip, callCallback=self._callback, sipPort=port,
            rtpPortLow=low, rtpPortHigh=high,
        )  # fmt: skip
        # pyVoIP passes it to select() and compares it with elapsed seconds: a float works.
        phone.sip.register_timeout = options.register_timeout  # type: ignore[assignment]
        return phone

    @property
    def status(self) -> str:
        """INACTIVE, REGISTERING, REGISTERED, DEREGISTERING or FAILED."""
        return str(self._phone.get_status().value)

    def start(self, timeout: float = 10.0) -> bool:
        """Register (blocking); True once REGISTERED and pyVoIP reads its socket, False when
        FAILED or after ``timeout``.

        pyVoIP's receive loop starts 1 s after its ``start()``: an INVITE that comes earlier
        waits for it (measured: 180 and 200 each a second late), so this returns only then.
        """
        started = time.monotonic()
        for attempt in range(3):
            try:
                self._phone.start()
                break
            except OSError:
                # A port picked as free was taken before pyVoIP bound it: pick another.
                if self.options.local_port or attempt == 2:
                    raise
                self._phone = self._make(free_port(self.options.local_ip))
        deadline = started + timeout
        while time.monotonic() < deadline:
            status = self._phone.get_status()
            if status == PhoneStatus.FAILED:
                return False
            if status == PhoneStatus.REGISTERED:
                time.sleep(max(0.0, started + RECEIVE_LOOP_DELAY + 0.05 - time.monotonic()))
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Hang up every call and de-register (blocks up to ``register_timeout``)."""
        try:
            self._phone.stop()
        except OSError:  # the socket went away under a de-registration
            log.warning("call -: pyVoIP stop: socket already closed")

    def _callback(self, call: VoIPCall) -> None:
        leg = CallLeg(call)
        with self._lock:
            busy = self.active >= self.options.max_calls
            if not busy:
                self.active += 1
        if busy:
            log.warning("call %s: %d calls up: 486", leg.call_id, self.active)
            leg.deny()
            if self.on_refused is not None:
                self.on_refused(leg, "full")
            return
        try:
            self.on_call(leg)
        except Exception:
            log.exception("call %s: pyVoIP call handler failed", leg.call_id)
            leg.hangup()
        finally:
            with self._lock:
                self.active -= 1
