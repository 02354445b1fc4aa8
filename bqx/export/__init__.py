"""The export (stage 2.7): train/validation/test Parquet, a scaler fitted on training rows, metadata.

- `export(store, to, ...) -> ExportResult`: write an export to a local directory or s3:// prefix.
- `read_export_metadata(path_or_url) -> dict`: a finished export's metadata (raises
  IncompleteExportError when the completion marker is missing).
- `plan_splits`, `SplitPlan`, `Scaler`, `S3Options`: the parts, for callers that need them.
"""

from __future__ import annotations

from bqx.export.exporter import export, read_export_metadata
from bqx.export.outcome import ExportRefusedError, ExportResult, IncompleteExportError, validation_status
from bqx.export.scaler import Scaler, ScalerFit
from bqx.export.splits import SPLITS, SplitPlan, plan_splits
from bqx.export.writer import S3Options, open_destination

__all__ = [
    "export", "read_export_metadata", "ExportResult", "ExportRefusedError", "IncompleteExportError",
    "validation_status", "plan_splits", "SplitPlan", "SPLITS", "Scaler", "ScalerFit", "S3Options", "open_destination",
]
