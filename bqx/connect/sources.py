"""Bar sources: one interface, one lookup by URL scheme.

A bar source is what `bqx ingest SOURCE` and `bqx.run(store, source=SOURCE)` read bars from: local
files (CSV or Parquet, bqx.sources.files) or a PostgreSQL database (bqx.sources.postgres).
`open_source(target)` picks the source registered for the target's scheme (bqx.connect.schemes);
adding a source is one module with a class that satisfies `BarSource` and one `register_source`.

Live bars (`bqx live --source`) come from streaming sources, a different interface: rows as they
arrive, polled with a timeout for as long as the session runs, from each pair's last bar on
(`StreamSource`, with its own registry here: "-" for stdin, a directory of growing files,
postgresql:// polled; bqx.live.sources and bqx.live.pg_source).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from bqx.connect.schemes import Registry

if TYPE_CHECKING:
    import polars as pl

#: on_month(pair, month, status, rows) of a source read month by month: status "read", "unchanged" or "removed".
OnMonth = Callable[[str, str, str, int], None]


@dataclass(frozen=True)
class IngestOptions:
    """How `bqx ingest` reads and validates a source; each source uses the fields that apply to it."""

    fmt: str | None = None  # files: histdata, dukascopy, metatrader or generic (detected when None)
    policy: str = "strict"  # strict or repair (bqx.bars.rules)
    tz: Any = None  # the zone(s) of naive timestamps: anything bqx.bars.timezones.ZoneMap.of takes
    pairs: Sequence[str] | None = None  # only these pairs
    column_map: dict[str, str] | None = None  # canonical column -> the source's column
    table: str | None = None  # databases: table pattern with {pair}, or one long table (with pair_column)
    pair_column: str | None = None
    run_id: str | None = None  # names the quarantine file
    lock: bool = True  # take the store's write lock (False: the caller, e.g. a run, holds it)
    on_month: OnMonth | None = None


@runtime_checkable
class BarSource(Protocol):
    """Bars from outside the store (files, a database, ...)."""

    scheme: str

    def describe(self) -> str:
        """The source as messages and records show it (a URL's password masked)."""
        ...

    def ingest(self, store: Path, options: IngestOptions) -> Any:
        """Read, validate and write the bars into `<store>/bars/` (`bqx ingest`); returns the IngestReport
        (bqx.bars.ingest_report); strict raises InputError."""
        ...

    def write_into(self, store: Path, *, pairs: Sequence[str] | None, start: str | None, end: str | None) -> int:
        """The bars a run computes from, written into the store whose lock the run holds; returns how many it wrote
        (the run's `bars_written`: bars files for files, rows for a database; 0 when nothing changed)."""
        ...


SOURCES: Registry[BarSource] = Registry(
    "bar source", "Give a bar file or directory, postgresql://USER@HOST:PORT/DB, or register a source "
                  "(bqx.connect.register_source; docs/CONTRIBUTING.md).")


def register_source(scheme: str, factory: Callable[[Any], BarSource] | str, *, replace: bool = False) -> None:
    """Read targets of `scheme` with `factory(target) -> BarSource` (a callable or "module:attribute")."""
    SOURCES.register(scheme, factory, replace=replace)


def open_source(target: Any) -> BarSource:
    """The bar source registered for `target`'s scheme; an unknown scheme is a UsageError naming it."""
    return SOURCES.open(target)


@dataclass(frozen=True)
class StreamOptions:
    """How a live session reads a database source ([postgres] of bqx.toml, --table, --pair-column)."""

    table: str | None = None
    pair_column: str | None = None
    column_map: dict[str, str] | None = None
    tz: str | None = None


@runtime_checkable
class StreamSource(Protocol):
    """Live bars as they arrive. Opened (and its target checked) before the session loads; `start` then tells it
    the session's pairs and each pair's last bar, and `read_bars` is polled until `done`."""

    done: bool

    def start(self, pairs: Sequence[str], since: Mapping[str, datetime | None]) -> None: ...

    def read_bars(self, timeout: float) -> "tuple[pl.DataFrame, list[dict[str, Any]]]":
        """(bars with pair, _line and _file columns; rejection records), waiting up to `timeout` s when none came."""
        ...

    def close(self) -> None: ...


STREAM_SOURCES: Registry[StreamSource] = Registry(
    "live bar source", "Give - (stdin), a directory of growing CSV/JSON-lines files, or postgresql://USER@HOST:PORT/DB.")


def register_stream_source(scheme: str, factory: Callable[..., StreamSource] | str, *, replace: bool = False) -> None:
    """Read live bars of `scheme` with `factory(target, options: StreamOptions) -> StreamSource`."""
    STREAM_SOURCES.register(scheme, factory, replace=replace)


def open_stream_source(target: Any, options: StreamOptions | None = None) -> StreamSource:
    return STREAM_SOURCES.open(target, options or StreamOptions())


register_source("file", "bqx.sources.files:FileSource")
register_source("postgresql", "bqx.sources.postgres:DatabaseSource")
register_stream_source("stdio", "bqx.live.sources:StreamSource.open")
register_stream_source("file", "bqx.live.sources:DirectorySource.open")
register_stream_source("postgresql", "bqx.live.pg_source:PostgresFeed")

__all__ = ["BarSource", "IngestOptions", "OnMonth", "SOURCES", "STREAM_SOURCES", "StreamOptions", "StreamSource",
           "open_source", "open_stream_source", "register_source", "register_stream_source"]
