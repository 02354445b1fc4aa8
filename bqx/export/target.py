"""A safe export target: a lock while an export writes, no file deleted that an export did not write,
and a finished export replaced only with `--overwrite`.

What an export owns is decided by its own records, never by folder names: the previous export's
`metadata/files.json`, the claims file `metadata/claims.json` (every path an unfinished export
may have written, written before its first feature file), and the fixed metadata names. Any
other file in the target is foreign: the export refuses to write there rather than mix with or
delete it.

The lock: a local target holds `fcntl.flock` on `<target>/.bqx-export.lock` (the kernel releases
it however the export ends); an s3:// target holds the object `metadata/LOCK.json`, refreshed
every minute while the export runs and taken over when it is older than `S3_LOCK_TTL` seconds (an
export killed without cleaning up). Every write of that object is conditional (S3's If-None-Match /
If-Match, bqx.store.backend.S3Backend.put_if): it is created only if absent, refreshed only while it
still has the ETag this export last wrote, and taken over only with the ETag of the stale holder it
read. So of two exports started at the same moment exactly one gets the lock, and an export whose
lock was taken over learns it at its next refresh; the lock is checked again before the completion
marker is written, so a lock lost in between still keeps that export from finishing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Iterable

from bqx.errors import UsageError
from bqx.export.folds import CV_SCALERS, FOLDS_JSON
from bqx.export.layout import (CATALOG_JSON, CHECKS_JSON, COLUMNS_JSON, EXPORT_JSON, FILES_JSON, MARKER, SCALER_JSON,
                               VALIDATION_JSON)
from bqx.export.writer import Destination, LocalDestination
from bqx.store.backend import PreconditionFailed
from bqx.store.lock import holding

CLAIMS_JSON = "metadata/claims.json"
LOCAL_LOCK = ".bqx-export.lock"
S3_LOCK = "metadata/LOCK.json"
S3_LOCK_TTL = 600
EXTRA_FILES = "extra_files"  # export.json: the files besides features/ and FIXED an export wrote (per-split scalers)
FIXED = frozenset({MARKER, EXPORT_JSON, CATALOG_JSON, VALIDATION_JSON, FILES_JSON, CHECKS_JSON, SCALER_JSON,
                   CLAIMS_JSON, LOCAL_LOCK, S3_LOCK, COLUMNS_JSON, FOLDS_JSON})


class ExportTargetError(UsageError):
    """The target holds foreign files, a finished export (without --overwrite), or another export's lock (exit 2)."""

    exit_code = 2


def _json_list(dest: Destination, rel: str) -> list[Any]:
    if not dest.exists(rel):
        return []
    try:
        doc = json.loads(dest.read_bytes(rel))
    except ValueError:
        return []
    return doc if isinstance(doc, list) else list(doc.get("paths", [])) if isinstance(doc, dict) else []


def owned(dest: Destination) -> set[str]:
    """Every path a previous export (finished or not) recorded as its own."""
    files = {e["path"] for e in _json_list(dest, FILES_JSON) if isinstance(e, dict) and "path" in e}
    extra = _json_dict(dest, EXPORT_JSON).get(EXTRA_FILES, [])
    return (files | {p for p in _json_list(dest, CLAIMS_JSON) if isinstance(p, str)}
            | {p for p in extra if isinstance(p, str)} | FIXED)


def _json_dict(dest: Destination, rel: str) -> dict[str, Any]:
    if not dest.exists(rel):
        return {}
    try:
        doc = json.loads(dest.read_bytes(rel))
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def prepare(dest: Destination, claims: Iterable[str], *, overwrite: bool) -> set[str]:
    """Refuse a foreign or finished target, then record the claims; returns what this export may delete.

    The returned set is the previous export's files and claims: the only files the stale-file
    removal may touch.
    """
    existing = dest.list_files()
    mine = owned(dest)
    foreign = [f for f in existing if f not in mine]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ExportTargetError(
            f"destination {dest.url} holds {len(foreign)} file(s) no bqx export recorded writing: "
            f"{', '.join(foreign[:3])}{more}; bqx never deletes or mixes with files it did not write",
            hint="Export to an empty directory or prefix (or move those files away).")
    if MARKER in existing and not overwrite:
        raise ExportTargetError(
            f"destination {dest.url} holds a finished export",
            hint="Pass --overwrite to replace it (only the files that export recorded are removed), or export elsewhere.")
    previous = mine - FIXED
    if hasattr(dest, "clean_temp_files"):
        dest.clean_temp_files()
    dest.delete(MARKER)
    dest.write_bytes(CLAIMS_JSON, (json.dumps(sorted(previous | set(claims)), indent=0) + "\n").encode())
    return previous | set(claims)


