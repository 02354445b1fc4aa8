"""The store's layout: partition paths, the one Parquet writer (atomic), the bars dataset.

Every function takes the store's root as given (a local path or an s3:// URL) and reaches the files
through its backend (bqx.store.backend): `partition_rel`/`table_rel` name a file relative to the root;
`partition_path`/`table_path` give the full name (a Path for a local store, the URL string otherwise).

Layout: `<store>/<stage>/pair=<P>/year_month=<M>/data.parquet` (ts + the stage's columns),
`<store>/tables/<name>/year_month=<M>/data.parquet`, `<store>/bars/...` with `pairs.json`,
`<store>/manifest.sqlite`, `<store>/logs/`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from bqx.bar_schema import BAR_COLUMNS, conform, split_pairs
from bqx.io import clean_temp_files as _clean_local, write_parquet_to
from bqx.store.backend import LocalBackend, backend_for, is_url

BARS = "bars"
TABLES = "tables"
DATA_FILE = "data.parquet"
PAIRS_FILE = "pairs.json"  # at the store root, so the bars directory holds only Parquet
RESERVED = frozenset({BARS, TABLES, "logs"})


def partition_rel(stage: str, pair: str, month: str) -> str:
    return f"{stage}/pair={pair}/year_month={month}/{DATA_FILE}"


def table_rel(name: str, month: str) -> str:
    return f"{TABLES}/{name}/year_month={month}/{DATA_FILE}"


def _full(root: str | os.PathLike[str], rel: str) -> Any:
    return Path(root) / rel if not is_url(root) else backend_for(root).join(rel)


def partition_path(root: str | os.PathLike[str], stage: str, pair: str, month: str) -> Path:
    """The partition's full name: a Path in a local store, an s3:// URL (str) in an object-storage store."""
    return _full(root, partition_rel(stage, pair, month))


def table_path(root: str | os.PathLike[str], name: str, month: str) -> Path:
    return _full(root, table_rel(name, month))


def store_root(root: str | os.PathLike[str]) -> Path | str:
    """A store's root as readers keep it: a Path for a local store (as given), the URL string on object storage."""
    return Path(root) if not is_url(root) else backend_for(root).url


def has_bars(root: str | os.PathLike[str]) -> bool:
    """Whether the store has a bars dataset (a bars/ directory; on object storage: any object under bars/)."""
    if not is_url(root):
        return (Path(root) / BARS).is_dir()
    return bool(backend_for(root).stats(BARS))


def write_partition(root: str | os.PathLike[str], rel: str, frame: pl.DataFrame | Any) -> tuple[int, Any, str]:
    """Write a store file atomically with the pinned Parquet options; (size, stamp, checksum) for the manifest."""
    return backend_for(root).write_parquet(rel, frame)


def read_partition(root: str | os.PathLike[str], rel: str, columns: list[str] | None = None,
                   rows: tuple[int, int] | None = None) -> pl.DataFrame:
    """A store file (the columns given, or all; rows [first, stop) when `rows`)."""
    b = backend_for(root)
    return b.read_parquet(rel, columns) if rows is None else b.read_rows(rel, rows[0], rows[1], columns)


def digest(root: str | os.PathLike[str], rel: str) -> str:
    """SHA-256 of a store file's bytes (the bars months' identity in the manifest)."""
    b = backend_for(root)
    if b.is_local:
        return file_digest(b.local_path(rel))
    return hashlib.sha256(b.read_bytes(rel)).hexdigest()


