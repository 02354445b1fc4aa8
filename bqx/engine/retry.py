"""Dead pool workers: which of the tasks in flight run again, and which killed their worker too often.

When a process-pool worker dies (the OOM killer, a signal, a crash in native code) the whole pool
breaks: every task in flight fails with `BrokenProcessPool`, whichever one the dead worker was
running. `run` then starts a new pool and submits those tasks again (a task's files are written
atomically and the same inputs give the same bytes, so a rerun task leaves what a clean run does).
Which task killed the worker is not known when several were in flight, so the suspects run
again one at a time: a worker that dies then is known to have died running that task. A task is
given up, with a clear reason, when its worker died more than `retries` times, the last time
running it alone; `retries=0` gives up every task in flight at the first death.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor
from typing import Sequence


def is_dead_worker(exc: BaseException) -> bool:
    """Whether a task's exception means its pool lost a worker (not an error raised by the task)."""
    return isinstance(exc, BrokenExecutor)


class WorkerDeaths:
    """Per unit of work (an index), how often a worker died while it was in flight; the units still suspected."""

    def __init__(self, retries: int):
        self.retries = max(0, int(retries))
        self.deaths: dict[int, int] = {}
        self.suspects: set[int] = set()
        self.breaks = 0  # how often the pool broke

    def limit(self, workers: int) -> int:
        """Units in flight at most: one while suspects remain (a death is then known to be its), else `workers`."""
        return 1 if self.suspects else max(1, workers)

    def died(self, units: Sequence[int]) -> tuple[list[int], list[int]]:
        """A worker died with `units` in flight: (units to run again, first the suspects; units given up)."""
        self.breaks += 1
        alone = len(units) == 1
        again: list[int] = []
        given_up: list[int] = []
        for unit in units:
            n = self.deaths[unit] = self.deaths.get(unit, 0) + 1
            if self.retries == 0 or (alone and n > self.retries):
                given_up.append(unit)
                self.suspects.discard(unit)
            else:
                again.append(unit)
                self.suspects.add(unit)
        return again, given_up

    def finished(self, unit: int) -> None:
        """The unit ran to its end (done or failed by its own error): no longer a suspect."""
        self.suspects.discard(unit)

    def reason(self, unit: int, label: str) -> str:
        return dead_worker_reason(self.deaths.get(unit, 0), label, "the run log has the pool's error")


def dead_worker_reason(n: int, label: str, where: str) -> str:
    """Why a task was given up after its worker died `n` times (the process pool's and Dask's words)."""
    return (f"the worker process died {n} time{'s' if n != 1 else ''} running {label} (killed by a signal, "
            f"out of memory, or a crash in native code); {where}")
