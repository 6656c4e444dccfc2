"""``ivr lint``: like ``ivr validate``, but warnings fail too (exit status 1).

Warnings are things that run but are probably wrong: unreachable nodes, a global command that a
menu choice hides, a templated transfer target that can only be checked during a call, a
sub-flow without a return node. Use ``ivr lint`` in CI, ``ivr validate`` before a reload.
"""

from __future__ import annotations

import argparse

from ivr.cli.cmd_validate import add_arguments, check_and_report
from ivr.config import Config

NAME = "lint"
HELP = "check flows like validate, and fail on warnings too"

__all__ = ["HELP", "NAME", "add_arguments", "run"]


def run(args: argparse.Namespace, config: Config) -> int:
    return check_and_report(args.paths, config, NAME, fail_on_warnings=True)
