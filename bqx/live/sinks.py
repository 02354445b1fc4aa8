"""Where live features go: JSON lines on a stream, or one Parquet file per UTC day; and bars back into the store.

Both are streaming sinks (bqx.connect.sinks.StreamSink), opened by `bqx live --out` through the
registry there: "-" is JsonLines on stdout, a directory is ParquetDays.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import IO

import polars as pl

from bqx.connect.schemes import local_path
from bqx.io import atomic_write, write_parquet_to


class JsonLines:
    """One JSON object per feature row (NULL as null, times in ISO 8601), flushed per minute."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    @classmethod
    def open(cls, target: str, flush_minutes: int = 15) -> "JsonLines":
        """The "stdio" stream sink: standard output (every row is flushed as written)."""
        return cls(sys.stdout)

    def write(self, rows: pl.DataFrame) -> None:
        for row in rows.iter_rows(named=True):
            clean = {k: (v.isoformat() if hasattr(v, "isoformat") else (None if isinstance(v, float) and not math.isfinite(v) else v))
                     for k, v in row.items()}
            self.stream.write(json.dumps(clean) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class ParquetDays:
    """`<dir>/features-YYYY-MM-DD.parquet`, rewritten atomically with the day's rows every `every` minutes and at close."""

    def __init__(self, directory: Path, every: int = 15):
        self.dir, self.every = directory, max(1, every)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._day: str | None = None
        self._parts: list[pl.DataFrame] = []
        self._since = 0

    @classmethod
    def open(cls, target: str | os.PathLike[str], flush_minutes: int = 15) -> "ParquetDays":
        """The "file" stream sink: a directory, its day files rewritten every `flush_minutes`."""
        return cls(Path(local_path(target)), flush_minutes)

    def path(self, day: str) -> Path:
        return self.dir / f"features-{day}.parquet"

    def write(self, rows: pl.DataFrame) -> None:
        if rows.height == 0:
            return
        for (day,), part in self._by_day(rows):
            if self._day is not None and day != self._day:
                self._flush()
                self._parts = []
                if self.path(day).exists():
                    self._parts = [pl.read_parquet(self.path(day))]
            elif self._day is None and self.path(day).exists():
                self._parts = [pl.read_parquet(self.path(day))]
            self._day = day
            self._parts.append(part)
            self._since += part["ts"].n_unique()
        if self._since >= self.every:
            self._flush()

    @staticmethod
    def _by_day(rows: pl.DataFrame) -> list[tuple[tuple[str], pl.DataFrame]]:
        day = rows["ts"].dt.strftime("%Y-%m-%d")
        return [((d,), rows.filter(day == d)) for d in day.unique(maintain_order=True).to_list()]

    def _flush(self) -> None:
        if self._day is None or not self._parts:
            return
        frame = pl.concat(self._parts, how="vertical_relaxed")
        self._parts = [frame]
        atomic_write(self.path(self._day), lambda fh: write_parquet_to(frame, fh))
        self._since = 0

    def close(self) -> None:
        self._flush()


def append_to_store(root: Path | str, bars: pl.DataFrame) -> int:
    """Add live bars to the store's bars dataset (each touched pair-month rewritten whole); returns bars added.

    Takes the store's write lock; the next `bqx run` computes the changed months and whatever reads them.
    """
    from bqx.store.lock import store_lock
    from bqx.store.layout import BARS, partition_rel, read_pairs_json, read_partition, write_bars

    if bars.height == 0:
        return 0
    info = read_pairs_json(root)
    added = 0
    with store_lock(root, "live append"):
        months = bars.with_columns(pl.col("ts").dt.strftime("%Y-%m").alias("_m"))
        merged = []
        for (pair, month), part in months.partition_by(["pair", "_m"], as_dict=True).items():
            new = part.drop("_m")
            try:  # through the store's backend: a local directory or s3://
                old = read_partition(root, partition_rel(BARS, pair, month))
            except FileNotFoundError:
                old = None
            if old is not None:
                new = new.filter(pl.col("ts") > old["ts"].max())
                added += new.height
                new = pl.concat([old.select(pl.lit(pair).alias("pair"), pl.all()), new.select(["pair", *old.columns])])
            else:
                added += new.height
            merged.append((pair, new))
        for pair, frame in merged:
            entry = info.get(pair, {})
            write_bars(root, frame, source=str(entry.get("source", "live")), basis={pair: entry.get("basis", "mid")})
    return added
