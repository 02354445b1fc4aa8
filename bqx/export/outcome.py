"""What an export reports: its result, its refusals, and whether the store's validation allows it."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

from bqx.errors import BqxError


class ExportRefusedError(BqxError):
    """The store's latest causality validation did not pass (exit 1)."""

    exit_code = 1


class IncompleteExportError(BqxError):
    """An export without its completion marker: interrupted, failed, or still being written (exit 1)."""

    exit_code = 1


@dataclass
class ExportResult:
    """What an export wrote."""

    destination: str
    export_id: str
    rows: dict[str, dict[str, int]]  # split -> pair -> rows
    files: int
    boundaries: dict[str, str]
    columns: int
    scaled: int
    constant: dict[str, list[str]]
    validated: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    column_counts: dict[str, int] = field(default_factory=dict)  # bqx.export.columns.summary_counts
    dropped: list[str] = field(default_factory=list)  # all-NULL columns left out (--drop-empty)
    empty_everywhere: list[str] = field(default_factory=list)  # exported columns with no value in any file

    @property
    def ok(self) -> bool:
        return all(c.get("passed") is not False for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def validation_status(store: Any, state: Any = None) -> tuple[bool, dict[str, Any] | None, str]:
    """(passed, the latest validation report or None, why) for the store (`state`: its StoreState, if opened)."""
    report = importlib.import_module("bqx.validate").latest_validation(store, state)
    if report is None:
        return False, None, "the store has no recorded validation"
    if not report.get("passed", report.get("ok", False)):
        return False, report, "the latest validation failed"
    if report.get("complete") is False:
        return False, report, "the latest validation checked only some families"
    if report.get("current") is False:
        return False, report, "the store changed since its latest validation"
    return True, report, "the latest validation passed"
