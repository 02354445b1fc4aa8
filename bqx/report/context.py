"""What every section reads once: the store's bars inventory, stage specs and manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bqx.store.manifest import open_reader
from bqx.store.state import open_state
from bqx.engine.plan import StageSpec, stage_specs
from bqx.store.layout import bars_partitions, partition_path, table_path

MAX_POINTS = 3000  # points per time series on the page


@dataclass
class Context:
    root: Path
    bars: dict[tuple[str, str], Path]  # (pair, month) -> bars file
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

    def stage_files(self, stage: str) -> dict[tuple[str, str], Path]:
        """(pair, month) -> file of a stored per-pair stage (existing files only)."""
        out = {}
        for key in self.bars:
            f = partition_path(self.root, stage, *key)
            if f.is_file():
                out[key] = f
        return out

    def table_files(self, name: str) -> dict[str, Path]:
        out = {}
        for m in self.months:
            f = table_path(self.root, name, m)
            if f.is_file():
                out[m] = f
        return out


def load_context(root: Path, progress: Callable[[str], None]) -> Context:
    state = open_state(root)
    tasks: list[dict[str, Any]] = []
    if state.has_manifest:  # the task rows with their start and end times (the run timeline)
        with open_reader(root) as man:
            cols = ("stage", "pair", "month", "status", "rows", "seconds", "started_at", "finished_at", "outputs", "run_id")
            tasks = [dict(zip(cols, r)) for r in man.conn.execute(f"SELECT {', '.join(cols)} FROM tasks")]
    rows = {(p, m): r for (p, m), (_, r, _, _) in state.bars.items()}
    return Context(root=root, bars=bars_partitions(root), specs=stage_specs(state.params or None), tasks=tasks,
                   runs=list(state.runs), bar_rows=rows, progress=progress)
