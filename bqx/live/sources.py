"""Where live bars come from: lines on stdin or files growing in a directory, as CSV or JSON lines.

A line source has `read(timeout) -> list[Line]` (the complete lines that arrived, possibly none)
and `done` (no more will come); `read_bars(timeout)` gives them parsed, as every streaming source
of bqx.connect.sources does (`StreamSource`: "-" is stdin, a directory is DirectorySource; the
PostgreSQL poller is bqx/live/pg_source.py).

Line formats, told apart line by line:
- JSON lines: one object per line, `{"pair": "EURUSD", "ts": "2024-07-31T23:59:00Z", "open": ..., "high": ...,
  "low": ..., "close": ..., "volume": ...}` (bid_*/ask_* optional);
- CSV: a header line naming the columns (pair, ts, open, high, low, close, optional volume, bid_*, ask_*),
  then one bar per line. A file's (or stdin's) first non-JSON line is its header.
Timestamps are ISO 8601 with a zone (Z or +00:00); a naive one is rejected (naive-timestamp).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import polars as pl

from bqx.bar_schema import BAR_COLUMNS, TS_DTYPE
from bqx.errors import UsageError
from bqx.live.checks import record

NUMBERS = tuple(c for c in BAR_COLUMNS if c != "ts")


@dataclass(frozen=True)
class Line:
    text: str
    file: str
    number: int


class Source(Protocol):
    done: bool

    def read(self, timeout: float) -> list[Line]: ...


class _LineFeed:
    """The streaming-source side of a line source: lines parsed into bars (bqx.connect.sources.StreamSource)."""

    _parser: "LineParser | None" = None

    def read(self, timeout: float) -> list[Line]:
        raise NotImplementedError

    def start(self, pairs: Any, since: Any) -> None:
        """Lines carry their pair: every line that arrives is read, whatever the session's pairs."""

    def read_bars(self, timeout: float) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        if self._parser is None:
            self._parser = LineParser()
        return self._parser.parse(self.read(timeout))

    def close(self) -> None:
        pass


class StreamSource(_LineFeed):
    """Lines of a text stream (stdin), read by a thread so the caller can wait with a timeout."""

    @classmethod
    def open(cls, target: str, options: Any = None) -> "StreamSource":
        """The "stdio" live source: standard input."""
        return cls(sys.stdin)

    def __init__(self, stream: IO[str], name: str = "<stdin>"):
        self.name, self.done = name, False
        self._q: queue.Queue[Line | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for i, text in enumerate(stream, start=1):
            self._q.put(Line(text.rstrip("\r\n"), self.name, i))
        self._q.put(None)

    def read(self, timeout: float) -> list[Line]:
        out: list[Line] = []
        try:
            item = self._q.get(timeout=timeout)
            while True:
                if item is None:
                    self.done = True
                    break
                out.append(item)
                item = self._q.get_nowait()
        except queue.Empty:
            pass
        return out


class DirectorySource(_LineFeed):
    """Complete lines appended to the `*.csv` and `*.jsonl` files of a directory (new files included)."""

    @classmethod
    def open(cls, target: str, options: Any = None) -> "DirectorySource":
        """The "file" live source: a directory."""
        from bqx.connect.schemes import local_path

        return cls(Path(local_path(target)))

    def __init__(self, directory: Path):
        if not directory.is_dir():
            raise UsageError(f"live source {directory} is not a directory", hint="Give a directory, or - for stdin.")
        self.dir, self.done = directory, False
        self._offset: dict[Path, int] = {}
        self._lines: dict[Path, int] = {}

    def read(self, timeout: float) -> list[Line]:
        import time

        out = self._scan()
        if not out and timeout > 0:
            time.sleep(timeout)
            out = self._scan()
        return out

    def _scan(self) -> list[Line]:
        out: list[Line] = []
        files = sorted(p for p in self.dir.iterdir() if p.suffix in (".csv", ".jsonl") and p.is_file())
        for path in files:
            start = self._offset.get(path, 0)
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
            end = data.rfind(b"\n") + 1  # only complete lines; the rest is read when its newline comes
            if end == 0:
                continue
            self._offset[path] = start + end
            for text in data[:end].decode("utf-8", errors="replace").splitlines():
                n = self._lines.get(path, 0) + 1
                self._lines[path] = n
                out.append(Line(text, str(path), n))
        return out


def open_source(spec: str) -> Source:
    if spec == "-":
        return StreamSource(sys.stdin)
    return DirectorySource(Path(spec))


class LineParser:
    """Lines into a bar frame (with _line/_file) and rejection records for lines that do not parse."""

    def __init__(self) -> None:
        self._header: dict[str, list[str]] = {}  # file -> CSV columns

    def parse(self, lines: list[Line]) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        bad: list[dict[str, Any]] = []
        for line in lines:
            text = line.text.strip()
            if not text:
                continue
            try:
                if text.startswith("{"):
                    fields = json.loads(text)
                    if not isinstance(fields, dict):
                        raise ValueError("not a JSON object")
                elif line.file not in self._header:
                    self._header[line.file] = [c.strip() for c in text.split(",")]
                    continue
                else:
                    names = self._header[line.file]
                    values = text.split(",")
                    if len(values) != len(names):
                        raise ValueError(f"{len(values)} fields, the header has {len(names)}")
                    fields = dict(zip(names, (v.strip() for v in values)))
            except ValueError as exc:
                bad.append(record("", "", "unparseable", str(exc), column="", value=text[:200], line=line.number,
                                  file=line.file))
                continue
            row, problem = _bar(fields, line)
            if problem is not None:
                bad.append(problem)
            else:
                rows.append(row)
        schema = {"pair": pl.String, "ts": TS_DTYPE, **{c: pl.Float64 for c in NUMBERS}, "_line": pl.Int64,
                  "_file": pl.String}
        return pl.DataFrame(rows, schema=schema), bad


def _bar(fields: dict[str, Any], line: Line) -> tuple[dict[str, Any], dict[str, Any] | None]:
    pair = str(fields.get("pair", "")).strip().upper()
    where = {"line": line.number, "file": line.file}
    raw_ts = fields.get("ts")
    try:
        ts = datetime.fromisoformat(str(raw_ts).replace("Z", "+00:00"))
    except ValueError:
        return {}, record(pair, str(raw_ts), "bad-timestamp", column="ts", value=str(raw_ts), **where)
    if ts.tzinfo is None:
        return {}, record(pair, str(raw_ts), "naive-timestamp", column="ts", value=str(raw_ts), **where)
    row: dict[str, Any] = {"pair": pair, "ts": ts, "_line": line.number, "_file": line.file}
    for name in NUMBERS:
        value = fields.get(name)
        if value in (None, ""):
            if name in ("open", "high", "low", "close"):
                return {}, record(pair, ts.isoformat(), "missing-column", f"no {name}", column=name, value="", **where)
            row[name] = 0.0 if name == "volume" else None
            continue
        try:
            row[name] = float(value)
        except (TypeError, ValueError):
            return {}, record(pair, ts.isoformat(), "bad-number", column=name, value=str(value), **where)
    return row, None
