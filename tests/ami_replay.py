"""A real TCP AMI peer on 127.0.0.1 that answers with recorded Asterisk traffic.

No Asterisk server can be installed on this machine (no Debian package runs here without a
system of its own), so the AMI adapter is tested against this peer instead: a real socket, the
banner, the login challenge, the replies and events of ``tests/data/ami/`` (panoramisk's raw AMI
text and cacofonisk's Asterisk 13 events; sources and licences in tests/data/README.md). Only
the ActionID of a recorded reply is replaced by the client's, as Asterisk would answer.

Where no recording exists (AMI has replies and events that neither project captured: Redirect's
reply, QueueSummary, QueueCallerJoin/Leave, AgentCalled/Connect/Complete), the text is written
here from Asterisk's documented fields and marked ``WRITTEN``: it is ours, not a recording.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "ami"
SECRET = "yyyyyyyyyyyy"  # the secret of panoramisk's recorded plain login


def blocks(name: str) -> tuple[str, list[str], list[str]]:
    """panoramisk's ``name``.yaml: (banner, the client's actions, the server's messages)."""
    text = (DATA / "panoramisk" / f"{name}.yaml").read_text(encoding="utf-8")
    banner = ""
    if text.lower().startswith("asterisk call manager"):
        banner, text = text.split("\n", 1)
    actions, server = [], []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        block = block.strip("\n").strip(" ")
        if not block.strip():
            continue
        (actions if block.lower().startswith("action:") else server).append(block)
    return banner, actions, server


def cacofonisk(name: str) -> list[str]:
    """cacofonisk's ``name``.json: each recorded event as AMI text (its own ``content`` key,
    which is the source project's and not AMI's, left out)."""
    out = []
    for event in json.loads((DATA / "cacofonisk" / f"{name}.json").read_text(encoding="utf-8")):
        lines = [f"Event: {event['Event']}"]
        lines += [f"{k}: {v}" for k, v in event.items() if k not in ("Event", "content")]
        out.append("\n".join(lines))
    return out


def with_action_id(block: str, action_id: str) -> str:
    """A recorded reply answering the client's action: its ActionID line replaced."""
    lines = [line for line in block.split("\n") if not line.lower().startswith("actionid:")]
    return "\n".join([lines[0], f"ActionID: {action_id}", *lines[1:]])


# WRITTEN: Asterisk's reply to a Redirect that worked (manager.c, "Redirect successful").
REDIRECT_OK = "Response: Success\nMessage: Redirect successful"
REDIRECT_FAILED = "Response: Error\nMessage: Channel specified does not exist"
# WRITTEN: QueueSummary's list (Asterisk 13 field names).
QUEUE_SUMMARY = [
    "Response: Success\nEventList: start\nMessage: Queue summary will follow",
    "Event: QueueSummary\nQueue: support\nLoggedIn: 2\nAvailable: 1\nCallers: 1\n"
    "HoldTime: 12\nTalkTime: 95\nLongestHoldTime: 4",
    "Event: QueueSummaryComplete\nEventList: Complete\nListItems: 1",
]


def written_answered_call(channel: str, uniqueid: str, queue: str = "support") -> list[str]:
    """WRITTEN: the events of a caller answered in an Asterisk 13 queue: join, an agent who does
    not answer, one who does, the end of the call (HoldTime 7 s, TalkTime 42 s)."""
    caller = f"Channel: {channel}\nUniqueid: {uniqueid}\nQueue: {queue}"
    return [
        f"Event: QueueCallerJoin\nPrivilege: agent,all\n{caller}\nPosition: 1\nCount: 1",
        f"Event: AgentCalled\nPrivilege: agent,all\n{caller}\nDestChannel: PJSIP/ann-0001\n"
        "Interface: PJSIP/ann\nMemberName: ann",
        f"Event: AgentRingNoAnswer\nPrivilege: agent,all\n{caller}\nInterface: PJSIP/ann\n"
        "MemberName: ann\nRingTime: 15",
        f"Event: AgentCalled\nPrivilege: agent,all\n{caller}\nDestChannel: PJSIP/bo-0002\n"
        "Interface: PJSIP/bo\nMemberName: bo",
        f"Event: QueueCallerLeave\nPrivilege: agent,all\n{caller}\nPosition: 1\nCount: 0",
        f"Event: AgentConnect\nPrivilege: agent,all\n{caller}\nDestChannel: PJSIP/bo-0002\n"
        "Interface: PJSIP/bo\nMemberName: bo\nHoldTime: 7\nRingTime: 3",
        f"Event: AgentComplete\nPrivilege: agent,all\n{caller}\nDestChannel: PJSIP/bo-0002\n"
        "Interface: PJSIP/bo\nMemberName: bo\nHoldTime: 7\nTalkTime: 42\nReason: caller",
        f"Event: Hangup\nPrivilege: call,all\n{caller}\nCause: 16\nCause-txt: Normal Clearing",
    ]


