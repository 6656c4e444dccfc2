"""``ivr agents list | login | logout | pause | resume AGENT``: the agents of the running server.

Talks to the machine's queue authority (``ivr serve``) on its control socket: ``--socket``, else
ivr.yaml's ``acd: control:`` where the config has it, else ``var/acd.sock`` beside ivr.yaml.
``list`` prints every agent (state, for how long, reason, calls answered, whether their phone is
registered) and every queue (callers waiting, the longest wait, agents able to take its calls);
the others change one agent's state and print where it is now. ``--json`` prints the authority's
answer as JSON instead.

Exit status: 0 done (also when the agent was already there); 1 the authority refused the change
(pause or resume a logged-out agent); 2 no server on the socket, an unknown agent (with the
closest id), bad arguments.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from ivr.acd import wire
from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.host.remote_queues import authority_socket

NAME = "agents"
HELP = "list the agents of the running server, or log one in or out, pause or resume them"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=wire.AGENT_ACTIONS, metavar="ACTION",
                        help="list | login | logout | pause | resume")  # fmt: skip
    parser.add_argument("agent", nargs="?", metavar="AGENT", help="the agent's id (not for list)")
    parser.add_argument("--reason", default="", help="why (pause, logout); shown by list")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--socket", metavar="PATH",
                        help="the queue authority's control socket (default: ivr.yaml acd.control, "
                             "or var/acd.sock beside ivr.yaml)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=5.0, help=argparse.SUPPRESS)


def _error(message: str, status: int) -> int:
    print(f"ivr agents: {message}", file=sys.stderr)
    return status


def run(args: argparse.Namespace, config: Config) -> int:
    path = Path(args.socket) if args.socket else authority_socket(config)
    if args.action == "list" and args.agent:
        return _error("list takes no agent", USAGE)
    if args.action != "list" and not args.agent:
        return _error(f"{args.action} needs an agent (ivr agents {args.action} AGENT)", USAGE)
    msg = (wire.message("status") if args.action == "list" else
           wire.message("agents", action=args.action, agent=args.agent, reason=args.reason))
    try:
        answer = wire.request(path, msg, timeout=args.timeout)
    except wire.NotListening:
        return _error(f"no queue authority is listening on {path} (is `ivr serve` running? "
                      "--socket names another)", USAGE)  # fmt: skip
    except PermissionError:
        return _error(f"{path}: permission denied (the server runs as another user)", USAGE)
    except (OSError, wire.WireError) as exc:  # TimeoutError is an OSError
        return _error(f"no answer from the queue authority on {path}: {exc or 'timed out'}",
                      USAGE)  # fmt: skip
    if answer.get("op") == "error":
        return _refused(answer, args.agent)
    if args.json:
        answer.pop("v", None)
        answer.pop("op", None)
        print(json.dumps(answer, indent=2, ensure_ascii=False))
        return OK
    if args.action == "list":
        print(format_status(answer.get("agents", []), answer.get("queues", [])))
    else:
        print(_changed(args.action, answer.get("agent", {}), bool(answer.get("changed"))))
    return OK


def _refused(answer: dict[str, Any], agent: str | None) -> int:
    error, code = str(answer.get("error", "")), answer.get("code")
    if code == "unknown_agent":
        known = [str(a) for a in answer.get("agents", [])]
        close = difflib.get_close_matches(agent or "", known, n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else \
            f" (agents: {', '.join(known)})" if known else " (no agents are configured)"
        return _error(f"{error}{hint}", USAGE)
    if code == "refused":
        return _error(error, FAILED)
    return _error(f"the queue authority answered: {error}", USAGE if code == "version" else FAILED)


def _changed(action: str, agent: dict[str, Any], changed: bool) -> str:
    state = str(agent.get("state", "?"))
    reason = f" ({agent['reason']})" if agent.get("reason") else ""
    pending = agent.get("pending")
    line = f"{agent.get('id', '?')}: {state}{reason}"
    if pending:
        line += f"; {pending} when the call ends"
    elif not changed:
        line += " (no change)"
    return line


def duration(seconds: float) -> str:
    """``42s``, ``2m05s``, ``1h03m``, ``2d04h``."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])  # fmt: skip


def format_status(agents: list[dict[str, Any]], queues: list[dict[str, Any]]) -> str:
    """The agents table, then the queues table."""
    rows = []
    for a in agents:
        state = str(a.get("state", "?"))
        if a.get("pending"):
            state += f" (then {a['pending']})"
        rows.append([str(a.get("id", "")), str(a.get("name", "")), state,
                     duration(float(a.get("in_state", 0.0))), str(a.get("reason", "")),
                     str(a.get("calls", 0)), "yes" if a.get("registered") else "no"])  # fmt: skip
    out = _table(["AGENT", "NAME", "STATE", "FOR", "REASON", "CALLS", "REGISTERED"], rows) \
        if rows else "no agents are configured"  # fmt: skip
    if queues:
        qrows = [[str(q.get("name", "")), str(q.get("waiting", 0)),
                  duration(float(q.get("longest_wait", 0.0))) if q.get("waiting") else "-",
                  str(q.get("able_agents", 0))] for q in queues]  # fmt: skip
        out += "\n\n" + _table(["QUEUE", "WAITING", "LONGEST WAIT", "ABLE AGENTS"], qrows)
    return out
