"""The export (stage 2.7): train/validation/test Parquet, a scaler fitted on training rows, metadata.

- `export(store, to, ...) -> ExportResult`: write an export to a local directory or s3:// prefix.
- `read_export_metadata(path_or_url) -> dict`: a finished export's metadata (raises
  IncompleteExportError when the completion marker is missing).
- `folds(path) -> Folds`: an export written with `--cv`: the pool frame sorted by (pair, ts) and per
  split the train and test row indices (scikit-learn `cv=`) and polars expressions.
- `check_export(path_or_url)`: the export checks (`bqx validate --export`), folds included.
- `plan_splits`, `SplitPlan`, `Scaler`, `S3Options`: the parts, for callers that need them.
"""

from __future__ import annotations

from bqx.export.checks import check_export
from bqx.export.exporter import export, read_export_metadata
from bqx.export.folds_reader import Folds, folds  # noqa: F811 - the function `folds` shadows the module's name
from bqx.export.outcome import ExportRefusedError, ExportResult, IncompleteExportError, validation_status
from bqx.export.scaler import Scaler, ScalerFit
from bqx.export.splits import SPLITS, SplitPlan, plan_splits
from bqx.export.options import ExportOptions
from bqx.export.writer import S3Options, open_destination

__all__ = [
    "export", "read_export_metadata", "folds", "Folds", "check_export", "ExportResult", "ExportRefusedError", "IncompleteExportError",
    "validation_status", "plan_splits", "SplitPlan", "SPLITS", "Scaler", "ScalerFit", "S3Options", "open_destination", "ExportOptions",
]
