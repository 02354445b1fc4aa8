"""What an ingest read, wrote and rejected (shared by the file and the database ingest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestReport:
    """What an ingest read, wrote and rejected.

    rows_in = rows_out + rows_merged + rows_quarantined + rows_skipped (rows_merged: ask rows joined to
    their bid rows; rows_skipped: rows of pairs not asked for). Whole files that could not be read are
    listed in rejected_files and quarantined as one record each (scope "file").
    """

    source: str
    store: str
    policy: str
    rows_in: int = 0
    rows_out: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    rows_merged: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    fixes: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, dict[str, Any]] = field(default_factory=dict)
    partitions: int = 0
    quarantine_path: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alignment: dict[str, Any] = field(default_factory=dict)  # bqx.bars.alignment.AlignmentResult.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A short human summary."""
        out = [f"ingested {self.rows_out} bars of {len(self.pairs)} pair(s) into {self.store} "
               f"({self.partitions} partitions) from {self.rows_in} rows read"]
        if self.rows_quarantined or self.rejected_files:
            counts = ", ".join(f"{n} {r}" for r, n in self.quarantined_by_rule.items())
            out.append(f"quarantined {self.rows_quarantined} rows and {len(self.rejected_files)} files ({counts}) "
                       f"-> {self.quarantine_path}")
        for rule, n in self.fixes.items():
            out.append(f"fixed {n} rows: {rule} (sorted)")
        if self.rows_skipped:
            out.append(f"skipped {self.rows_skipped} rows of pairs not asked for")
        if self.skipped_files:
            out.append(f"did not read {len(self.skipped_files)} file(s) of pairs not asked for")
        return out + self.notes
