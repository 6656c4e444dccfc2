"""The transaction layer: tables that match requests and responses to transactions.

Requests match server transactions by the RFC 3261 branch (with the sent-by and method) or,
for RFC 2543 peers, by their identifying fields (§17.2.3); responses match client transactions
by branch and CSeq method (§17.1.3). Transactions remove themselves when they terminate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ivr.core.clock import Clock
from ivr.sip.client_tx import (
    ClientKey,
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
    client_key,
)
from ivr.sip.errors import SipParseError
from ivr.sip.message import Request, Response
from ivr.sip.timers import Timers
from ivr.sip.transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    Sender,
    ServerKey,
    ServerTransaction,
    TxContext,
    server_key,
)
from ivr.sip.transport import Address

log = logging.getLogger("ivr.sip.transaction")


class TransactionLayer:
    """Creates transactions and finds the one a message belongs to.

    Args:
        send: Sends a message to an address (the transport).
        clock: The timer source.
        timers: T1, T2, T4.
    """

    def __init__(self, send: Sender, clock: Clock, timers: Timers) -> None:
        self.timers = timers
        self._ctx = TxContext(send, clock, timers, self._forget)
        self._servers: dict[ServerKey, ServerTransaction] = {}
        self._clients: dict[ClientKey, ClientTransaction] = {}

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)

    # server side ----------------------------------------------------------------------------

    def match_request(self, request: Request) -> ServerTransaction | None:
        """The server transaction ``request`` belongs to (a retransmission, or an ACK)."""
        try:
            return self._servers.get(server_key(request))
        except SipParseError:
            return None

    def find_invite(self, cancel: Request) -> InviteServerTransaction | None:
        """The INVITE transaction a CANCEL targets (RFC 3261 §9.2), or None."""
        try:
            tx = self._servers.get(server_key(cancel, "INVITE"))
        except SipParseError:
            return None
        return tx if isinstance(tx, InviteServerTransaction) else None

    def create_server(
        self,
        request: Request,
        source: Address,
        on_no_ack: Callable[[], None] | None = None,
    ) -> ServerTransaction:
        """A new server transaction for ``request`` (INVITE: 100 Trying goes out at once).

        Raises:
            SipParseError: A field the matching key needs does not parse.
        """
        key = server_key(request)
        tx: ServerTransaction
        if request.method == "INVITE":
            tx = InviteServerTransaction(self._ctx, request, source, key, on_no_ack)
        else:
            tx = NonInviteServerTransaction(self._ctx, request, source, key)
        self._servers[key] = tx
        return tx

    # client side ----------------------------------------------------------------------------

    def create_client(self, request: Request, destination: Address) -> ClientTransaction:
        """Start a client transaction: the request goes out now, retransmitted as needed."""
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = InviteClientTransaction(self._ctx, request, destination)
        else:
            tx = NonInviteClientTransaction(self._ctx, request, destination)
        self._clients[tx.key] = tx
        tx.start()
        return tx

    def match_response(self, response: Response) -> ClientTransaction | None:
        """The client transaction ``response`` answers, or None (a stray or late response)."""
        try:
            return self._clients.get(client_key(response))
        except SipParseError:
            return None

    # ----------------------------------------------------------------------------------------

    def _forget(self, tx: object) -> None:
        if isinstance(tx, ServerTransaction):
            if self._servers.get(tx.key) is tx:
                del self._servers[tx.key]
        elif isinstance(tx, ClientTransaction) and self._clients.get(tx.key) is tx:
            del self._clients[tx.key]

    def close(self) -> None:
        """Terminate every transaction (pending client results get a 408)."""
        for server in list(self._servers.values()):
            server.terminate()
        for client in list(self._clients.values()):
            client.terminate()
