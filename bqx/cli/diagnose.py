"""Ordinary failures that arrive as library exceptions, turned into one clear line (what, where, what to do).

What is left is a bug: the CLI reports it as an internal error.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from bqx.errors import BqxError, ResourceError, UsageError, friendly

_CORRUPT = ("out of specification", "magic bytes", "parquet file size is 0", "invalid parquet", "corrupt",
            "couldn't deserialize thrift", "unexpected end of stream", "invalid: parquet", "not a parquet file")


def ordinary(exc: BaseException) -> BqxError | None:
    """The clear error for an ordinary failure, or None for a bug."""
    return _unknown_family(exc) or friendly(_with_path(exc)) or _disk_full(exc) or _corrupt_parquet(exc)


_FULL = ("no space left on device", "os error 28", "database or disk is full", "disk quota exceeded")


def _with_path(exc: BaseException) -> BaseException:
    """An OSError naming no file, given the path its failing bqx frame was writing (when one can be found)."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        path = _path_in(exc.__traceback__)
        if path is not None:
            return OSError(exc.errno, exc.strerror, path)
    return exc


def _disk_full(exc: BaseException) -> BqxError | None:
    """A full disk reported by a library (polars, Arrow, SQLite) rather than as an OSError."""
    text = str(exc).lower()
    if not any(k in text for k in _FULL):
        return None
    import errno

    path = _path_in(exc.__traceback__) or (str(_store()) if _store() else None)
    return friendly(OSError(errno.ENOSPC, "No space left on device", path))


def _store():  # the store of the command that failed, if it loaded one
    from bqx.cli.common import STATE

    return getattr(STATE, "store", None)


def _unknown_family(exc: BaseException) -> BqxError | None:
    """A family named on the command line or in bqx.toml that no module registers: a usage error (exit 2)."""
    from bqx.core.registry import UnknownFamilyError

    if isinstance(exc, UnknownFamilyError):
        return UsageError(str(exc.args[0]), hint="`bqx features` lists the families; a plugin family needs its "
                                                  "module in `plugins = [...]` in bqx.toml.")
    return None


def _corrupt_parquet(exc: BaseException) -> BqxError | None:
    """A Parquet file that cannot be read (truncated, overwritten, bit-rotted), named by its path when it can be found."""
    text = str(exc).lower()
    if not any(k in text for k in _CORRUPT):  # what Arrow and polars say of a file that is not valid Parquet
        return None
    path = _parquet_path(exc.__traceback__) or _unreadable_in_store()
    what = f"{path} is" if path else "a Parquet file is"
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return ResourceError(f"{what} not readable Parquet (truncated or corrupt: {first})",
                         hint="Delete it and rerun `bqx run`: a feature file is computed again, a bars file must be "
                              "ingested again." + ("" if path else " `bqx verify` names store files that changed."))


def _path_in(tb: TracebackType | None) -> str | None:
    """The file path the innermost bqx frame of the traceback held (a local variable), if any."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__", "").startswith("bqx."):
            for value in frame.f_locals.values():
                if isinstance(value, (str, os.PathLike)) and str(value).endswith(_SUFFIXES) \
                        and Path(value).parent.is_dir():
                    found = str(value)
        tb = tb.tb_next
    return found


_SUFFIXES = (".parquet", ".csv", ".json", ".jsonl", ".sqlite", ".html", ".tmp")


def _parquet_path(tb: TracebackType | None) -> str | None:
    """The .parquet path the innermost bqx frame of the traceback was reading (its local variables), if any."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__", "").startswith("bqx."):
            for value in frame.f_locals.values():
                if isinstance(value, (str, os.PathLike)) and str(value).endswith(".parquet") and Path(value).is_file():
                    found = str(value)
        tb = tb.tb_next
    return found


def _unreadable_in_store() -> str | None:
    """The first store file whose Parquet footer does not read (the store of the command that failed)."""
    import pyarrow.parquet as pq

    from bqx.cli.common import STATE

    root = getattr(STATE, "store", None)
    if root is None or not Path(root).is_dir():
        return None
    for path in sorted(Path(root).rglob("*.parquet")):
        try:
            pq.read_metadata(path)
        except Exception:  # noqa: BLE001 - any failure to read the footer is what we look for
            return str(path)
    return None
