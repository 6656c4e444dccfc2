"""The console's web server, on a thread of its own with its own event loop.

Why a thread: ``ivr serve --workers N``'s supervisor is synchronous (it waits on its processes),
and a single ``ivr serve`` runs calls on its loop; the console, on its own loop, never delays a
media tick and is the same in both. It touches the server only through
:class:`~ivr.console.source.ConsoleSource` (metrics, the queue authority's socket, the store),
all of which may be read from another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from aiohttp import web

from ivr.console.app import make_app
from ivr.console.source import ConsoleSource
from ivr.consoleconf import ConsoleConfig

log = logging.getLogger("ivr.console")


class ConsoleError(RuntimeError):
    """The console refuses to start (an open address without users)."""


def check_safe(config: ConsoleConfig) -> None:
    """Refuse a console reachable from other machines without logins.

    Raises:
        ConsoleError: a non-loopback ``listen`` and no ``users``.
    """
    if not config.loopback and not config.users:
        raise ConsoleError(f"console.listen {config.host}:{config.port} is not a loopback "
                           "address and console.users names nobody: add users (ivr console "
                           "hash-password) or listen on 127.0.0.1")  # fmt: skip


class ConsoleThread:
    """The console served on ``config``'s address until :meth:`stop`."""

    def __init__(self, config: ConsoleConfig, source: ConsoleSource) -> None:
        self.config = config
        self.source = source
        self.address: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ivr-console", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Listen; return once it does.

        Raises:
            ConsoleError: the address is open and no users are configured.
            OSError: the address cannot be bound (in use).
        """
        check_safe(self.config)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the console did not start within {timeout} s")
        if self._error is not None:
            self._thread.join(timeout)
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("call -: the console stopped")

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(make_app(self.config, self.source), access_log=None,
                               shutdown_timeout=1.0)  # fmt: skip
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            server = site._server  # the bound port (0 in the config: any free one)
            sockets = getattr(server, "sockets", None) or []
            self.address = sockets[0].getsockname()[:2] if sockets else (
                self.config.host, self.config.port)
            log.info("call -: console on http://%s:%d/", *self.address)
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