def write_parquet(frame: pl.DataFrame | Any, path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """Write a local store file atomically with the pinned Parquet options; returns (size, mtime_ns, checksum).

    The checksum (CRC-32, bqx.store.checksum) is taken from the bytes on their way to the file, so it
    costs no second read; the manifest records it with the task's outputs.
    """
    path = Path(path)
    return LocalBackend(path.parent).write_parquet(path.name, frame)


def file_digest(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- the bars dataset -------------------------------------------------------------------------

def bars_stats(root: str | os.PathLike[str]) -> dict[tuple[str, str], tuple[str, int, Any]]:
    """(pair, month) -> (rel, size, stamp) of every bars partition in the store, from one listing."""
    out: dict[tuple[str, str], tuple[str, int, Any]] = {}
    for rel, (size, stamp) in backend_for(root).stats(BARS).items():
        parts = rel.split("/")
        if (len(parts) == 4 and parts[3] == DATA_FILE and parts[1].startswith("pair=")
                and parts[2].startswith("year_month=")):
            out[(parts[1][5:], parts[2][11:])] = (rel, size, stamp)
    return dict(sorted(out.items()))


def bars_partitions(root: str | os.PathLike[str]) -> dict[tuple[str, str], Path]:
    """(pair, month) -> file of every bars partition in the store (a Path locally, the URL otherwise)."""
    if is_url(root):
        return {k: _full(root, v[0]) for k, v in bars_stats(root).items()}
    base = Path(root) / BARS
    out: dict[tuple[str, str], Path] = {}
    if not base.is_dir():
        return out
    for pdir in base.glob("pair=*"):
        for mdir in pdir.glob("year_month=*"):
            f = mdir / DATA_FILE
            if f.is_file():
                out[(pdir.name[5:], mdir.name[11:])] = f
    return dict(sorted(out.items()))


def read_pairs_json(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The store's per-pair source catalog: basis, has_volume, has_bidask, source (empty when none)."""
    b = backend_for(root)
    try:
        return json.loads(b.read_bytes(PAIRS_FILE))
    except (FileNotFoundError, NotADirectoryError):
        return {}


def write_pairs_json(root: str | os.PathLike[str], info: Mapping[str, Mapping[str, Any]]) -> None:
    text = json.dumps({k: dict(v) for k, v in sorted(info.items())}, indent=1, sort_keys=True)
    backend_for(root).write_text(PAIRS_FILE, text)


def write_bars(
    root: str | os.PathLike[str],
    bars: pl.DataFrame,
    *,
    source: str,
    basis: str | Mapping[str, str] = "mid",
    only_missing: bool = False,
) -> list[tuple[str, str]]:
    """Write a bar frame with a `pair` column into the store's bars dataset, one file per pair-month.

    A partition whose bytes would not change is left as it is (its mtime too). Updates
    `pairs.json` (basis, has_volume, has_bidask, source). Returns the partitions written.
    Call it while holding the store lock.
    """
    existing = bars_stats(root)
    info = read_pairs_json(root)
    written: list[tuple[str, str]] = []
    for pair, frame in split_pairs(bars).items():
        frame = conform(frame).sort("ts")
        months = frame.select(pl.col("ts").dt.strftime("%Y-%m").alias("m"))["m"]
        frame = frame.with_columns(months.alias("_month"))
        for (month,), part in frame.partition_by("_month", as_dict=True, maintain_order=True).items():
            key = (pair, str(month))
            if only_missing and key in existing:
                continue
            rel = partition_rel(BARS, pair, str(month))
            data = part.drop("_month").select(BAR_COLUMNS)
            if key in existing and _same_bytes(data, root, rel):
                continue
            write_partition(root, rel, data)
            written.append(key)
        has_volume = bool(frame.height and (frame["volume"].fill_null(0.0) != 0.0).any())
        has_bidask = bool(frame.height and frame["bid_close"].is_not_null().any() and frame["ask_close"].is_not_null().any())
        old = info.get(pair, {})
        info[pair] = {
            "basis": basis.get(pair, "mid") if isinstance(basis, Mapping) else basis,
            "has_volume": has_volume or bool(old.get("has_volume", False) and only_missing),
            "has_bidask": has_bidask or bool(old.get("has_bidask", False) and only_missing),
            "source": source,
        }
    write_pairs_json(root, info)
    return written


def _same_bytes(frame: pl.DataFrame, root: str | os.PathLike[str], rel: str) -> bool:
    buf = io.BytesIO()
    write_parquet_to(frame, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest() == digest(root, rel)


def read_bars(root: str | os.PathLike[str], pair: str, months: list[str]) -> pl.DataFrame:
    frames = [read_partition(root, partition_rel(BARS, pair, m)) for m in months]
    return pl.concat(frames).sort("ts") if frames else pl.DataFrame()


def clean_temp_files(root: str | os.PathLike[str]) -> int:
    """Remove temporary files left by a killed writer (a local store; an object store has none: one PUT each)."""
    return 0 if is_url(root) else _clean_local(root)


__all__ = [
    "BARS", "TABLES", "partition_rel", "store_root", "has_bars", "table_rel", "write_partition", "read_partition", "bars_stats", "digest",
    "partition_path", "table_path", "write_parquet", "write_bars", "bars_partitions",
    "read_pairs_json", "file_digest", "clean_temp_files",
]
