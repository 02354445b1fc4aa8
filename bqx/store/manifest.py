"""The manifest: SQLite (WAL) at `<store>/manifest.sqlite` — format version, anchors, bars, tasks, runs.

On object storage (an s3:// store) SQLite cannot be shared, so the manifest is one object, `manifest.sqlite`,
the same file format. The driver holding the store's lease (bqx.store.lease) works on a local copy
and uploads it whole: after task records at most every `sync_seconds()` (`BQX_MANIFEST_SYNC_SECONDS`) (longer when the upload is slow:
ten times its last duration), and when it closes. Every upload is a conditional PUT (`If-Match` the
ETag it last wrote, `If-None-Match: *` for a new store), so a driver that lost its lease cannot overwrite
the records of the one that took it. A driver killed between two uploads loses at most the records of
that interval: their partitions are recomputed by the next run (writes are atomic, so nothing partial is
ever recorded). Readers download the object and open the copy read-only; the local copies live in a
temporary directory and are deleted on close: the store needs nothing of the driver's disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from bqx.io import env_seconds
from bqx.errors import BqxError, StoreLockedError
from bqx.store.backend import Backend, PreconditionFailed, backend_for, is_url

FORMAT_VERSION = 1
MANIFEST = "manifest.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS anchors (family TEXT NOT NULL, pair TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (family, pair));
CREATE TABLE IF NOT EXISTS bars (pair TEXT NOT NULL, month TEXT NOT NULL, digest TEXT NOT NULL,
    rows INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, PRIMARY KEY (pair, month));
CREATE TABLE IF NOT EXISTS tasks (stage TEXT NOT NULL, pair TEXT NOT NULL, month TEXT NOT NULL,
    status TEXT NOT NULL, rows INTEGER, seconds REAL, error TEXT, fingerprint TEXT, outputs TEXT,
    started_at REAL, finished_at REAL, run_id INTEGER, PRIMARY KEY (stage, pair, month));
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL,
    ended_at REAL, args TEXT, log_path TEXT, status TEXT, summary TEXT);
"""


