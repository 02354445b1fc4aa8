"""What every section reads once: the store's bars inventory, stage specs and manifest.

Files are named relative to the store's root and read through its backend (bqx.store.backend), so a
store on object storage (s3://) reports as a local one does: `scan` fetches only the columns and row
groups a query needs, `metadata` only a file's footer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from bqx.store.manifest import open_reader
from bqx.store.state import state_from
from bqx.engine.plan import StageSpec, stage_specs
from bqx.store.backend import Backend, backend_for
from bqx.store.layout import TABLES, bars_stats, partition_rel, store_root, table_rel

MAX_POINTS = 3000  # points per time series on the page


@dataclass
class Context:
    root: Path | str  # a Path, or the URL of a store on object storage
    bars: dict[tuple[str, str], Any]  # (pair, month) -> bars file (relative to the root)
    specs: dict[str, StageSpec]
    tasks: list[dict[str, Any]]  # manifest task rows
    runs: list[dict[str, Any]]
    bar_rows: dict[tuple[str, str], int]
    progress: Callable[[str], None] = field(default=lambda s: None)

    @property
    def pairs(self) -> list[str]:
        return sorted({p for p, _ in self.bars})

    @property
    def months(self) -> list[str]:
        return sorted({m for _, m in self.bars})

    @property
    def backend(self) -> Backend:
        return backend_for(self.root)

    def stage_files(self, stage: str) -> dict[tuple[str, str], str]:
        """(pair, month) -> file of a stored per-pair stage (existing files only: one listing of the stage)."""
        there = self.backend.stats(stage)
        return {key: rel for key in self.bars if (rel := partition_rel(stage, *key)) in there}

    def table_files(self, name: str) -> dict[str, str]:
        there = self.backend.stats(f"{TABLES}/{name}")
        return {m: rel for m in self.months if (rel := table_rel(name, m)) in there}

    # -- reading a file named relative to the root (a full local path works too) -------------------
    def scan(self, f: Any) -> pl.LazyFrame:
        return self.backend.scan_parquet(str(f))

    def read(self, f: Any, columns: list[str] | None = None) -> pl.DataFrame:
        return self.backend.read_parquet(str(f), columns)

    def metadata(self, f: Any) -> Any:
        return self.backend.parquet_metadata(str(f))

    def exists(self, f: Any) -> bool:
        return self.backend.exists(str(f))

    def name(self, rel: str) -> Any:
        """A file's full name for the page: a Path in a local store, its URL on object storage."""
        return self.root / rel if isinstance(self.root, Path) else self.backend.join(rel)


def load_context(root: Path | str, progress: Callable[[str], None]) -> Context:
    man = open_reader(root)
    tasks: list[dict[str, Any]] = []
    if man is None:
        state = state_from(root, None)
    else:
        with man:  # the state, and the task rows with their start and end times (the run timeline), from one read
            state = state_from(root, man)
            cols = ("stage", "pair", "month", "status", "rows", "seconds", "started_at", "finished_at", "outputs", "run_id")
            tasks = [dict(zip(cols, r)) for r in man.conn.execute(f"SELECT {', '.join(cols)} FROM tasks")]
    rows = {(p, m): r for (p, m), (_, r, _, _) in state.bars.items()}
    root = store_root(root)
    return Context(root=root, bars={k: v[0] for k, v in bars_stats(root).items()}, specs=stage_specs(state.params or None),
                   tasks=tasks, runs=list(state.runs), bar_rows=rows, progress=progress)
