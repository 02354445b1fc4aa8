"""Atomic file writes, the one pinned Parquet writer (zstd, no dictionary for floats, 100k-row groups), and the
one reader of the tuning knobs given in seconds in the environment (`env_seconds`; config.NOT_SETTINGS lists them)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 100_000
TEMP_SUFFIX = ".tmp"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in `directory` durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def file_mode() -> int:
    """The mode a new file gets from open() under this process's umask (0644 under the usual 022)."""
    try:  # Linux reports the umask without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status") as fh:
            mask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> tuple[int, int]:
    """Write through `write(fh)` into a temp file beside `path`, fsync, rename; returns (size, mtime_ns).

    A reader sees the old file or the new one, never a half-written one; a crash leaves at most a
    `.<name>.*.tmp` file, which `clean_temp_files` removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, file_mode())  # mkstemp creates 0600: give the file what open() would, as every other file gets
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file (ENOSPC names none)
        raise
    fsync_dir(path.parent)
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def atomic_write_text(path: str | os.PathLike[str], text: str) -> tuple[int, int]:
    return atomic_write(path, lambda fh: fh.write(text.encode()))


def write_parquet_to(frame: pl.DataFrame | pa.Table, sink: Any) -> None:
    """The single place where bqx's Parquet writer options are pinned."""
    table = frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    dict_cols = [f.name for f in table.schema if not (pa.types.is_floating(f.type) or pa.types.is_temporal(f.type))]
    pq.write_table(table, sink, compression="zstd", use_dictionary=dict_cols or False,
                   row_group_size=ROW_GROUP_ROWS, write_statistics=True)


def write_parquet(frame: pl.DataFrame | pa.Table, path: str | os.PathLike[str]) -> tuple[int, int]:
    """Write `frame` atomically as Parquet with the pinned settings; returns (size, mtime_ns)."""
    return atomic_write(path, lambda fh: write_parquet_to(frame, fh))


def clean_temp_files(root: str | os.PathLike[str]) -> int:
    """Remove temporary files left by a killed writer (call only while holding the store lock)."""
    n = 0
    for tmp in Path(root).rglob(f".*{TEMP_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            n += 1
    return n


def env_seconds(name: str, default: float) -> float:
    """A tuning knob of config.NOT_SETTINGS given in seconds (read when used): `default` when unset, a UsageError
    naming the variable when it is not a number of seconds >= 0."""
    from bqx.errors import UsageError

    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not a number of seconds",
                         hint=f"Set it to seconds, or unset it for {default:g} s.") from None
    if value < 0:
        raise UsageError(f"{name}={text!r} is negative", hint="Give seconds >= 0.")
    return value
