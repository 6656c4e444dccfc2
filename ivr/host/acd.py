"""The agent queue of one engine process (docs/ACD.md): the queue authority, the agents'
accounts for the registrar, and their registrations turned into where to ring them.

Where an agent is rung: the user part of the Contact they registered, at the address their
REGISTER came from (the packet's real source). Never at an address a message merely names: a
Contact behind NAT holds a private address the server cannot reach, and a hostile one could name
anybody's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ivr.acd.authority import QueueAuthority
from ivr.acd.config import AcdConfig
from ivr.acd.model import AgentState
from ivr.core.clock import Clock
from ivr.host.queues import AuthorityQueues
from ivr.sip.errors import SipParseError
from ivr.sip.registrar import Binding
from ivr.sip.uri import SipUri

log = logging.getLogger("ivr.acd")

StateSink = Callable[[str, AgentState, str, float], None]


def ring_uri(binding: Binding) -> str | None:
    """The URI to ring a registered phone at: its Contact's user at the REGISTER's source."""
    try:
        contact = SipUri.parse(binding.contact)
    except SipParseError:
        return None
    host, port = binding.source
    return str(replace(contact, host=host, port=port, params={}, headers=()))


class HostAcd:
    """The queue authority of this process, and what the registrar needs of it.

    Args:
        config: ivr.yaml ``acd:``.
        clock: The engine's clock (timers: ring timeouts, wrap-up, registrations).
        on_state: Told every agent state change (the agents' record).
    """

    def __init__(self, config: AcdConfig, clock: Clock, on_state: StateSink | None = None) -> None:
        self.config = config
        self.clock = clock
        self.authority = QueueAuthority(config.agents, config.queues, clock, on_state=on_state)
        self.queues = AuthorityQueues(self.authority)
        self._agent_of = {account.username: agent for agent, account in config.accounts.items()}

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
            self.authority.registered(agent, None)
            log.info("call -: agent %s is no longer registered", agent)
            return
        expires = max(0.0, binding.expires_at - self.clock.now())
        self.authority.registered(agent, uri, expires)
        log.info("call -: agent %s registered (%s, %d s)", agent, uri, expires)
