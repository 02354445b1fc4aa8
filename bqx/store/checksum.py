"""Content checksums of store files: recorded in the manifest when written, checked by `bqx verify`,
`bqx run --verify` and the export.

A task's outputs are recorded as `[path, size, mtime_ns, "crc32:xxxxxxxx"]` (CRC-32 of the file's
bytes: 3.4 GB per CPU-second here against 1.3 for SHA-256 and 0.7 for BLAKE2b, see
docs/INTEGRITY.md; it catches bit rot, truncation and edits, not a forger who also edits the
manifest). A bars month's checksum is the SHA-256 digest the manifest already keeps for the
fingerprints. Outputs recorded before checksums existed have three fields and are reported as
unrecorded.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from bqx.errors import BqxError
from bqx.store.backend import CRC
from bqx.store.layout import BARS, partition_path

if TYPE_CHECKING:
    from bqx.store.state import StoreState


class StoreIntegrityError(BqxError):
    """A store file whose content is not what the manifest recorded (exit 1)."""

    exit_code = 1


def digest_bytes(data: Any) -> str:
    """The checksum recorded for a store file written by a task."""
    return f"{CRC}{zlib.crc32(data):08x}"


def matches(data: Any, expected: str) -> bool:
    """`data` has the recorded checksum (CRC-32 for task outputs, SHA-256 hex for bars)."""
    if expected.startswith(CRC):
        return digest_bytes(data) == expected
    return hashlib.sha256(data).hexdigest() == expected


@dataclass(frozen=True)
class Recorded:
    """A store file the manifest knows: its path in the store, stamp, checksum and who wrote it."""

    rel: str
    size: int
    mtime_ns: int
    checksum: str | None  # the recorded checksum ("crc32:..." or a bars SHA-256); None: written by an older bqx
    owner: tuple[str, str | None, str]  # (stage, pair, month); stage "bars" for a bars month


def recorded_files(state: "StoreState", pairs: Iterable[str] | None = None) -> list[Recorded]:
    """Every file of the manifest's done tasks and bars months (of `pairs` when given), from the store's state."""
    keep = set(pairs) if pairs is not None else None
    out = []
    for (pair, month), (dig, _rows, size, mtime) in sorted(state.bars.items()):
        if keep is None or pair in keep:
            rel = str(partition_path("", BARS, pair, month))
            out.append(Recorded(rel, size, mtime, dig, (BARS, pair, month)))
    for key, row in sorted(state.tasks.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])):
        if row.status != "done" or (keep is not None and key[1] is not None and key[1] not in keep):
            continue
        for entry in row.outputs:
            out.append(Recorded(entry[0], entry[1], entry[2], entry[3] if len(entry) > 3 else None, key))
    return out


def expected_hashes(state: "StoreState") -> dict[str, str]:
    """Path in the store -> recorded checksum, for every file that has one."""
    return {r.rel: r.checksum for r in recorded_files(state) if r.checksum}


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


def file_checksum(path: Path, like: str) -> str:
    """The file's checksum in the form of `like` (a recorded CRC-32 or SHA-256), read in 4 MB chunks."""
    if not like.startswith(CRC):
        return file_sha256(path)
    crc = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return f"{CRC}{crc:08x}"


def check_file(root: Path, rec: Recorded) -> Finding | None:
    path = root / rec.rel
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Finding(rec.rel, "missing", rec.owner)
    if rec.checksum is None:
        return Finding(rec.rel, "unrecorded", rec.owner)
    try:
        got = file_checksum(path, rec.checksum)
    except OSError:
        return Finding(rec.rel, "unreadable", rec.owner)
    if got != rec.checksum:
        return Finding(rec.rel, "changed", rec.owner, (st.st_size, st.st_mtime_ns) == (rec.size, rec.mtime_ns))
    return None


