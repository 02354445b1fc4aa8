"""`bqx verify` and `bqx run --verify`: re-hash the store's files and compare with what the manifest recorded."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from bqx.errors import UsageError
from bqx.store.checksum import Finding, StoreIntegrityError, recorded_files, summarize, verify_files
from bqx.store.layout import BARS


@dataclass
class VerifyResult:
    """What `verify` checked and found; `ok` when every recorded file matches its checksum."""

    store: str
    files: int
    bytes: int
    seconds: float
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "ok": self.ok, "findings": [asdict(f) | {"message": f.line()} for f in self.findings]}


def verify_store(store: str | os.PathLike[str], *, pairs: Sequence[str] | None = None,
                 workers: int | None = None) -> VerifyResult:
    """Re-hash every file of the store's done tasks and bars months (of `pairs`) under the store's read lock."""
    from bqx.engine.manifest import open_reader
    from bqx.store.lock import read_lock

    root = Path(store)
    with read_lock(root, "verify"):
        man = open_reader(root)
        if man is None:
            raise UsageError(f"{root} is not a bqx store (no manifest.sqlite)", hint="Pass the right --store.")
        t0 = time.perf_counter()
        with man:
            records = recorded_files(man, pairs)
        findings = verify_files(root, records, workers)
        return VerifyResult(str(root), len(records), sum(r.size for r in records), time.perf_counter() - t0, findings)


def tasks_to_recompute(root: Path, man: Any, workers: int | None = None) -> tuple[set[tuple[str, str | None, str]], list[Finding]]:
    """For `run --verify`: the done tasks with an output whose content changed or carries no checksum.

    A bars file whose content changed while its size and mtime were kept cannot be recomputed (bars
    are the input): StoreIntegrityError names it. A bars file changed with a new mtime is taken in
    by the run as any edited bars file is.
    """
    records = recorded_files(man)
    findings = [f for f in verify_files(root, records, workers) if f.problem != "missing"]
    rotten = [f for f in findings if f.owner[0] == BARS and f.stamp_kept]
    if rotten:
        raise StoreIntegrityError(
            f"bars in store {root} are corrupt (content changed, size and mtime kept): {summarize(rotten, 3)}",
            hint="Restore those files from a copy, or re-ingest those months (bqx ingest), then run again.")
    redo = {f.owner for f in findings if f.owner[0] != BARS}
    return redo, [f for f in findings if f.owner[0] != BARS]


def without(rows: Mapping[Any, Any], keys: set[Any]) -> dict[Any, Any]:
    """The task rows with `keys` left out, so the planner sees those tasks as never done."""
    return {k: v for k, v in rows.items() if k not in keys}
