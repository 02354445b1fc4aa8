"""Feature sinks: one interface, one lookup by URL scheme.

A feature sink is where `bqx export --to TARGET` writes a store's features: a Parquet dataset under
a local directory ("file") or an s3:// prefix ("s3"), both bqx.export.dataset_sink, or PostgreSQL
tables ("postgresql", bqx.export.postgres_sink). `open_sink(target, options)` picks the sink
registered for the target's scheme (bqx.connect.schemes); adding a sink is one module with a class
that satisfies `FeatureSink` and one `register_sink`.

Live features go to streaming sinks, a different interface: an export writes a finished dataset
once (splits, scaler, metadata, checks, a completion marker), a live session appends rows minute
after minute for as long as it runs and has no splits or scaler. `StreamSink` (`write(rows)`,
`close()`) and its own registry serve `bqx live --out`: "-" (stdio) for JSON lines on stdout, a
directory ("file") for one Parquet file per UTC day (bqx.live.sinks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from bqx.connect.schemes import Registry

if TYPE_CHECKING:
    import polars as pl

    ExportOptions = Any  # bqx.export.options.ExportOptions (connect/ imports nothing of the layers that use it)
    ExportResult = Any  # bqx.export.outcome.ExportResult


@runtime_checkable
class FeatureSink(Protocol):
    """Where an export writes a store's features."""

    scheme: str

    def describe(self) -> str:
        """The target as messages and records show it (a URL's password masked)."""
        ...

    def check(self, options: "ExportOptions") -> None:
        """Refuse (UsageError) the options this sink cannot honour, before anything is read or written."""
        ...

    def export(self, store: Path, options: "ExportOptions") -> "ExportResult":
        """Write the export; the caller holds the store's read lock."""
        ...


@runtime_checkable
class StreamSink(Protocol):
    """Where live features go, appended as they are computed."""

    def write(self, rows: "pl.DataFrame") -> None:
        """Append feature rows (one or more minutes, every pair)."""
        ...

    def close(self) -> None:
        """Make everything written so far durable."""
        ...


SINKS: Registry[FeatureSink] = Registry(
    "feature sink", "Give a local directory, s3://BUCKET/PREFIX or postgresql://USER@HOST:PORT/DB, or register a "
                    "sink (bqx.connect.register_sink; docs/CONTRIBUTING.md).")
STREAM_SINKS: Registry[StreamSink] = Registry(
    "live feature sink", "Give - (JSON lines on stdout) or a directory (Parquet per day).")


def register_sink(scheme: str, factory: Callable[..., FeatureSink] | str, *, replace: bool = False) -> None:
    """Export to targets of `scheme` with `factory(target, options) -> FeatureSink` (a callable or "module:attribute")."""
    SINKS.register(scheme, factory, replace=replace)


def open_sink(target: Any, options: "ExportOptions | None" = None) -> FeatureSink:
    """The feature sink registered for `target`'s scheme; an unknown scheme is a UsageError naming it."""
    return SINKS.open(target, options)


def register_stream_sink(scheme: str, factory: Callable[..., StreamSink] | str, *, replace: bool = False) -> None:
    """Send live features to targets of `scheme` with `factory(target, flush_minutes) -> StreamSink`."""
    STREAM_SINKS.register(scheme, factory, replace=replace)


def open_stream_sink(target: Any, flush_minutes: int = 15) -> StreamSink:
    return STREAM_SINKS.open(target, flush_minutes)


register_sink("file", "bqx.export.dataset_sink:DatasetSink")
register_sink("s3", "bqx.export.dataset_sink:DatasetSink")
register_sink("postgresql", "bqx.export.postgres_sink:PostgresSink")
register_stream_sink("stdio", "bqx.live.sinks:JsonLines.open")
register_stream_sink("file", "bqx.live.sinks:ParquetDays.open")

__all__ = ["FeatureSink", "SINKS", "STREAM_SINKS", "StreamSink", "open_sink", "open_stream_sink", "register_sink",
           "register_stream_sink"]
