"""Where the ``ivr.*`` log goes and how each line looks; set up once per process.

The CLI calls :func:`setup_logging` at start, and so does every worker process of
``ivr serve --workers N`` (with a tag naming the worker), which is why this module is not part
of the CLI.

Each record is written once, by the handler set here: the ``ivr`` logger does not propagate to
the root logger. Libraries may configure the root logger behind our back (pyttsx3's espeak
driver calls ``logging.debug()``, which runs ``logging.basicConfig()`` and gives the root
logger a stderr handler the first time a prompt is synthesized); propagating records would then
be printed a second time.

Two formats: ``text``, one readable line (``TIME [TAG ]LEVEL LOGGER: MESSAGE``), and ``json``,
one JSON object per line with ``time``, ``level``, ``logger``, ``message`` and ``call_id``
(plus ``worker`` and ``exc`` when there are). Log messages about a call start ``call <id>: ``
by convention; the JSON format moves that id to ``call_id`` (null for ``call -:``, which marks
a line about no call). A record logged with ``extra={"call_id": ...}`` gives its id directly.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
_CALL_PREFIX = re.compile(r"call (\S+): ")


def split_call_id(message: str) -> tuple[str | None, str]:
    """``"call abc@h: hung up"`` -> ``("abc@h", "hung up")``; ``call -:`` gives no id."""
    match = _CALL_PREFIX.match(message)
    if match is None:
        return None, message
    call_id = match.group(1)
    return (None if call_id == "-" else call_id), message[match.end():]


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def __init__(self, tag: str = "") -> None:
        super().__init__()
        self.tag = tag

    def format(self, record: logging.LogRecord) -> str:
        call_id, message = split_call_id(record.getMessage())
        given = getattr(record, "call_id", None)
        if given is not None:
            call_id = str(given)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
            "call_id": call_id,
        }
        if self.tag:
            out["worker"] = self.tag
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str, path: str | None, tag: str = "", fmt: str = "text") -> None:
    """Log ``ivr.*`` at ``level`` to ``path`` (stderr when None), each record once.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        path: a file to append to, or None for stderr.
        tag: marks the lines of one worker process (``w0``).
        fmt: ``text`` or ``json`` (see the module docstring).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r} (choose from {', '.join(FORMATS)})")
    handler: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
    )
    if fmt == "json":
        handler.setFormatter(JsonFormatter(tag))
    else:
        prefix = f"{tag} " if tag else ""
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s")
        )
    logger = logging.getLogger("ivr")
    for old in logger.handlers:
        old.close()
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
