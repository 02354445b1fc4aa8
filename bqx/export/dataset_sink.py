"""The Parquet export's sink, for the "file" and "s3" schemes (bqx.connect.sinks).

A hive Parquet dataset (features/{split}/pair=/year_month=/data.parquet) with its scaler, metadata,
checks and completion marker, written one atomic file at a time to a local directory or an s3://
prefix through a Destination (bqx.export.writer); the write itself is bqx.export.exporter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bqx.connect.schemes import scheme_of

if TYPE_CHECKING:
    from bqx.export.options import ExportOptions
    from bqx.export.outcome import ExportResult
    from bqx.export.writer import Destination


class DatasetSink:
    """A local directory (`file`) or an s3:// prefix (`s3`) that receives a Parquet export."""

    def __init__(self, target: str | os.PathLike[str], options: "ExportOptions | None" = None):
        self.target = os.fspath(target)
        self.scheme = scheme_of(self.target)
        self.s3 = options.s3 if options is not None else None

    def describe(self) -> str:
        return self.target

    def check(self, options: "ExportOptions") -> None:
        """Every export option applies to a Parquet dataset."""

    def destination(self) -> "Destination":
        """The files under the target (LocalDestination or S3Destination)."""
        from bqx.export.writer import open_destination

        return open_destination(self.target, self.s3)

    def export(self, store: Path, options: "ExportOptions") -> "ExportResult":
        from bqx.export.exporter import write_dataset
        from bqx.export.target import TargetGuard

        with TargetGuard(options.overwrite) as guard:
            return write_dataset(store, self.target, options, guard)


__all__ = ["DatasetSink"]
