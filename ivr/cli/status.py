"""Exit codes of every ``ivr`` command."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1  # the command ran and found problems (invalid flow, failed script)
    USAGE = 2  # bad arguments or configuration
    INTERRUPTED = 130
