"""``ivr asterisk-queues [QUEUE] [--json]``: the queues Asterisk runs for us, read over AMI.

For every queue ivr.yaml marks ``asterisk:`` (or the one named): Asterisk's figures
(QueueSummary: agents logged in and available, callers, hold and talk time, the longest wait;
QueueParams: completed, abandoned), its members and its callers waiting (QueueStatus).
Our own queues are ``ivr agents list``'s; the records of calls sent to Asterisk's queues are in
``ivr report`` with ours (docs/ASTERISK.md).

Exit status: 0 done; 1 Asterisk could not be reached, refused our login or the queue;
2 no Asterisk queue in ivr.yaml, an unknown queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ivr.acd.asterisk import AsteriskManager
from ivr.ami.client import AmiClient, AmiError
from ivr.ami.state import QueueState, queue_state
from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.host.asterisk import ami_settings

NAME = "asterisk-queues"
HELP = "show the queues Asterisk runs for us (ivr.yaml acd.queues marked asterisk:), over AMI"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("queue", nargs="?", metavar="QUEUE", help="only this queue (our name)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for Asterisk (default 5)")  # fmt: skip


def _error(message: str, status: int) -> int:
    print(f"ivr asterisk-queues: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace, config: Config) -> int:
    acd = config.acd
    if acd is None or acd.asterisk is None or not acd.asterisk_queues:
        return _error("ivr.yaml marks no queue as Asterisk's (acd.queues.<q>.asterisk, with "
                      "acd.asterisk)", ExitStatus.USAGE)  # fmt: skip
    names = list(acd.asterisk_queues)
    if args.queue is not None and args.queue not in names:
        return _error(f"no Asterisk queue {args.queue!r} (there are: {', '.join(names)})",
                      ExitStatus.USAGE)  # fmt: skip
    wanted = {n: acd.asterisk_queues[n].queue for n in names if args.queue in (None, n)}
    try:
        states = asyncio.run(_read(acd.asterisk, wanted, args.timeout))
    except AmiError as exc:
        return _error(str(exc), ExitStatus.FAILED)
    if args.json:
        print(json.dumps({ours: s.as_dict() for ours, s in states.items()}, indent=2))
    else:
        print("\n\n".join(_text(ours, s) for ours, s in states.items()))
    return ExitStatus.OK


async def _read(manager: AsteriskManager, wanted: dict[str, str],
                timeout: float) -> dict[str, QueueState]:  # fmt: skip
    client = AmiClient(ami_settings(manager))
    client.start()
    try:
        await client.wait_connected(timeout)
        return {ours: await queue_state(client, theirs) for ours, theirs in wanted.items()}
    finally:
        await client.close()


def _text(ours: str, s: QueueState) -> str:
    lines = [f"queue {ours} (Asterisk's {s.queue}, {s.strategy or '?'}): {s.callers} waiting, "
             f"longest {s.longest_hold_time} s; agents {s.available} free of {s.logged_in}; "
             f"hold {s.hold_time} s, talk {s.talk_time} s; completed {s.completed}, "
             f"abandoned {s.abandoned}"]  # fmt: skip
    lines += [f"  agent {m.name:<16} {m.state:<12} {'paused' if m.paused else '':<6} "
              f"calls {m.calls_taken}  {m.interface}" for m in s.members]  # fmt: skip
    lines += [f"  caller #{w.position} {w.caller or '?':<16} waiting {w.wait} s  {w.channel}"
              for w in s.waiting]  # fmt: skip
    return "\n".join(lines)
