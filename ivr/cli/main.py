"""The ``ivr`` command: one sub-command per module in ``ivr.cli`` (``cmd_<name>.py``).

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args, config) -> int``. Commands run in-process in tests: :func:`main` takes argv and
returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

import ivr
import ivr.cli
from ivr.cli.status import ExitStatus
from ivr.config import ConfigError, load_config
from ivr.logs import FORMATS, setup_logging


def _commands() -> list[ModuleType]:
    mods = []
    for info in pkgutil.iter_modules(ivr.cli.__path__):
        if info.name.startswith("cmd_"):
            mods.append(importlib.import_module(f"ivr.cli.{info.name}"))
    return sorted(mods, key=lambda m: str(m.NAME))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivr", description=ivr.__doc__)
    parser.add_argument("--version", action="version", version=f"ivr {ivr.__version__}")
    parser.add_argument("-c", "--config", help="path to ivr.yaml (default: ./ivr.yaml)")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="log detail (debug: one line per call step)",
    )
    parser.add_argument("--log-file", help="write the log to this file instead of stderr")
    parser.add_argument("--log-format", choices=FORMATS,
                        help="text lines, or one JSON object per line with the call id "
                             "(default: ivr.yaml log.format, or text)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _commands():
        cmd = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(cmd)
        cmd.set_defaults(handler=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitStatus.USAGE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:  # one line each: ivr.yaml:LINE:COL: reason
            print(problem, file=sys.stderr)
        return ExitStatus.USAGE
    args.log_format = args.log_format or config.log.format
    try:
        setup_logging(args.log_level, args.log_file, fmt=args.log_format)
    except OSError as exc:
        print(f"ivr: --log-file {args.log_file}: {exc.strerror or exc}", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        return int(args.handler(args, config))
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:  # `ivr report | head`: the reader has all it wanted
        sys.stderr.close()
        return ExitStatus.OK