class StoreFormatError(BqxError):
    """The store was written by an incompatible bqx (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class TaskRow:
    stage: str
    pair: str | None
    month: str
    status: str
    rows: int | None
    seconds: float | None
    error: str | None
    fingerprint: str | None
    outputs: tuple[tuple[Any, ...], ...]  # (path in store, size, mtime_ns[, checksum]) per output file
    run_id: int | None

    def intact(self, root: str | os.PathLike[str], stats: Mapping[str, tuple[int, Any]] | None = None) -> bool:
        """Every recorded output file still exists with its recorded size and stamp (mtime_ns locally, the ETag on
        object storage; contents: bqx.store.checksum). `stats`: a listing (Backend.stats) to look them up in."""
        backend = None if stats is not None else backend_for(root)
        for rel, size, stamp, *_ in self.outputs:
            now = stats.get(rel) if stats is not None else backend.stat(rel)  # type: ignore[union-attr]
            if now is None or tuple(now) != (size, stamp):
                return False
        return True


class Manifest:
    """Open (and create when `create`) a store's manifest. Readers pass `readonly=True`."""

    def __init__(self, root: str | os.PathLike[str], *, readonly: bool = False):
        self.remote: RemoteCopy | None = None
        if is_url(root):  # object storage: a local working copy of the one manifest object
            self.remote = RemoteCopy(backend_for(root), readonly)  # type: ignore[arg-type]
            self.root = self.remote.backend.url  # type: ignore[assignment]
            self.path = self.remote.path
        else:
            self.root = Path(root)
            self.path = self.root / MANIFEST
        if readonly:
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=30)
        else:
            if self.remote is None:
                self.root.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        self.conn.execute("PRAGMA busy_timeout=30000")
        self._check_version(readonly)

    def _check_version(self, readonly: bool) -> None:
        version = self.get_meta("format_version")
        if version is None:
            if not readonly:
                self.set_meta("format_version", str(FORMAT_VERSION))
            return
        if int(version) != FORMAT_VERSION:
            self.close()
            raise StoreFormatError(
                f"store {self.root} was written with store format {version}; this bqx reads format {FORMAT_VERSION}.",
                hint=f"Rebuild it: run with a new --store, or delete {self.root} and run again.",
            )

    def close(self) -> None:
        try:
            if self.remote is not None and not self.remote.readonly:
                self.remote.upload(self.conn)
        finally:
            self.conn.close()
            if self.remote is not None:
                self.remote.discard()

    def sync(self, *, force: bool = False) -> None:
        """Upload the manifest of an object-storage store (at most every few seconds unless `force`)."""
        if self.remote is not None and not self.remote.readonly:
            self.remote.upload(self.conn, force=force)

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- meta and anchors -----------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def anchors(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(f, p): json.loads(v) for f, p, v in self.conn.execute("SELECT family, pair, value FROM anchors")}

    def set_anchor(self, family: str, pair: str | None, value: Mapping[str, Any]) -> None:
        self.conn.execute("INSERT INTO anchors(family, pair, value) VALUES (?, ?, ?)",
                          (family, pair or "", json.dumps(dict(value), sort_keys=True, default=str)))

    # -- bars -------------------------------------------------------------------------------
    def bars(self) -> dict[tuple[str, str], tuple[str, int, int, int]]:
        """(pair, month) -> (digest, rows, size, mtime_ns)."""
        return {(p, m): (d, r, s, t) for p, m, d, r, s, t in
                self.conn.execute("SELECT pair, month, digest, rows, size, mtime_ns FROM bars")}

    def set_bars(self, pair: str, month: str, digest: str, rows: int, size: int, mtime_ns: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?)", (pair, month, digest, rows, size, mtime_ns))

    def drop_bars(self, keys: Iterable[tuple[str, str]]) -> None:
        self.conn.executemany("DELETE FROM bars WHERE pair=? AND month=?", list(keys))

    # -- tasks ----------------------------------------------------------------------------
    def tasks(self, stage: str | None = None) -> dict[tuple[str, str | None, str], TaskRow]:
        sql = "SELECT stage, pair, month, status, rows, seconds, error, fingerprint, outputs, run_id FROM tasks"
        args: tuple[Any, ...] = ()
        if stage is not None:
            sql += " WHERE stage=?"
            args = (stage,)
        out = {}
        for s, p, m, st, rows, sec, err, fp, outs, rid in self.conn.execute(sql, args):
            row = TaskRow(s, p or None, m, st, rows, sec, err, fp,
                          tuple(tuple(o) for o in json.loads(outs or "[]")), rid)
            out[(s, row.pair, m)] = row
        return out

    def mark_running(self, stage: str, pair: str | None, month: str, run_id: int) -> None:
        self.conn.execute(
            "INSERT INTO tasks(stage, pair, month, status, started_at, run_id) VALUES (?, ?, ?, 'running', ?, ?) "
            "ON CONFLICT(stage, pair, month) DO UPDATE SET status='running', started_at=excluded.started_at, "
            "run_id=excluded.run_id",
            (stage, pair or "", month, time.time(), run_id),
        )

    def restore(self, key: tuple[str, str | None, str], row: "TaskRow | None") -> None:
        """Put a task's row back as it was before `mark_running` (a chain member that did not run)."""
        stage, pair, month = key
        if row is None:
            self.conn.execute("DELETE FROM tasks WHERE stage=? AND pair=? AND month=?", (stage, pair or "", month))
        else:
            self.conn.execute("UPDATE tasks SET status=?, run_id=? WHERE stage=? AND pair=? AND month=?",
                              (row.status, row.run_id, stage, pair or "", month))

    def record(self, stage: str, pair: str | None, month: str, *, status: str, rows: int | None, seconds: float,
               error: str | None, fingerprint: str | None, outputs: list[tuple[Any, ...]], run_id: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO tasks(stage, pair, month, status, rows, seconds, error, fingerprint, outputs, "
            "started_at, finished_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (stage, pair or "", month, status, rows, seconds, error, fingerprint, json.dumps(outputs),
             time.time() - seconds, time.time(), run_id),
        )
        if self.remote is not None:
            self.remote.upload(self.conn, force=False)

    def interrupt_running(self, reason: str = "interrupted: the run that started it stopped") -> int:
        """Tasks left 'running' become 'interrupted' and stale (their fingerprint is cleared, so a rerun redoes them).

        Called by a run that is stopping on SIGINT/SIGTERM, and by the next run (holding the lock)
        for tasks a killed run left behind.
        """
        cur = self.conn.execute(
            "UPDATE tasks SET status='interrupted', error=?, fingerprint=NULL WHERE status='running'", (reason,))
        self.conn.execute("UPDATE runs SET status='interrupted', ended_at=? WHERE status='running'", (time.time(),))
        return cur.rowcount

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, args: Mapping[str, Any], log_path: str) -> int:
        cur = self.conn.execute("INSERT INTO runs(started_at, args, log_path, status) VALUES (?, ?, ?, 'running')",
                                (time.time(), json.dumps(dict(args), default=str, sort_keys=True), log_path))
        return int(cur.lastrowid)

    def end_run(self, run_id: int, status: str, summary: Mapping[str, Any]) -> None:
        self.conn.execute("UPDATE runs SET ended_at=?, status=?, summary=? WHERE id=?",
                          (time.time(), status, json.dumps(dict(summary), default=str), run_id))

    def runs(self) -> list[dict[str, Any]]:
        cols = ("id", "started_at", "ended_at", "args", "log_path", "status", "summary")
        return [dict(zip(cols, r)) for r in self.conn.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY id")]


def open_reader(root: str | os.PathLike[str]) -> Manifest | None:
    """A read-only manifest, or None when the store has none yet."""
    if not backend_for(root).exists(MANIFEST):
        return None
    return Manifest(root, readonly=True)


def params_from_meta(raw: str | None) -> dict[str, dict[str, Any]]:
    """Family parameters a run recorded (meta `params`: {family: params}), for families registered now."""
    from bqx.core.registry import REGISTRY

    data = json.loads(raw) if raw else {}
    out = {}
    for name, values in data.items():
        if name in REGISTRY and isinstance(values, dict):
            known = REGISTRY.get(name).params
            out[name] = {k: v for k, v in values.items() if k in known}
    return out


def stored_params(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The family parameters the store was computed with (empty when it has no manifest or none recorded)."""
    man = open_reader(root)
    if man is None:
        return {}
    with man:
        return params_from_meta(man.get_meta("params"))


def sync_seconds() -> float:
    """The shortest interval between manifest uploads (`BQX_MANIFEST_SYNC_SECONDS`, default 2)."""
    return env_seconds("BQX_MANIFEST_SYNC_SECONDS", 2.0)


class RemoteCopy:
    """The local working copy of an object-storage store's manifest object."""

    def __init__(self, backend: Backend, readonly: bool):
        import tempfile

        self.backend, self.readonly = backend, readonly
        self.dir = tempfile.mkdtemp(prefix="bqx-manifest-")
        self.path = Path(self.dir) / MANIFEST
        got = backend.read_with_etag(MANIFEST)  # type: ignore[attr-defined]
        self.etag: str | None = None
        if got is not None:
            self.path.write_bytes(got[0])
            self.etag = got[1]
        self.last = 0.0
        self.cost = 0.0
        self.uploads = 0

    def upload(self, conn: sqlite3.Connection, *, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self.last < max(sync_seconds(), 10 * self.cost):
            return
        from bqx.store.lease import current_lease

        lease = current_lease(self.backend)
        if lease is not None:
            lease.check()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        data = self.path.read_bytes()
        try:
            self.etag = self.backend.put_if(MANIFEST, data, etag=self.etag)  # type: ignore[attr-defined]
        except PreconditionFailed:
            raise StoreLockedError(
                f"store {self.backend.url}: its manifest was written by another driver since this one read it; "
                "this driver's records were not uploaded",
                hint="Two drivers must not write one store; `bqx status` shows its state, and a rerun redoes what is "
                     "missing.") from None
        self.last = time.monotonic()
        self.cost = self.last - now
        self.uploads += 1

    def discard(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)
