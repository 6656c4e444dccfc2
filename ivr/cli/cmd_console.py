"""``ivr console hash-password``: the scrypt hash of a console user's password, for ivr.yaml.

The password is read from the terminal (asked twice, not echoed) or, when stdin is not a
terminal, from its first line (``printf %s "$PW" | ivr console hash-password``); it is never a
command-line argument (those show in ``ps`` and shell history). The hash goes to stdout, to be
written as ``console: users: NAME: {role: ..., password_hash: ...}`` (docs/CONSOLE.md).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.consoleconf import hash_password

NAME = "console"
HELP = "web console helpers: hash-password (the hash of a console user's password, for ivr.yaml)"

MIN_LENGTH = 8
MAX_LENGTH = 1024  # a line longer than this from stdin is not a password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("hash-password",), metavar="ACTION",
                        help="hash-password: read a password (tty or stdin), print its hash")


def _read_password() -> str | None:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            print("ivr console: the two passwords differ", file=sys.stderr)
            return None
        return first
    line = sys.stdin.readline(MAX_LENGTH + 2)
    return line.rstrip("\r\n")


def run(args: argparse.Namespace, config: Config) -> int:
    password = _read_password()
    if password is None:
        return ExitStatus.FAILED
    if len(password) > MAX_LENGTH:
        print(f"ivr console: a password of at most {MAX_LENGTH} characters", file=sys.stderr)
        return ExitStatus.USAGE
    if len(password) < MIN_LENGTH:
        print(f"ivr console: a password of at least {MIN_LENGTH} characters", file=sys.stderr)
        return ExitStatus.USAGE
    print(hash_password(password))
    return ExitStatus.OK
