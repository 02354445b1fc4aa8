"""Content checksums of store files: recorded in the manifest when written, checked by `bqx verify`,
`bqx run --verify` and the export.

The checksum is SHA-256 of the file's bytes (the bars' manifest digest already is one; on this
hardware SHA-256 outruns BLAKE2b, see docs/INTEGRITY.md). A task's outputs are recorded as
`[path, size, mtime_ns, sha256]`; outputs recorded before checksums existed have three fields and
are reported as unrecorded.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from bqx.errors import BqxError
from bqx.io import atomic_write, write_parquet_to


class StoreIntegrityError(BqxError):
    """A store file whose content is not what the manifest recorded (exit 1)."""

    exit_code = 1


def digest_bytes(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def write_parquet_hashed(frame: Any, path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """Write `frame` atomically as Parquet (bqx.io's pinned options); returns (size, mtime_ns, sha256).

    The file is encoded in memory, hashed and written, so the checksum costs no second read.
    """
    buf = io.BytesIO()
    write_parquet_to(frame, buf)
    data = buf.getbuffer()
    size, mtime = atomic_write(path, lambda fh: fh.write(data))
    return size, mtime, digest_bytes(data)


@dataclass(frozen=True)
class Recorded:
    """A store file the manifest knows: its path in the store, stamp, checksum and who wrote it."""

    rel: str
    size: int
    mtime_ns: int
    sha256: str | None  # None: written before checksums were recorded
    owner: tuple[str, str | None, str]  # (stage, pair, month); stage "bars" for a bars month


def recorded_files(man: Any, pairs: Iterable[str] | None = None) -> list[Recorded]:
    """Every file of the manifest's done tasks and bars months (of `pairs` when given)."""
    from bqx.store.layout import BARS, partition_path

    keep = set(pairs) if pairs is not None else None
    out = []
    for (pair, month), (dig, _rows, size, mtime) in sorted(man.bars().items()):
        if keep is None or pair in keep:
            rel = str(partition_path("", BARS, pair, month))
            out.append(Recorded(rel, size, mtime, dig, (BARS, pair, month)))
    for key, row in sorted(man.tasks().items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        if row.status != "done" or (keep is not None and key[1] is not None and key[1] not in keep):
            continue
        for entry in row.outputs:
            out.append(Recorded(entry[0], entry[1], entry[2], entry[3] if len(entry) > 3 else None, key))
    return out


def expected_hashes(man: Any) -> dict[str, str]:
    """Path in the store -> recorded SHA-256, for every file that has one."""
    return {r.rel: r.sha256 for r in recorded_files(man) if r.sha256}


@dataclass(frozen=True)
class Finding:
    """A recorded file that failed verification: `problem` is changed, missing, unreadable or unrecorded."""

    rel: str
    problem: str
    owner: tuple[str, str | None, str]
    stamp_kept: bool = False  # size and mtime still as recorded (bit rot, or an edit that restored the mtime)

    def line(self) -> str:
        what = {"changed": "content differs from the checksum recorded when it was written",
                "missing": "file is missing", "unreadable": "file cannot be read",
                "unrecorded": "no checksum recorded (written by an older bqx)"}[self.problem]
        kept = " (size and mtime unchanged)" if self.stamp_kept else ""
        return f"{self.rel}: {what}{kept}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_file(root: Path, rec: Recorded) -> Finding | None:
    path = root / rec.rel
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Finding(rec.rel, "missing", rec.owner)
    if rec.sha256 is None:
        return Finding(rec.rel, "unrecorded", rec.owner)
    try:
        got = file_sha256(path)
    except OSError:
        return Finding(rec.rel, "unreadable", rec.owner)
    if got != rec.sha256:
        return Finding(rec.rel, "changed", rec.owner, (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns))
    return None


def verify_files(root: str | os.PathLike[str], records: Iterable[Recorded], workers: int | None = None) -> list[Finding]:
    """Re-hash every recorded file (threads: hashing and reading release the GIL); the ones that fail, in order."""
    root = Path(root)
    records = list(records)
    n = max(1, workers or min(4, os.cpu_count() or 1))
    if n == 1 or len(records) < 2:
        found = [check_file(root, r) for r in records]
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bqx-verify") as pool:
            found = list(pool.map(lambda r: check_file(root, r), records))
    return [f for f in found if f is not None]


def read_checked(root: str | os.PathLike[str], rel: str, expected: Mapping[str, str]) -> bytes:
    """A store file's bytes, refused (StoreIntegrityError) when they differ from the recorded checksum."""
    data = (Path(root) / rel).read_bytes()
    want = expected.get(rel)
    if want is not None and digest_bytes(data) != want:
        raise StoreIntegrityError(
            f"store file {Path(root) / rel} changed since it was written: its SHA-256 differs from the one the "
            "manifest recorded, so it is not exported",
            hint="Run `bqx verify` to list every such file, then `bqx run --verify` to recompute them "
                 "(a bars file must be re-ingested or restored).")
    return data


def summarize(findings: list[Finding], limit: int = 5) -> str:
    """The first `limit` findings and how many more, on one line."""
    head = "; ".join(f.line() for f in findings[:limit])
    more = f"; and {len(findings) - limit} more" if len(findings) > limit else ""
    return head + more
