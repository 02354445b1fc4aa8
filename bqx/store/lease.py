"""The writer's lease on an object-storage store: the object `<store>/lease.json`, taken and kept with
S3 conditional writes.

A store on object storage has no flock. One driver (run, ingest, live append) at a time holds the
lease instead:
- taking it is a PUT with `If-None-Match: *` (it succeeds for exactly one of two drivers that race);
- a lease whose holder stopped renewing it for `lease_ttl()` seconds (`BQX_LEASE_TTL`) (a killed driver) is taken over
  with `If-Match: <its ETag>` (again exactly one wins);
- the holder renews it every `lease_ttl() / 4` seconds with `If-Match: <my ETag>`; a renewal that fails
  means another driver took it: the lease is *lost*, and the manifest refuses to upload (it is written
  with `If-Match` too, so a driver that lost its lease cannot overwrite the new holder's records).
- it is deleted when the holder ends.
Readers (status, validate, export, report) refuse while a live lease is held, as they refuse a local
writer's flock. The expiry compares the holder's clock with the reader's: keep clocks in sync (NTP).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from bqx.io import env_seconds
from bqx.errors import StoreLockedError
from bqx.store.backend import Backend, PreconditionFailed, S3Backend

LEASE = "lease.json"
def lease_ttl() -> float:
    """Seconds a lease lives unrenewed (`BQX_LEASE_TTL`, default 60)."""
    return env_seconds("BQX_LEASE_TTL", 60.0)


class Lease:
    """A held lease: renewed by a daemon thread until `release()`."""

    def __init__(self, backend: S3Backend, doc: dict[str, Any], etag: str):
        self.backend, self.doc, self.etag = backend, doc, etag
        self.lost: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew_loop, name="bqx-lease", daemon=True)
        self._thread.start()

    @property
    def holder(self) -> str:
        return str(self.doc["id"])

    def renew(self) -> None:
        with self._lock:
            if self.lost:
                return
            doc = dict(self.doc, expires=time.time() + lease_ttl(), renewed_at=_now())
            try:
                self.etag = self.backend.put_if(LEASE, _bytes(doc), etag=self.etag)
                self.doc = doc
            except PreconditionFailed:
                self.lost = "another driver took this store's lease (this one stopped renewing it for too long)"

    def _renew_loop(self) -> None:
        while not self._stop.wait(lease_ttl() / 4):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a transient error: the next beat tries again
                pass

    def check(self) -> None:
        """Raise when the lease was lost (another driver holds the store now)."""
        if self.lost:
            raise StoreLockedError(f"store {self.backend.url}: {self.lost}",
                                   hint="Stop this run; `bqx status` shows who holds the store now.")

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            if self.lost:
                return
            try:
                now = self.backend.stat(LEASE)
                if now is not None and now[1] == self.etag:
                    self.backend.delete(LEASE)
            except Exception:  # noqa: BLE001 - an unreleased lease expires after lease_ttl()
                pass


def read_lease(backend: Backend) -> tuple[dict[str, Any], str] | None:
    """The lease document and its ETag, or None when no lease object exists."""
    got = backend.read_with_etag(LEASE) if isinstance(backend, S3Backend) else None
    if got is None:
        return None
    data, etag = got
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {}
    return (doc if isinstance(doc, dict) else {}), etag


def live_holder(backend: Backend) -> dict[str, Any] | None:
    """The holder of a live (unexpired) lease, or None."""
    got = read_lease(backend)
    if got is None:
        return None
    doc, _ = got
    return doc if float(doc.get("expires", 0)) > time.time() else None


def acquire(backend: S3Backend, purpose: str) -> Lease:
    """Take the store's lease, or refuse at once naming the driver that holds it."""
    backend.check_bucket()
    doc = {"id": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(), "purpose": purpose,
           "command": " ".join(sys.argv)[:500], "started_at": _now(), "expires": time.time() + lease_ttl()}
    try:
        return Lease(backend, doc, backend.put_if(LEASE, _bytes(doc), etag=None))
    except PreconditionFailed:
        pass
    got = read_lease(backend)
    if got is not None:
        old, etag = got
        if float(old.get("expires", 0)) <= time.time():  # its holder stopped renewing: take it over
            try:
                return Lease(backend, doc, backend.put_if(LEASE, _bytes(doc), etag=etag))
            except PreconditionFailed:
                got = read_lease(backend)
    old = got[0] if got else {}
    raise StoreLockedError(
        f"store {backend.url} is being written by pid {old.get('pid', '?')} on {old.get('host', '?')} "
        f"(started at {old.get('started_at', '?')}, {old.get('purpose', 'write')}: {old.get('command', '?')})",
        hint=f"Wait for it to finish, or stop that process; a lease its holder stops renewing expires after "
             f"{lease_ttl():.0f} s.")


@contextmanager
def holding_lease(backend: S3Backend, purpose: str) -> Iterator[Lease]:
    lease = acquire(backend, purpose)
    _CURRENT[backend.url] = lease
    try:
        yield lease
    finally:
        _CURRENT.pop(backend.url, None)
        lease.release()


_CURRENT: dict[str, Lease] = {}


def current_lease(backend: Backend) -> Lease | None:
    """The lease this process holds on `backend`'s store, if any (the manifest fences its uploads with it)."""
    return _CURRENT.get(backend.url)


def refuse_if_written(backend: Backend, purpose: str) -> None:
    """A reader refuses while another process holds a live lease (this process's own lease is fine)."""
    if not isinstance(backend, S3Backend) or current_lease(backend) is not None:
        return
    holder = live_holder(backend)
    if holder:
        raise StoreLockedError(
            f"store {backend.url} is being changed by pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"(started at {holder.get('started_at', '?')}, {holder.get('purpose', 'write')}: "
            f"{holder.get('command', '?')}); a {purpose} now would read a store in the middle of a change",
            hint=f"Wait for it to finish (`bqx status` shows its progress), then run the {purpose} again.")


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True).encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
