"""Logging for every process of ivr: the command's own and the workers of ``ivr serve``."""

from __future__ import annotations

import logging


def setup_logging(level: str, path: str | None, tag: str = "") -> None:
    """Log ``ivr.*`` at ``level`` to ``path`` (stderr when None); ``tag`` marks a worker."""
    handler: logging.Handler = (
        logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
    )
    prefix = f"{tag} " if tag else ""
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("ivr")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