def remove_stale(dest: Destination, deletable: set[str], keep: set[str]) -> int:
    """Delete the files of `deletable` this export did not write again, then the claims file."""
    stale = [f for f in dest.list_files() if f in deletable and f not in keep and f not in FIXED]
    for rel in stale:
        dest.delete(rel)
    dest.delete(CLAIMS_JSON)
    return len(stale)


@contextmanager
def target_lock(dest: Destination) -> Iterator[None]:
    """Hold the target's lock for the export; ExportTargetError at once when another export holds it."""
    if dest.is_local:
        with _local_lock(dest):  # type: ignore[arg-type]
            yield
    else:
        with _object_lock(dest):
            yield


@contextmanager
def _local_lock(dest: LocalDestination) -> Iterator[None]:
    dest.root.mkdir(parents=True, exist_ok=True)
    path = dest.root / LOCAL_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 4096, 0))
            raise ExportTargetError(
                f"destination {dest.url} is being written by another export (pid {holder.get('pid', '?')}, "
                f"started at {holder.get('started_at', '?')})",
                hint="Wait for it to finish, or export to another destination.") from None
        with holding(fd, _me()):
            yield
    finally:
        os.close(fd)


def _take_object_lock(dest: Any, me: dict[str, Any]) -> str:
    """Create the lock object if absent, or take over a stale one; its ETag, or ExportTargetError."""
    def body() -> bytes:
        return json.dumps(me | {"updated": time.time()}).encode()

    try:
        return dest.put_if(S3_LOCK, body(), etag=None)
    except PreconditionFailed:
        pass
    got = dest.read_with_etag(S3_LOCK)
    if got is None:  # released in between: one more try to create it
        try:
            return dest.put_if(S3_LOCK, body(), etag=None)
        except PreconditionFailed:
            got = dest.read_with_etag(S3_LOCK)
    other = _holder(got[0]) if got is not None else {}
    age = time.time() - float(other.get("updated", 0) or 0)
    if got is not None and age >= S3_LOCK_TTL:
        try:
            return dest.put_if(S3_LOCK, body(), etag=got[1])  # take over exactly the stale lock that was read
        except PreconditionFailed:
            got = dest.read_with_etag(S3_LOCK)
            other = _holder(got[0]) if got is not None else {}
            age = time.time() - float(other.get("updated", 0) or 0)
    raise ExportTargetError(
        f"destination {dest.url} is being written by another export (pid {other.get('pid', '?')} on "
        f"{other.get('host', '?')}, started at {other.get('started_at', '?')}, alive {age:.0f} s ago)",
        hint=f"Wait for it to finish, or export elsewhere; a lock not refreshed for {S3_LOCK_TTL} s is taken over.")


@contextmanager
def _object_lock(dest: Destination) -> Iterator[None]:
    me = _me()
    state = {"etag": _take_object_lock(dest, me)}
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(60):
            try:
                state["etag"] = dest.put_if(S3_LOCK, json.dumps(me | {"updated": time.time()}).encode(),  # type: ignore[attr-defined]
                                            etag=state["etag"])
            except PreconditionFailed:  # taken over: still_mine() now says so, and the export does not finish
                return
            except Exception:  # noqa: BLE001 - a missed refresh only shortens the lock's life
                pass

    thread = threading.Thread(target=beat, name="bqx-export-lock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        if still_mine(dest) and dest.exists(S3_LOCK):
            dest.delete(S3_LOCK)


def still_mine(dest: Destination) -> bool:
    """False when an S3 lock was taken over by another export (local locks cannot be)."""
    if dest.is_local or not dest.exists(S3_LOCK):
        return True
    return _holder(dest.read_bytes(S3_LOCK)).get("id") == _ID


_ID = uuid.uuid4().hex  # this process's exports


def _me() -> dict[str, Any]:
    from datetime import datetime, timezone

    return {"id": _ID, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _holder(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw.decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


class TargetGuard:
    """The export's hold on its target: `prepare` (after the store's gate) locks it and records the claims;
    leaving the `with` block releases the lock."""

    def __init__(self, overwrite: bool = False):
        self.overwrite = overwrite
        self._stack = ExitStack()

    def prepare(self, dest: Destination, claims: Iterable[str]) -> set[str]:
        self._stack.enter_context(target_lock(dest))
        return prepare(dest, claims, overwrite=self.overwrite)

    def __enter__(self) -> "TargetGuard":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()


def cv_claims(splits: int) -> list[str]:
    """The per-split scaler files of an export with `splits` cv splits (bqx.export.cv_export)."""
    return [f"{CV_SCALERS}/split_{s:03d}.json" for s in range(splits)]


def claims_of(pairs_months: Any, splits: Iterable[str]) -> list[str]:
    """Every feature file an export of these (pair -> months) may write."""
    return [f"features/{s}/pair={p}/year_month={m}/data.parquet" for s in splits for p, ms in pairs_months.items()
            for m in ms]
