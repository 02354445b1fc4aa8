"""`bqx live`: features of each new bar, computed as a batch run stores them, from stdin, a growing directory or a
PostgreSQL table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import polars as pl
import typer

from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, info, split_list


def register(app: typer.Typer) -> None:
    @app.command("live")
    def live(
        source: str = typer.Option(..., "--source", help="- (bar lines on stdin), a DIR of growing .csv/.jsonl files, "
                                   "or postgresql://USER@HOST:PORT/DB (polled for rows newer than each pair's last bar; "
                                   "tables as for `bqx ingest`). Lines: JSON objects or CSV with a header."),
        out: str = typer.Option("-", "--out", help="- (JSON lines on stdout) or a DIR (one Parquet file per UTC day)."),
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Pairs to follow (default: every pair of the store)."),
        on_missing: str = typer.Option("carry", "--on-missing",
                                       help="A pair without a bar at a minute: carry (compute now, repeat its last "
                                            "features marked live_status=carried) or wait."),
        wait: float = typer.Option(0.0, "--wait", help="With --on-missing wait: seconds to wait for a late pair's bar."),
        idle: float = typer.Option(0.2, "--idle", help="Seconds without input after which the bars read are computed."),
        append: bool = typer.Option(False, "--append-to-store", help="Also add the computed bars to the store's bars."),
        flush_minutes: int = typer.Option(15, "--flush-minutes",
                                          help="Write Parquet days and store appends every N minutes (and at the end)."),
        table: Optional[str] = typer.Option(None, "--table", help="PostgreSQL: table per pair, a pattern with {pair} "
                                            "(default m1_{pair}), or the one long table of --pair-column."),
        pair_column: Optional[str] = typer.Option(None, "--pair-column", help="PostgreSQL: the pair column of a long table."),
        json_: bool = typer.Option(False, "--json", help="At the end, print the summary (minutes, rejected, appended, "
                                   "interrupted) as one JSON object on stdout (after the feature lines of --out -)."),
    ) -> None:
        """Compute the features of new bars as they arrive (parity with `bqx run`; docs/LIVE.md).

        SIGTERM or Ctrl-C stops it cleanly: the bars already read are computed and written, then it exits 143 or 130.
        """
        from bqx.connect.sinks import open_stream_sink
        from bqx.connect.sources import StreamOptions, open_stream_source
        from bqx.live import Live
        from bqx.live.sinks import append_to_store

        cfg, _ = config_from(config, store=store)
        pg = cfg.postgres  # a database source is read as `bqx ingest` reads it ([postgres], --table, --pair-column)
        # opened (and checked: a password in a URL is refused before anything reads or prints it) before the session
        src = open_stream_source(source, StreamOptions(table=table or pg.table, pair_column=pair_column or pg.pair_column,
                                                       column_map=pg.columns, tz=pg.tz))
        session = Live(cfg, pairs=split_list(pairs), on_missing=on_missing, wait_seconds=wait)  # type: ignore[arg-type]
        src.start(session.pairs, session.last_bars)
        info(f"live: {len(session.pairs)} pairs, {len(session.columns)} features, from {source}")
        sink = open_stream_sink(out, flush_minutes)
        minutes = appended = rejected = since_append = 0

        def emit(rows) -> None:
            nonlocal minutes, appended, since_append
            if rows.height:
                sink.write(rows)
                minutes += rows["ts"].n_unique()
                since_append += rows["ts"].n_unique()
                if append and since_append >= flush_minutes:
                    appended += append_to_store(cfg.store, session.drain_accepted())
                    since_append = 0

        def report(records) -> None:
            nonlocal rejected
            for r in records:
                rejected += 1
                sys.stderr.write(json.dumps({"rejected": r}, default=str) + "\n")

        def feed(frame) -> None:
            emit(session.update(frame))
            report(session.rejected.to_dicts())

        interrupted = False
        held_box: list = [None]  # the newest minute read: its other pairs' lines may still be on the way
        try:
            try:
                _follow(src, idle, feed, emit, session, report, held_box)
            except KeyboardInterrupt:  # SIGINT, or SIGTERM (systemd, docker): finish what was read, then stop
                interrupted = True
                if held_box[0] is not None:
                    feed(held_box[0])
                emit(session.flush())
        finally:
            src.close()
            sink.close()
            if append:
                appended += append_to_store(cfg.store, session.drain_accepted())
        summary = {"minutes": minutes, "rejected": rejected, "appended": appended if append else None,
                   "interrupted": interrupted}
        if json_:
            emit_json({"live": summary})
        info(f"live: {minutes} minutes computed, {rejected} bars rejected" + (f", {appended} bars added to {cfg.store}"
                                                                            if append else "")
             + ("; stopped by a signal after writing them" if interrupted else ""))


def _follow(src, idle, feed, emit, session, report, held_box: list) -> None:
    """Read until the source ends: each minute is computed once the next one starts (or input idles)."""
    while not src.done:
        frame, bad = src.read_bars(idle)
        report(bad)
        if frame.height:
            if held_box[0] is not None:
                frame = pl.concat([held_box[0], frame])
            newest = frame["ts"].max()
            held_box[0] = frame.filter(pl.col("ts") == newest)
            if held_box[0].height < frame.height:
                feed(frame.filter(pl.col("ts") != newest))
        elif held_box[0] is not None:  # idle: the newest minute is complete as far as we can tell
            feed(held_box[0])
            held_box[0] = None
        else:
            emit(session.poll())
    if held_box[0] is not None:
        feed(held_box[0])
        held_box[0] = None
    emit(session.flush())
