"""The store's exclusive write lock: `<store>/.lock`, held with fcntl.flock by one writer at a time."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bqx.errors import StoreLockedError

LOCK_NAME = ".lock"


@contextmanager
def store_lock(store: str | os.PathLike[str], purpose: str = "write") -> Iterator[Path]:
    """Hold the store's exclusive lock for the duration of the block; refuse at once if another process holds it.

    The lock file stays in place (unlinking it would race); the kernel releases the lock when the
    holder exits, however it exits.
    """
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise StoreLockedError(
                f"store {root} is being written by pid {holder.get('pid', '?')} "
                f"(started at {holder.get('started_at', '?')}, {holder.get('purpose', 'write')}: "
                f"{holder.get('command', '?')})",
                hint="Wait for it to finish, or stop that process, then run again.",
            ) from None
        info = {
            "pid": os.getpid(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "purpose": purpose,
            "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}
