"""A pool worker's tie to its driver: the worker ends at once when the process that started it dies.

A driver killed without closing its pool (SIGKILL, the OOM killer) leaves its spawned workers
behind: they go on computing and writing partitions after the store lock is gone, then idle,
each holding its memory. `bind_to_driver` (a pool's `initializer`) prevents that three ways:

- on Linux the kernel sends the worker SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`);
  the parent is the thread that started the worker, so a pool must live in one thread (run's
  and validate's do);
- everywhere, a daemon thread polls the parent pid every `POLL_SECONDS` and ends the worker
  when it changed (the worker was re-parented: its driver is gone);
- `ensure_driver()` before each write ends a worker whose driver is gone (a no-op outside a pool).

Test hook: with `BQX_TEST_WORKER_READY_DIR=DIR` each tied worker creates the file `DIR/<its pid>`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from pathlib import Path

POLL_SECONDS = 0.2
ORPHAN_EXIT = 75  # the exit status of a worker that ended because its driver died
_PR_SET_PDEATHSIG = 1
READY_ENV = "BQX_TEST_WORKER_READY_DIR"

_driver: int | None = None


def bind_to_driver(driver_pid: int, *, pdeathsig: bool = True) -> None:
    """Tie this worker process to `driver_pid` (its parent). `pdeathsig=False` leaves only the polling thread."""
    global _driver
    _driver = driver_pid
    if pdeathsig:
        _set_pdeathsig()
    ensure_driver()  # the driver may have died before the tie was made
    threading.Thread(target=_watch, args=(driver_pid,), name="bqx-lifeline", daemon=True).start()
    ready = os.environ.get(READY_ENV)
    if ready:
        Path(ready, str(os.getpid())).touch()


def driver_alive() -> bool:
    """False in a worker whose driver died; True in a worker whose driver lives, and outside any pool."""
    return _driver is None or os.getppid() == _driver


def ensure_driver() -> None:
    """End this worker at once (no cleanup, no more writes) when its driver is gone."""
    if not driver_alive():
        os._exit(ORPHAN_EXIT)


def _watch(driver_pid: int) -> None:
    while os.getppid() == driver_pid:
        time.sleep(POLL_SECONDS)
    os._exit(ORPHAN_EXIT)


def _set_pdeathsig() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
