"""SIGINT and SIGTERM end a command the same way (SIGTERM is what systemd and docker send): the same cleanup
as Ctrl-C, the line "interrupted; rerun to resume", exit 128 + the signal (130, 143).

typer turns a KeyboardInterrupt into a plain exit code 130, so the signal is remembered here.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

RECEIVED: list[int] = []


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM; handled wherever KeyboardInterrupt is."""


def _on_sigint(signum: int, frame: Any) -> None:
    RECEIVED.append(signum)
    raise KeyboardInterrupt()


def _on_sigterm(signum: int, frame: Any) -> None:
    RECEIVED.append(signum)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM during the cleanup ends the process at once
    raise Terminated()


def install() -> None:
    """Catch SIGTERM, and SIGINT unless it is ignored (a background job), for the rest of the process."""
    RECEIVED.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)


def interrupted_code(exc: BaseException | None = None) -> int | None:
    """128 + the first signal received (130 SIGINT, 143 SIGTERM); else 130 for a KeyboardInterrupt `exc`, or None."""
    if RECEIVED:
        return 128 + int(RECEIVED[0])
    while exc is not None:
        if isinstance(exc, Terminated):
            return 128 + int(signal.SIGTERM)
        if isinstance(exc, KeyboardInterrupt):
            return 128 + int(signal.SIGINT)
        exc = exc.__cause__ or exc.__context__
    return None
