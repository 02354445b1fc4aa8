"""Bars from local files: the bar source of the "file" scheme (bqx.connect.sources).

`bqx ingest PATH` reads CSV or Parquet files of any supported format through the readers
(bqx.bars.readers), validated; `bqx.run(store, source=PATH)` writes a Parquet file or directory of
canonical bars with a `pair` column as they are (CSV must be ingested first).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import polars as pl

from bqx.connect.schemes import local_path
from bqx.connect.sources import IngestOptions
from bqx.errors import InputError, UsageError

if TYPE_CHECKING:
    from bqx.bars.ingest_report import IngestReport


class FileSource:
    """A bar file or a directory of bar files."""

    scheme = "file"

    def __init__(self, target: str | os.PathLike[str]):
        self.path = Path(local_path(target))

    def describe(self) -> str:
        return str(self.path)

    def ingest(self, store: Path, options: IngestOptions) -> "IngestReport":
        from bqx.bars.ingest import ingest_files

        return ingest_files(self.path, store, options)

    def write_into(self, store: Path, *, pairs: Sequence[str] | None, start: str | None, end: str | None) -> int:
        """Every bar of the Parquet file or directory (pairs and months are chosen later, by the plan)."""
        from bqx.engine.source import write_frame

        path = self.path
        if not path.exists():
            raise InputError(f"source {path} does not exist")
        if not (path.suffix == ".parquet" or (path.is_dir() and any(path.rglob("*.parquet")))):
            raise UsageError(f"source {path} is not a Parquet bar file or directory",
                             hint="Ingest CSV sources first (bqx ingest), then run without a source.")
        frame = pl.read_parquet(path if path.is_file() else str(path / "**" / "*.parquet"), hive_partitioning=True)
        return write_frame(store, frame, str(path))


__all__ = ["FileSource"]
