"""`bqx verify`: re-hash the store's files and compare with what the manifest recorded (`run --verify`: bqx.engine.gate)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from bqx.errors import UsageError
from bqx.store.backend import is_url
from bqx.store.checksum import Finding, recorded_files, verify_files


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
    from bqx.store.manifest import open_reader
    from bqx.store.lock import read_lock

    root = store if is_url(store) else Path(store)
    with read_lock(root, "verify"):
        man = open_reader(root)
        if man is None:
            raise UsageError(f"{root} is not a bqx store (no manifest.sqlite)", hint="Pass the right --store.")
        t0 = time.perf_counter()
        with man:
            records = recorded_files(man, pairs)
        findings = verify_files(root, records, workers)
        return VerifyResult(str(root), len(records), sum(r.size for r in records), time.perf_counter() - t0, findings)