def check_object(backend: Any, listing: Mapping[str, Any], rec: Recorded) -> Finding | None:
    """`check_file` for an object store: presence and stamp (size, ETag) from one listing, the content from one
    read of the object."""
    now = listing.get(rec.rel)
    if now is None:
        return Finding(rec.rel, "missing", rec.owner)
    if rec.checksum is None:
        return Finding(rec.rel, "unrecorded", rec.owner)
    try:
        if rec.checksum.startswith(CRC):
            got = backend.crc32(rec.rel)
        else:
            got = hashlib.sha256(backend.read_bytes(rec.rel)).hexdigest()
    except Exception:  # noqa: BLE001 - gone since the listing, or refused by the server: reported, not raised
        return Finding(rec.rel, "unreadable", rec.owner)
    if got != rec.checksum:
        return Finding(rec.rel, "changed", rec.owner, tuple(now) == (rec.size, rec.mtime_ns))
    return None


def verify_files(root: str | os.PathLike[str], records: Iterable[Recorded], workers: int | None = None) -> list[Finding]:
    """Re-hash every recorded file (threads: hashing and reading release the GIL); the ones that fail, in order.

    On object storage (an s3:// root) one listing gives what is there and every object is read once."""
    from bqx.store.backend import backend_for, is_url

    records = list(records)
    if is_url(root):
        backend = backend_for(root)
        listing = backend.stats()
        check: Any = lambda r: check_object(backend, listing, r)  # noqa: E731
    else:
        base = Path(root)
        check = lambda r: check_file(base, r)  # noqa: E731
    n = max(1, workers or min(4, os.cpu_count() or 1))
    if n == 1 or len(records) < 2:
        found = [check(r) for r in records]
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bqx-verify") as pool:
            found = list(pool.map(check, records))
    return [f for f in found if f is not None]


def _changed(root: str | os.PathLike[str], rel: str) -> StoreIntegrityError:
    return StoreIntegrityError(
        f"store file {_name(root, rel)} changed since it was written: its checksum differs from the one the "
        "manifest recorded, so it is not exported",
        hint="Run `bqx verify` to list every such file, then `bqx run --verify` to recompute them "
             "(a bars file must be re-ingested or restored).")


def _name(root: str | os.PathLike[str], rel: str) -> str:
    from bqx.store.backend import backend_for, is_url

    return str(Path(root) / rel) if not is_url(root) else backend_for(root).join(rel)


def checked_path(root: str | os.PathLike[str], rel: str, expected: Mapping[str, str]) -> Path:
    """The path of a store file whose content matches its recorded checksum (else StoreIntegrityError).

    The file is checksummed through a memory map: its pages come from the disk once, and the
    reader that opens the path next finds them in the page cache (cheaper than parsing a copy).
    """
    path = Path(root) / rel
    want = expected.get(rel)
    if want is None:
        return path
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            ok = matches(b"", want)
        else:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                ok = matches(mm, want)
    if not ok:
        raise _changed(root, rel)
    return path


def read_checked_frame(root: str | os.PathLike[str], rel: str, expected: Mapping[str, str],
                       columns: list[str] | None = None) -> Any:
    """A store file as a polars frame (the columns given, or all) once its content matched the recorded checksum.

    A local file is checked through a memory map and read by its path; a file on object storage is
    downloaded once, and the same bytes are checked and parsed."""
    import io

    import polars as pl

    from bqx.store.backend import backend_for, is_url

    if not is_url(root):
        return pl.read_parquet(checked_path(root, rel, expected), columns=columns)
    data = backend_for(root).read_bytes(rel)
    want = expected.get(rel)
    if want is not None and not matches(data, want):
        raise _changed(backend_for(root).url, rel)
    return pl.read_parquet(io.BytesIO(data), columns=columns)


def summarize(findings: list[Finding], limit: int = 5) -> str:
    """The first `limit` findings and how many more, on one line."""
    head = "; ".join(f.line() for f in findings[:limit])
    more = f"; and {len(findings) - limit} more" if len(findings) > limit else ""
    return head + more
