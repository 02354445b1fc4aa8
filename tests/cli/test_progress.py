"""Progress rendering of engine events: plain lines off a terminal, failures always named."""

from __future__ import annotations

import io

from rich.console import Console

from bqx.cli.progress import Progress
from bqx.engine.events import Event


def test_plain_lines_count_tasks_and_name_failures():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    with Progress(console, every=0.0) as progress:
        progress(Event("run_started", total=5, to_run=3))
        progress(Event("task_started", stage="bqx", stage_id="1.6", pair="EURUSD", month="2024-07"))
        progress(Event("task_started", stage="bqx", stage_id="1.6", pair="USDJPY", month="2024-07"))
        progress(Event("task_done", stage="bqx", stage_id="1.6", pair="EURUSD", month="2024-07", rows=10, seconds=0.1))
        progress(Event("task_failed", stage="bqx", stage_id="1.6", pair="USDJPY", month="2024-07", error="boom"))
        progress(Event("task_blocked", stage="targets", stage_id="1.7", pair="USDJPY", month="2024-07", error="bqx failed"))
    text = buf.getvalue()
    assert "3 of 5 tasks to run (2 up to date)" in text
    assert "0/3 tasks, 2 running, 0 failed" in text  # printed as the second task starts
    assert "failed: bqx USDJPY 2024-07: boom" in text
    assert "blocked: targets USDJPY 2024-07: bqx failed" in text
    assert progress.finished == 3 and progress.stages["bqx"].done == 1 and progress.stages["bqx"].failed == 1