Reply = Callable[[dict[str, str]], list[str]]


class AmiReplay:
    """The peer (see the module docstring). ``line_end``: ``\\r\\n`` as Asterisk sends, or
    ``\\n`` as the recordings are stored. ``interleave``: recorded events sent between the
    blocks of every reply, as a busy Asterisk does."""

    def __init__(self, secret: str = SECRET, line_end: str = "\r\n",
                 interleave: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.secret = secret
        self.line_end = line_end
        self.interleave = interleave
        self.actions: list[dict[str, str]] = []  # every action received, keys lower-cased
        self.raw = b""  # every byte received
        self.logins = 0
        self.connections = 0
        self.replies: dict[str, Reply] = {
            "challenge": self._challenge, "login": self._login, "logoff": self._logoff,
            "ping": self._recorded("ping"), "queuestatus": self._recorded("queue_status"),
            "queuesummary": lambda a: [with_action_id(b, a["actionid"]) for b in QUEUE_SUMMARY],
            "redirect": lambda a: [with_action_id(REDIRECT_OK, a["actionid"])],
        }  # fmt: skip
        self.after: dict[str, list[str]] = {}  # action -> events to send after its reply
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.challenge = ""

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        """Cut every connection (as a restarting Asterisk does)."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def send(self, messages: list[str]) -> None:
        """Send ``messages`` (events) on every connection."""
        for writer in self._writers:
            writer.write(self._wire(messages))

    # --- serving --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        banner, _, _ = blocks("login_md5")
        writer.write((banner + self.line_end).encode())
        buffer = b""
        try:
            while data := await reader.read(4096):
                self.raw += data
                buffer += data
                while b"\r\n\r\n" in buffer:
                    text, buffer = buffer.split(b"\r\n\r\n", 1)
                    self._answer(writer, text.decode())
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _answer(self, writer: asyncio.StreamWriter, text: str) -> None:
        action = {}
        for line in text.split("\r\n"):
            key, _, value = line.partition(":")
            action[key.strip().lower()] = value.strip()
        self.actions.append(action)
        name = action.get("action", "").lower()
        reply = self.replies.get(name)
        messages = reply(action) if reply else [
            with_action_id("Response: Error\nMessage: Invalid/unknown command", action["actionid"])]
        writer.write(self._wire(messages + self.after.get(name, [])))
        if name == "logoff":
            writer.close()

    def _wire(self, messages: list[str]) -> bytes:
        out = []
        for message in messages:
            out.extend(self.interleave)
            out.append(message)
        return "".join(m.replace("\n", self.line_end) + self.line_end * 2 for m in out).encode()

    def _recorded(self, name: str) -> Reply:
        return lambda action: [with_action_id(b, action["actionid"]) for b in blocks(name)[2]]

    def _challenge(self, action: dict[str, str]) -> list[str]:
        reply = blocks("login_md5")[2][0]
        self.challenge = next(line.split(": ", 1)[1] for line in reply.split("\n")
                              if line.startswith("Challenge:"))  # fmt: skip
        return [with_action_id(reply, action["actionid"])]

    def _login(self, action: dict[str, str]) -> list[str]:
        if action.get("authtype", "").lower() == "md5":
            expected = hashlib.md5((self.challenge + self.secret).encode()).hexdigest()
            good = action.get("key") == expected
        else:
            good = action.get("secret") == self.secret
        if not good:
            return [with_action_id(b, action["actionid"]) for b in blocks("login_failed")[2]]
        self.logins += 1
        return [with_action_id(b, action["actionid"]) if b.startswith("Response") else b
                for b in blocks("login_ok")[2]]  # fmt: skip

    def _logoff(self, action: dict[str, str]) -> list[str]:
        return [with_action_id(b, action["actionid"]) for b in blocks("logoff")[2]]


class ReplayThread:
    """An :class:`AmiReplay` on an event loop of its own thread, for tests whose AMI client
    runs elsewhere (a command's own loop, ``ivr serve``'s thread)."""

    def __init__(self, replay: AmiReplay | None = None) -> None:
        self.replay = replay or AmiReplay()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ami-replay",
                                       daemon=True)  # fmt: skip
        self.port = 0

    def __enter__(self) -> ReplayThread:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.replay.start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.replay.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def actions(self, name: str) -> list[dict[str, str]]:
        """The actions named ``name`` received so far (read on the peer's loop)."""

        async def read() -> list[dict[str, str]]:
            return [a for a in self.replay.actions if a.get("action") == name]

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(5)
