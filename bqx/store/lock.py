"""The store's lock: `<store>/.lock` held with fcntl.flock, exclusively by one writer (run, ingest) or
shared by any number of readers (validate, export).
A reader of a read-only store (a snapshot, a read-only mount, files of another user) takes the
shared lock through a read-only descriptor, or none when the store has no lock file at all.

A writer refuses to start while a reader holds the lock, and a reader while a writer does, each
naming the other process. The writer's pid, purpose and command are in the lock file; each
reader's in `<store>/.readers/<pid>.json` while it reads (stale files of dead readers are ignored).
A store on object storage (s3://) has a lease object instead (bqx.store.lease).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bqx.errors import StoreLockedError
from bqx.store.backend import backend_for, is_url

LOCK_NAME = ".lock"
READERS = ".readers"


@contextmanager
def store_lock(store: str | os.PathLike[str], purpose: str = "write") -> Iterator[Path]:
    """Hold the store's exclusive lock for the duration of the block; refuse at once if another process holds it.

    The lock file stays in place (unlinking it would race); the kernel releases the lock when the
    holder exits, however it exits.
    """
    if is_url(store):  # object storage: the lease (bqx.store.lease) in place of a flock
        from bqx.store.lease import holding_lease

        with holding_lease(backend_for(store), purpose):  # type: ignore[arg-type]
            yield Path(LOCK_NAME)
        return
    root = Path(store)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            readers = _live_readers(root)
            if readers:
                r = readers[0]
                more = f" and {len(readers) - 1} other reader(s)" if len(readers) > 1 else ""
                raise StoreLockedError(
                    f"store {root} is being read by pid {r.get('pid', '?')}{more} (started at {r.get('started_at', '?')}, "
                    f"{r.get('purpose', 'read')}: {r.get('command', '?')}); a {purpose} would change it under that reader",
                    hint=f"Wait for the {r.get('purpose', 'reader')} to finish, or stop that process, then run again.",
                ) from None
            raise StoreLockedError(
                f"store {root} is being written by pid {holder.get('pid', '?')} "
                f"(started at {holder.get('started_at', '?')}, {holder.get('purpose', 'write')}: "
                f"{holder.get('command', '?')})",
                hint="Wait for it to finish, or stop that process, then run again.",
            ) from None
        with holding(fd, _me(purpose)):
            yield path
    finally:
        os.close(fd)


@contextmanager
def holding(fd: int, info: dict) -> Iterator[None]:
    """With an exclusive flock on `fd` taken: record `info` (who holds it) in the file for the block, then clear
    it and release the lock."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def read_lock(store: str | os.PathLike[str], purpose: str = "read") -> Iterator[Path | None]:
    """Hold the store's lock shared (with other readers) for the block; refuse at once while a writer holds it.

    A store directory that does not exist is not locked (the reader reports it missing itself). On object
    storage a reader refuses while a driver holds a live lease (readers there leave no trace a writer sees).
    """
    if is_url(store):
        from bqx.store.lease import refuse_if_written

        refuse_if_written(backend_for(store), purpose)
        yield None
        return
    root = Path(store)
    if not root.is_dir():
        yield None
        return
    path = root / LOCK_NAME
    fd = _open_for_reading(path)
    if fd is None:  # a read-only store without a lock file (a snapshot, a read-only mount): nobody can be writing
        yield None
        return
    mine = root / READERS / f"{os.getpid()}-{id(path):x}.json"
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise StoreLockedError(
                f"store {root} is being changed by pid {holder.get('pid', '?')} "
                f"(started at {holder.get('started_at', '?')}, {holder.get('purpose', 'write')}: "
                f"{holder.get('command', '?')}); a {purpose} now would read a store in the middle of a change",
                hint=f"Wait for it to finish (`bqx status` shows its progress), then run the {purpose} again.",
            ) from None
        try:
            mine.parent.mkdir(exist_ok=True)
            mine.write_text(json.dumps(_me(purpose)))
            named = True
        except OSError:
            named = False  # a read-only store: readers stay anonymous
        try:
            yield path
        finally:
            if named:
                mine.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_for_reading(path: Path) -> int | None:
    """The lock file opened to take a shared lock; read-only when the store cannot be written (None: no lock file)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    try:
        return os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor too
    except FileNotFoundError:
        return None


def writer_active(store: str | os.PathLike[str]) -> bool:
    """Whether a writer (run, ingest) holds the store's lock now; works on a read-only store too."""
    if is_url(store):
        from bqx.store.lease import live_holder

        return live_holder(backend_for(store)) is not None
    try:
        fd = os.open(Path(store) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _me(purpose: str) -> dict[str, object]:
    return {"pid": os.getpid(), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "purpose": purpose, "command": " ".join(sys.argv)[:500]}


def _live_readers(root: Path) -> list[dict[str, object]]:
    out = []
    for f in sorted((root / READERS).glob("*.json")) if (root / READERS).is_dir() else []:
        try:
            info = json.loads(f.read_text())
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out.append(info)
    return out


def _read_holder(fd: int) -> dict[str, object]:
    try:
        data = os.pread(fd, 4096, 0)
        info = json.loads(data.decode() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}
