"""Live progress of a run: a per-stage table on a terminal, plain periodic lines otherwise.

A hook on the engine's events (the engine itself never prints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from bqx.engine.events import Event


@dataclass
class _Stage:
    id: str
    done: int = 0
    running: int = 0
    failed: int = 0
    rows: int = 0
    seconds: float = 0.0


@dataclass
class Progress:
    """Consumes events; renders a live table (terminal) or a line every `every` seconds (logs, CI)."""

    console: Console
    quiet: bool = False
    every: float = 10.0
    stages: dict[str, _Stage] = field(default_factory=dict)
    total: int = 0
    finished: int = 0
    failed_lines: list[str] = field(default_factory=list)
    retried: int = 0
    started: float = field(default_factory=time.perf_counter)
    _live: Live | None = None
    _last_line: float = 0.0

    def __enter__(self) -> "Progress":
        if self.console.is_terminal and not self.quiet:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)

    def __call__(self, ev: Event) -> None:
        if ev.kind == "run_started":
            self.total = ev.to_run
            self.started = time.perf_counter()
            self._say(f"{ev.to_run} of {ev.total} tasks to run ({ev.total - ev.to_run} up to date)")
        elif ev.kind == "task_rerun":
            self.retried += 1
            where = " ".join(x for x in (ev.stage, ev.pair, ev.month) if x)
            if self.retried <= 10:
                self._say(f"retrying {where} (last time: {ev.error})")
            elif self.retried == 11:
                self._say("retrying more tasks that failed or were interrupted (the run's log lists them)")
        elif ev.kind == "bars_written":
            self._say(f"bars: {ev.rows} partitions written from the source")
        elif ev.kind in ("task_started", "task_done", "task_failed", "task_blocked"):
            st = self.stages.setdefault(ev.stage or "?", _Stage(ev.stage_id or ""))
            if ev.kind == "task_started":
                st.running += 1
            else:
                if ev.kind != "task_blocked":
                    st.running = max(0, st.running - 1)
                self.finished += 1
                if ev.kind == "task_done":
                    st.done += 1
                    st.rows += ev.rows or 0
                    st.seconds += ev.seconds or 0.0
                else:
                    st.failed += 1
                    where = " ".join(x for x in (ev.stage, ev.pair, ev.month) if x)
                    msg = f"{'failed' if ev.kind == 'task_failed' else 'blocked'}: {where}: {ev.error}"
                    self.failed_lines.append(msg)
                    if self._live is None and not self.quiet:
                        self.console.print(msg)
        if self._live is not None:
            self._live.update(self._table())
        elif not self.quiet and time.perf_counter() - self._last_line >= self.every and ev.kind == "task_started":
            self._last_line = time.perf_counter()
            self.console.print(self._line())

    def _say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def _rate_eta(self) -> tuple[float, float | None]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = self.finished / elapsed
        left = self.total - self.finished
        return rate, (left / rate if rate > 0 else None)

    def _line(self) -> str:
        rate, eta = self._rate_eta()
        running = sum(s.running for s in self.stages.values())
        failed = sum(s.failed for s in self.stages.values())
        eta_s = f", ETA {_fmt(eta)}" if eta is not None and self.finished < self.total else ""
        return (f"[{_fmt(time.perf_counter() - self.started)}] {self.finished}/{self.total} tasks, "
                f"{running} running, {failed} failed, {rate:.1f} tasks/s{eta_s}")

    def _table(self) -> Table:
        table = Table(title=self._line(), title_justify="left", expand=False)
        for col in ("stage", "done", "running", "failed", "rows", "task s"):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for name, st in self.stages.items():
            avg = st.seconds / st.done if st.done else 0.0
            table.add_row(f"{st.id} {name}", str(st.done), str(st.running), str(st.failed) if st.failed else "",
                          f"{st.rows:,}", f"{avg:.2f}")
        return table


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
