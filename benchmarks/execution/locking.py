"""One writer per output folder: a lock held for the whole run (``filelock``, an OS lock
released when the process dies), with a note of who holds it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = ".lock"
HOLDER_FILE = ".lock.holder.json"


class FolderLocked(RuntimeError):
    """Another run holds the folder's lock; the message names it."""


@contextlib.contextmanager
def folder_lock(folder: Path, command: str = "") -> Iterator[None]:
    """Hold ``folder``'s lock for the block, or raise :class:`FolderLocked` at once."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FolderLocked(
            f"{folder} is in use by {_holder(folder)}; wait or use another --out"
        ) from None
    holder = folder / HOLDER_FILE
    holder.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": command,
            }
        ),
        encoding="utf-8",
    )
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            holder.unlink()
        lock.release()


def _holder(folder: Path) -> str:
    try:
        h = json.loads((folder / HOLDER_FILE).read_text(encoding="utf-8"))
        return f"pid {h['pid']} on {h['host']} since {h['since']} ({h.get('command') or 'run'})"
    except (OSError, ValueError, KeyError):
        return "another process"
