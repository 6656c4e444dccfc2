"""Asterisk's queues over the Asterisk Manager Interface (docs/ASTERISK.md).

``wire``: AMI messages framed, parsed and written; ``client``: the asyncio client (login,
replies matched by ActionID, reconnection); ``records``: Asterisk's queue events turned into our
call records; ``state``: a queue's state (QueueSummary, QueueStatus). Imports the shared ground
only: the host wires it to the engine and the store.
"""
