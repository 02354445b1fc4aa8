"""What a pool or Dask worker runs: `run_task`, after the test hook that kills the worker on a chosen task.

With `BQX_TEST_KILL_WORKER=stage:pair:month:times[:counter]` a worker SIGKILLs itself when it is handed
that task (alone or in a chain), the first `times` times (0 = every time), counted in `counter` (default
`kill_counter(store)`). Tests use it to prove a dead worker costs nothing but a retry.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from bqx.engine.worker import ChainSpec, TaskResult, TaskSpec, run_task


KILL_WORKER_ENV = "BQX_TEST_KILL_WORKER"


def pool_task(spec: TaskSpec | ChainSpec) -> TaskResult | list[TaskResult]:
    """What a pool worker runs: `run_task`, after the test hook."""
    if os.environ.get(KILL_WORKER_ENV):
        _test_kill(spec, os.environ[KILL_WORKER_ENV])
    return run_task(spec)


def _test_kill(spec: TaskSpec | ChainSpec, want: str) -> None:
    stage, pair, month, times, *path = want.split(":", 4)
    if not any((m.stage, m.pair or "", m.month) == (stage, pair, month) for m in spec.members):
        return
    counter = Path(path[0]) if path else kill_counter(spec.store)
    counter.parent.mkdir(parents=True, exist_ok=True)
    with open(counter, "a+") as fh:
        fh.seek(0)
        if int(times) and len(fh.read().splitlines()) >= int(times):
            return
        fh.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def kill_counter(store: str) -> Path:
    """The test hook's counter: `<store>/logs/test-kill-worker.count` in a local store; for an object store
    (which a worker never needs a local disk for) a file in the temporary directory named after the store URL."""
    from bqx.store.backend import is_url

    if not is_url(store):
        return Path(store) / "logs" / "test-kill-worker.count"
    import hashlib
    import tempfile

    digest = hashlib.sha1(store.rstrip("/").encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bqx-test-kill-worker-{digest}.count"
