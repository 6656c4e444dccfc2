"""An AMI client on asyncio (docs/ASTERISK.md): login, actions and their replies, events,
reconnection.

One task owns the connection: it connects, reads the banner, logs in (MD5 challenge or plain),
then reads messages. A response goes to the action waiting for its ActionID; events (Asterisk
interleaves them with replies freely) go to ``on_event``; the events an action's list brings
(``QueueStatus`` -> ``QueueParams``, ``QueueMember``, ... ``QueueStatusComplete``) go to that
action. When the connection drops, every action waiting fails with :class:`AmiNotConnected` and
the task connects again after a back-off that doubles up to ``backoff_max`` (reset by a login
that succeeds). A refused login is logged (the user, never the secret) and retried the same way:
ops may fix manager.conf while we wait.

Nothing here blocks the loop: the socket is asyncio's, and the work per message is parsing a
few lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ivr.ami.wire import MAX_BANNER, AmiMessage, AmiProtocolError, Framer, banner_version, parse
from ivr.ami.wire import render as render_action

log = logging.getLogger("ivr.ami")

READ_SIZE = 65536


class AmiError(Exception):
    """An AMI action could not be carried out."""


class AmiNotConnected(AmiError):
    """No logged-in connection to Asterisk (now, or any more for this action)."""


class AmiLoginError(AmiError):
    """Asterisk refused our user name and secret."""


@dataclass(frozen=True)
class AmiSettings:
    """Where Asterisk's manager listens and how we log in (``acd.asterisk`` of ivr.yaml).

    ``auth``: ``md5`` (the secret never crosses the wire: Challenge, then an MD5 key) or
    ``plain``. Times in seconds.
    """

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    auth: str = "md5"
    timeout: float = 10.0  # connecting, the banner, one action's reply
    backoff_min: float = 0.5
    backoff_max: float = 30.0


@dataclass
class _Pending:
    """An action waiting for its reply (and, for a list, its events)."""

    future: asyncio.Future[tuple[AmiMessage, list[AmiMessage]]]
    listing: bool
    response: AmiMessage | None = None
    events: list[AmiMessage] = field(default_factory=list)


EventHandler = Callable[[AmiMessage], None]


class AmiClient:
    """A connection to Asterisk's manager that stays up (see the module docstring)."""

    def __init__(self, settings: AmiSettings, on_event: EventHandler | None = None,
                 ids: Iterator[str] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self.on_event = on_event
        self._ids = ids or (f"ivr-{n}" for n in itertools.count(1))
        self._pending: dict[str, _Pending] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._logged_in = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.logins = 0  # successful logins (a reconnection adds one)
        self.last_error: Exception | None = None
        self.version = ""
        self._fresh = False  # this connection logged in

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Connect (and keep connecting) in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ami")

    async def wait_connected(self, timeout: float) -> None:
        """Wait until logged in.

        Raises:
            AmiLoginError: the last attempt was refused; AmiNotConnected: not in ``timeout``.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._logged_in.wait(), timeout)
        if self._logged_in.is_set():
            return
        if isinstance(self.last_error, AmiLoginError):
            raise self.last_error
        why = self.last_error or "no answer yet"
        raise AmiNotConnected(f"no AMI connection to {self._where()}: {why}")

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    async def close(self) -> None:
        """Log off and stop reconnecting."""
        task, self._task = self._task, None
        if self._logged_in.is_set():
            with contextlib.suppress(AmiError, OSError):
                await asyncio.wait_for(self._send("Logoff", {}, listing=False), 1.0)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop(AmiNotConnected("the AMI client was closed"))

    # --- actions --------------------------------------------------------------------------

    async def action(self, name: str, headers: dict[str, str] | None = None) -> AmiMessage:
        """Send action ``name`` and return its response (``.ok`` False: Asterisk said Error).

        Raises:
            AmiNotConnected: not logged in, or the connection dropped before the reply.
            AmiError: no reply within the timeout.
            ValueError: a header that cannot be sent (a line break in a value).
        """
        if not self._logged_in.is_set():
            raise AmiNotConnected(f"no AMI connection to {self._where()}")
        response, _ = await self._send(name, headers or {}, listing=False)
        return response

    async def listing(self, name: str,
                      headers: dict[str, str] | None = None,
                      ) -> tuple[AmiMessage, list[AmiMessage]]:  # fmt: skip
        """Send an action that answers with a list of events (``QueueStatus``,
        ``QueueSummary``): its response and the events up to the list's ``...Complete``."""
        if not self._logged_in.is_set():
            raise AmiNotConnected(f"no AMI connection to {self._where()}")
        return await self._send(name, headers or {}, listing=True)

    async def _send(self, name: str, headers: dict[str, str],
                    listing: bool) -> tuple[AmiMessage, list[AmiMessage]]:  # fmt: skip
        writer = self._writer
        if writer is None:
            raise AmiNotConnected(f"no AMI connection to {self._where()}")
        action_id = next(self._ids)
        data = render_action(name, {**headers, "ActionID": action_id})
        future: asyncio.Future[tuple[AmiMessage, list[AmiMessage]]] = \
            asyncio.get_running_loop().create_future()  # fmt: skip
        self._pending[action_id] = _Pending(future, listing)
        log.debug("call -: ami > %s %s", name, action_id)  # never the headers: a login's secret
        try:
            writer.write(data)
            await writer.drain()
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except TimeoutError:
            raise AmiError(f"AMI {name}: no reply in {self.settings.timeout:g} s") from None
        except OSError as exc:
            raise AmiNotConnected(f"AMI {name}: {exc}") from None
        finally:
            self._pending.pop(action_id, None)

    # --- the connection -------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.settings.backoff_min
        while True:
            self._fresh = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except AmiLoginError as exc:
                self.last_error = exc
                log.error("call -: %s", exc)
            except (OSError, TimeoutError, AmiError, AmiProtocolError) as exc:
                self.last_error = exc
                log.warning("call -: AMI connection to %s lost: %s", self._where(),
                            exc or type(exc).__name__)  # fmt: skip
            except Exception as exc:  # a bug of ours must not end the reconnecting for good
                self.last_error = exc
                log.exception("call -: AMI connection to %s failed", self._where())
            self._drop(AmiNotConnected(f"the AMI connection to {self._where()} dropped"))
            if self._fresh:  # it was up: a new outage starts the back-off over
                delay = self.settings.backoff_min
            log.info("call -: AMI: connecting again in %.2f s", delay)
            await asyncio.sleep(delay)
            delay = min(self.settings.backoff_max, delay * 2)

    async def _session(self) -> None:
        """One connection: connect, banner, login, then read until it ends."""
        s = self.settings
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), s.timeout)
        self._writer = writer
        reading = login = None
        try:
            try:
                banner = await asyncio.wait_for(reader.readline(), s.timeout)
            except ValueError:  # a "line" past the stream's limit (64 KiB)
                raise AmiProtocolError("no AMI banner line") from None
            if len(banner) > MAX_BANNER or not banner.endswith(b"\n"):
                raise AmiProtocolError("no AMI banner line")
            self.version = banner_version(banner)
            reading = asyncio.ensure_future(self._read(reader))
            login = asyncio.ensure_future(self._login())
            # The connection may end while logging in: whichever finishes first tells.
            await asyncio.wait({reading, login}, return_when=asyncio.FIRST_COMPLETED)
            if not login.done():
                reading.result()  # raises why the connection ended
            login.result()
            self._fresh = True
            await reading
        finally:
            for task in (reading, login):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._writer = None
            self._logged_in.clear()
            writer.close()

    async def _login(self) -> None:
        s = self.settings
        if s.auth == "md5":
            challenge, _ = await self._send("Challenge", {"AuthType": "MD5"}, listing=False)
            nonce = challenge.get("Challenge")
            if not challenge.ok or not nonce:
                raise AmiLoginError(f"AMI at {self._where()} gave no MD5 challenge")
            key = hashlib.md5((nonce + s.secret).encode()).hexdigest()  # AMI's scheme, not ours
            headers = {"AuthType": "MD5", "Username": s.username, "Key": key}
        else:
            headers = {"Username": s.username, "Secret": s.secret}
        reply, _ = await self._send("Login", {**headers, "Events": "on"}, listing=False)
        if not reply.ok:
            raise AmiLoginError(f"AMI at {self._where()} refused the login of user "
                                f"{s.username!r}: {reply.get('Message') or reply.name}")
        self.logins += 1
        self._logged_in.set()
        log.info("call -: AMI logged in to %s as %s (AMI %s)", self._where(), s.username,
                 self.version)  # fmt: skip

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise AmiNotConnected("Asterisk closed the connection")
            for text in framer.feed(data):
                self._dispatch(parse(text))

    def _dispatch(self, message: AmiMessage) -> None:
        pending = self._pending.get(message.action_id) if message.action_id else None
        if message.kind == "response":
            if pending is None:
                log.debug("call -: ami x response for no action (%s)", message.action_id)
                return
            pending.response = message
            if not pending.listing or not message.ok:
                self._settle(pending)
            return
        if message.kind == "event" and pending is not None and pending.listing:
            if message.get("EventList").lower() == "complete" or message.name.endswith("Complete"):
                self._settle(pending)
            else:
                pending.events.append(message)
            return
        if message.kind == "event" and self.on_event is not None:
            try:
                self.on_event(message)
            except Exception:  # one bad handler must not cut the connection
                log.exception("call -: AMI event %s: handler failed", message.name)

    @staticmethod
    def _settle(pending: _Pending) -> None:
        if not pending.future.done() and pending.response is not None:
            pending.future.set_result((pending.response, pending.events))

    def _drop(self, error: AmiError) -> None:
        self._logged_in.clear()
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(error)
        self._pending.clear()

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"
