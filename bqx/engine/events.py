"""Progress events: what a run reports to its `on_event` callback (the CLI renders them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal

EventKind = Literal["run_started", "bars_written", "task_started", "task_done", "task_failed", "task_blocked",
                    "task_retried", "task_rerun", "run_finished"]


@dataclass(frozen=True)
class Event:
    """One progress event.

    - `run_started`: `total` tasks planned, `to_run` of them will run (the rest are up to date).
    - `bars_written`: `rows` partitions of bars written from the source.
    - `task_started` / `task_done` / `task_failed`: one task (stage, pair or None, month); done and
      failed carry `rows` and `seconds`, failed carries `error` (its first line; the log has all).
    - `task_blocked`: a task not run because an input failed (`error` names it).
    - `task_retried`: a task in flight when a pool worker died, submitted again to a new pool (`error` says so).
    - `task_rerun`: a task that runs again because it failed or was interrupted last time
      (`error`: its last error's first line); sent before `run_started`.
    - `run_finished`: `done`, `failed` counts and `seconds`.
    """

    kind: EventKind
    stage: str | None = None
    stage_id: str | None = None
    pair: str | None = None
    month: str | None = None
    rows: int | None = None
    seconds: float | None = None
    error: str | None = None
    done: int = 0
    failed: int = 0
    total: int = 0
    to_run: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def line(self) -> str:
        """A plain one-line rendering (used for the run's log file)."""
        where = " ".join(x for x in (self.stage_id, self.stage, self.pair, self.month) if x)
        extra = []
        if self.rows is not None:
            extra.append(f"rows={self.rows}")
        if self.seconds is not None:
            extra.append(f"seconds={self.seconds:.3f}")
        if self.kind in ("run_started", "run_finished"):
            extra.append(f"total={self.total} to_run={self.to_run} done={self.done} failed={self.failed}")
        if self.error:
            extra.append(f"error={self.error}")
        return " ".join([self.kind, where, *extra]).strip()


EventCallback = Callable[[Event], None]
