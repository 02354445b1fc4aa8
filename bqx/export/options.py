"""`ExportOptions`: the arguments of `bqx.export`, built once and handed to the sink, the preamble and the writers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from bqx.export.scaler import GLOBAL, SCALED_KINDS
from bqx.export.writer import S3Options


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how (the meaning of each field: `bqx.export.exporter.export`)."""

    pairs: Sequence[str] | None = None
    families: Sequence[str] | None = None
    split: Sequence[float] = (0.8, 0.1, 0.1)
    train_end: str | datetime | None = None
    val_end: str | datetime | None = None
    purge: int | None = None
    embargo: int = 1440
    scaler: str = GLOBAL
    normalize: bool = False
    precision: str = "float32"
    scale_kinds: Sequence[str] = SCALED_KINDS
    scale_targets: bool = False
    no_validate: bool = False
    s3: S3Options | None = None
    progress: Callable[[str], None] | None = None
    workers: int | None = None
    drop_empty: bool = True
    cv: str | None = None
    targets: Sequence[str] | None = None
    overwrite: bool = False

    def say(self, message: str) -> None:
        """Report progress (a no-op without a `progress` callback)."""
        if self.progress is not None:
            self.progress(message)


__all__ = ["ExportOptions"]
