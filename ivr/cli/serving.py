"""How the serving commands (``ivr serve``, ``ivr serve-pyvoip``) end on an error.

A server runs until a signal stops it; what can stop it earlier is mapped to an exit status in
one place so both commands answer alike: flows that do not load are the operator's to fix
(``FAILED``, with every diagnostic), so is a failure the command names (a refused registration);
an ``OSError`` (a port in use, an unreadable folder) is a setup problem (``USAGE``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from ivr.cli.status import ExitStatus
from ivr.flow.errors import FlowError


def run_server(command: str, serve: Callable[[], int | None],
               failures: Mapping[type[Exception], str] | None = None) -> int:  # fmt: skip
    """Run ``serve`` and turn the errors that stop it into an exit status and a message.

    Args:
        command: the command's name, for messages (``serve`` -> ``ivr serve: ...``).
        serve: runs the server to its end; returns an exit status, or None for OK.
        failures: more errors that mean FAILED, each with the words that introduce it
            (``{RegistrationFailed: "registration failed"}``).

    Returns:
        ``serve``'s status; FAILED for refused flows and ``failures``; USAGE for an OSError.
    """
    failures = failures or {}
    try:
        status = serve()
    except FlowError as exc:
        print(f"ivr {command}: flows refused:\n{exc}", file=sys.stderr)
        return ExitStatus.FAILED
    except tuple(failures) as exc:
        words = next(w for kind, w in failures.items() if isinstance(exc, kind))
        print(f"ivr {command}: {words}: {exc}", file=sys.stderr)
        return ExitStatus.FAILED
    except OSError as exc:
        print(f"ivr {command}: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    return ExitStatus.OK if status is None else status
