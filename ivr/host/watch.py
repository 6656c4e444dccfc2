"""Polls a folder for changed files (flows): cheap, portable, and needs no inotify package."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path


def snapshot(folder: Path, pattern: str) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file matching ``pattern`` in ``folder``."""
    out = {}
    for path in folder.glob(pattern):
        with contextlib.suppress(OSError):  # removed between glob and stat
            stat = path.stat()
            out[path.name] = (stat.st_mtime_ns, stat.st_size)
    return out


class FolderWatch:
    """Calls ``on_change()`` on the loop when files matching ``pattern`` appear, change or go.

    A change is reported once the folder has looked the same for one more interval, so an
    editor's save in several writes gives one reload, not a half-written file.
    """

    def __init__(
        self, folder: Path, pattern: str, on_change: Callable[[], None], interval: float = 1.0
    ) -> None:
        self.folder = folder
        self.pattern = pattern
        self.on_change = on_change
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        seen = await asyncio.to_thread(snapshot, self.folder, self.pattern)
        pending: dict[str, tuple[int, int]] | None = None
        while True:
            await asyncio.sleep(self.interval)
            now = await asyncio.to_thread(snapshot, self.folder, self.pattern)
            if now == seen:
                pending = None
            elif now == pending:  # stable for one interval: report it
                seen, pending = now, None
                self.on_change()
            else:
                pending = now
