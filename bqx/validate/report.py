"""The validation report: per family and check, samples, mismatches and the first failures.

Verdicts per family: `pass`; `leak` (static lookahead, reads targets, or truncation,
perturbation or sweep failed: the feature uses the future); `context error` (truncation and perturbation
pass but the month computed with the declared context differs from the continuous series: the
declared context is too short); `error` (a recompute raised); `exempt` (targets look ahead by
definition); `not stored` (nothing of the family in the store yet).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bqx.io import atomic_write_text

CHECKS = ("static", "truncation", "perturbation", "sweep", "boundary", "reach")
MAX_FAILURES = 5  # first failures kept per family and check
VALIDATION_DIR = "validation"
LATEST = "latest.json"
PARTIAL = "partial.json"


@dataclass
class Failure:
    """One disagreement: where, and the two values (None is NULL)."""

    column: str | None
    pair: str | None
    ts: str | None
    stored: float | None  # the reference: stored value, unperturbed or continuous result
    recomputed: float | None
    detail: str = ""


@dataclass
class CheckResult:
    check: str
    status: str = "pass"  # pass, fail, error, skip
    samples: int = 0  # sampled timestamps (boundary: months x pairs)
    compared: int = 0  # values compared
    mismatches: int = 0
    failures: list[Failure] = field(default_factory=list)
    note: str = ""
    seconds: float = 0.0

    def fail(self, failure: Failure, count: int = 1) -> None:
        self.status = "fail" if self.status != "error" else "error"
        self.mismatches += count
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(failure)

    def error(self, text: str, pair: str | None = None, ts: str | None = None) -> None:
        self.status = "error"
        self.mismatches += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(None, pair, ts, None, None, text))


@dataclass
class FamilyResult:
    family: str
    stage: str
    cross_pair: bool
    context: int
    verdict: str = "pass"
    checks: dict[str, CheckResult] = field(default_factory=dict)
    partitions: list[str] = field(default_factory=list)

    def decide(self) -> str:
        """leak > error > context error > pass, from the checks' statuses."""
        st = {name: c.status for name, c in self.checks.items()}
        if self.verdict == "not stored":
            return self.verdict
        if self.verdict in ("exempt", "leak", "context error", "error") and "reach" in self.checks:
            return self.verdict  # a family that looks ahead: decided by bqx.validate.reach.target_verdict
        if self.verdict == "exempt":
            return self.verdict
        if st.get("static") == "fail" or "fail" in (st.get("truncation"), st.get("perturbation"), st.get("sweep")):
            self.verdict = "leak"
        elif "error" in st.values():
            self.verdict = "error"
        elif st.get("boundary") == "fail":
            self.verdict = "context error"
        else:
            self.verdict = "pass"
        return self.verdict

    @property
    def ok(self) -> bool:
        return self.verdict in ("pass", "exempt", "not stored")

    def first_failure(self) -> tuple[str, Failure] | None:
        for name in CHECKS:
            c = self.checks.get(name)
            if c is not None and c.failures:
                return name, c.failures[0]
        return None


@dataclass
class ValidationReport:
    store: str
    passed: bool
    complete: bool  # every registered family was selected
    fingerprint: str  # the store's manifest state when validated
    started_at: str
    seconds: float
    settings: dict[str, Any]
    coverage: str
    families: list[FamilyResult]

    def family(self, name: str) -> FamilyResult:
        for f in self.families:
            if f.family == name:
                return f
        raise KeyError(name)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failed(self) -> list[FamilyResult]:
        return [f for f in self.families if not f.ok]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": self.exit_code}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def summary(self) -> str:
        bad = self.failed()
        if not bad:
            return f"validation passed: {len(self.families)} families in {self.seconds:.1f} s"
        parts = []
        for f in bad:
            first = f.first_failure()
            where = ""
            if first:
                check, fl = first
                where = f" ({check}: {fl.column or fl.detail[:80]}" + (f" {fl.pair}" if fl.pair else "") + \
                        (f" at {fl.ts}" if fl.ts else "") + ")"
            parts.append(f"{f.family}: {f.verdict}{where}")
        return f"validation failed for {len(bad)} of {len(self.families)} families: " + "; ".join(parts)

    def table(self) -> Any:
        """A rich table: one row per family, one cell per check, the first failure."""
        from rich.table import Table

        colours = {"pass": "green", "exempt": "cyan", "not stored": "dim", "leak": "bold red",
                   "context error": "bold yellow", "error": "bold red"}
        t = Table(title=f"causality validation of {self.store}", show_lines=False)
        for col in ("family", "verdict", *CHECKS, "first failure"):
            t.add_column(col, overflow="fold")
        for f in self.families:
            cells = []
            for name in CHECKS:
                c = f.checks.get(name)
                if c is None:
                    cells.append("-")
                elif c.status == "skip":
                    cells.append(f"skip {c.note}".strip()[:40])
                else:
                    mark = {"pass": "[green]ok[/]", "fail": "[red]FAIL[/]", "error": "[red]ERROR[/]"}[c.status]
                    cells.append(f"{mark} {c.mismatches}/{c.compared} ({c.samples})" if name != "static" else mark)
            first = f.first_failure()
            text = ""
            if first:
                check, fl = first
                text = (f"{check}: {fl.column or ''} {fl.pair or ''} {fl.ts or ''} stored={fl.stored} "
                        f"recomputed={fl.recomputed} {fl.detail}").strip()
            colour = colours.get(f.verdict, "white")
            t.add_row(f.family, f"[{colour}]{f.verdict}[/]", *cells, text)
        t.caption = f"{self.coverage}\nmismatches/compared (samples); {self.seconds:.1f} s"
        return t


LATEST_REL = f"{VALIDATION_DIR}/{LATEST}"  # in the store, through its backend (a local directory or s3://)
PARTIAL_REL = f"{VALIDATION_DIR}/{PARTIAL}"


def read_latest(store: str | os.PathLike[str]) -> str | None:
    """The text of the store's latest complete report (None when there is none)."""
    from bqx.store.backend import backend_for

    try:
        return backend_for(store).read_text(LATEST_REL)
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_latest(store: str | os.PathLike[str], report: ValidationReport, partial: bool = False) -> Path | str:
    """Write the report as `<store>/validation/latest.json` (`partial.json` when only some families were
    checked) atomically: temp file, fsync and rename in a local store, one PUT on object storage."""
    from bqx.store.backend import backend_for, is_url

    rel = PARTIAL_REL if partial else LATEST_REL
    if not is_url(store):
        path = Path(store) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, report.to_json())
        return path
    backend = backend_for(store)
    backend.write_text(rel, report.to_json())
    return backend.join(rel)


def write_report(path: str | os.PathLike[str], report: ValidationReport) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(report.to_json() + "\n")
