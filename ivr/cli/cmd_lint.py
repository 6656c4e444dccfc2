"""``ivr lint``: like ``ivr validate``, but warnings fail too (exit status 1).

Warnings are things that run but are probably wrong: unreachable nodes, a global command that a
menu choice hides, a templated transfer target that can only be checked during a call, a
sub-flow without a return node. Use ``ivr lint`` in CI, ``ivr validate`` before a reload.
"""

from __future__ import annotations

import argparse

from ivr.cli.cmd_validate import check_and_report
from ivr.config import Config

NAME = "lint"
HELP = "check flows like validate, and fail on warnings too"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="flow files or folders (default: flows_dir of ivr.yaml)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    return check_and_report(args.paths, config, NAME, fail_on_warnings=True)
