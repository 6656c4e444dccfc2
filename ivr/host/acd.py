"""The agent queue of one engine process (docs/ACD.md): where its queue authority is, the
agents' accounts for the registrar, and their registrations turned into where to ring them.

One authority per machine. A single ``ivr serve`` holds it (:meth:`HostAcd.here`) and serves its
control socket (``ivr agents``) itself; the workers of ``ivr serve --workers N`` reach the one
the supervisor holds (:func:`machine_authority`) over that socket (:meth:`HostAcd.remote`).

Where an agent is rung: the user of the Contact it registered, at the address its REGISTER came
from (the packet's real source). Never at an address a message merely names: a Contact behind NAT
holds a private address the server cannot reach, and a hostile one could name anybody's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from ivr.acd.agentline import LineRequest
from ivr.acd.authority import QueueAuthority
from ivr.acd.config import AcdConfig
from ivr.acd.model import AgentState
from ivr.acd.service import AcdService, ServiceThread
from ivr.core.clock import Clock
from ivr.engine.queueing import Queues
from ivr.host.queues import AuthorityQueues
from ivr.host.remote_queues import RemoteQueues
from ivr.sip.errors import SipParseError
from ivr.sip.registrar import Binding
from ivr.sip.uri import SipUri

log = logging.getLogger("ivr.acd")

StateSink = Callable[[str, AgentState, str, float], None]
Registered = Callable[[str, str | None, float], None]  # (agent, ring URI or None, expires s)


def ring_uri(binding: Binding) -> str | None:
    """The URI to ring a registered phone at: its Contact's user at the REGISTER's source."""
    try:
        contact = SipUri.parse(binding.contact)
    except SipParseError:
        return None
    host, port = binding.source
    return str(replace(contact, host=host, port=port, params={}, headers=()))


def machine_authority(config: AcdConfig, on_state: StateSink | None = None) -> ServiceThread:
    """The machine's queue authority on a thread of its own, serving workers and ``ivr agents``
    on the control socket (for the supervisor of ``ivr serve --workers N``; start() it)."""
    return ServiceThread(
        lambda clock: QueueAuthority(config.agents, config.queues, clock, on_state=on_state),
        config.control, config.agent_line)  # fmt: skip


class HostAcd:
    """What an engine process has of the agent queue: the sessions' queues, the registrar's
    accounts and what it reports (made by :meth:`here` or :meth:`remote`)."""

    def __init__(self, config: AcdConfig, clock: Clock, queues: Queues,
                 registered: Registered) -> None:  # fmt: skip
        self.config = config
        self.clock = clock
        self.queues = queues
        self._registered = registered
        self.authority: QueueAuthority | None = None  # when this process holds it
        self.service: AcdService | None = None
        self._agent_of = {account.username: agent for agent, account in config.accounts.items()}

    @classmethod
    async def here(cls, config: AcdConfig, clock: Clock,
                   on_state: StateSink | None = None) -> HostAcd:  # fmt: skip
        """The authority in this process, its control socket served (``ivr agents``).

        Raises:
            ServiceError, OSError: the control socket cannot be served (another server owns it).
        """
        authority = QueueAuthority(config.agents, config.queues, clock, on_state=on_state)
        queues = AuthorityQueues(authority, worker=0)
        service = AcdService(authority, config.control, config.agent_line)
        service.add_local(0, queues)
        await service.start()
        acd = cls(config, clock, queues, authority.registered)
        acd.authority, acd.service = authority, service
        return acd

    @classmethod
    async def remote(cls, config: AcdConfig, clock: Clock, worker: int) -> HostAcd:
        """The machine's authority, held by the supervisor, reached over its socket.

        Raises:
            ConnectionError, TimeoutError: it does not answer.
        """
        queues = await RemoteQueues.connect(config.control, worker)
        return cls(config, clock, queues, queues.registered)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if isinstance(self.queues, RemoteQueues):
            await self.queues.close()

    def ask_line(self, req: LineRequest,
                 done: Callable[[dict[str, Any]], None]) -> Callable[[], None]:  # fmt: skip
        """An agent line request to the authority (here or over the socket); ``done(answer)``
        on the loop. Returns what forgets the request."""
        if isinstance(self.queues, RemoteQueues):
            return self.queues.agent_line(req, done)
        assert self.service is not None
        answer = self.service.line.handle(req)
        handle = asyncio.get_running_loop().call_soon(done, answer)
        return handle.cancel

    def credentials(self, username: str) -> str | None:
        """The digest password of the agent who signs in as ``username`` (None: unknown)."""
        agent = self._agent_of.get(username)
        return self.config.accounts[agent].password if agent is not None else None

    def binding_changed(self, username: str, binding: Binding | None) -> None:
        """The registrar's news: an agent's phone is reachable (or no longer)."""
        agent = self._agent_of.get(username)
        if agent is None:
            return
        uri = ring_uri(binding) if binding is not None else None
        if binding is None or uri is None:
            self._registered(agent, None, 0.0)
            log.info("call -: agent %s is no longer registered", agent)
            return
        expires = max(0.0, binding.expires_at - self.clock.now())
        self._registered(agent, uri, expires)
        log.info("call -: agent %s registered (%s, %d s)", agent, uri, expires)
