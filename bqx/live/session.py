"""`Live`: the features of each new minute's bars, computed as a batch run stores them."""

from __future__ import annotations

import importlib
import logging
import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.bar_schema import BAR_COLUMNS, TS_DTYPE
from bqx.errors import UsageError
from bqx.live import checks
from bqx.live.batch import Batched
from bqx.live.compute import compute_minute
from bqx.live.plan import live_plan, reads_depth
from bqx.live.tail import PairTail
from bqx.live.warm import anchors_for, read_tail, store_state
from bqx.store.layout import store_root
from bqx.store.state import open_state
from bqx.universe import PAIR_NAMES

OnMissing = Literal["wait", "carry"]
STATUS_OK, STATUS_CARRIED = "ok", "carried"
_VALUE_COLUMNS = tuple(c for c in BAR_COLUMNS if c != "ts")
#: (family function, params, pair info) -> the columns it reads; found once per process
_READS: dict[tuple[Any, ...], tuple[str, ...]] = {}


class Live:
    """Per pair, the cached tail each family needs; `update(bars)` returns the features of the new minutes.

    `store_or_config`: a store directory (computed by `bqx run`) or a `bqx.config.Config` (its
    store and family parameters). `pairs`: default every pair of the store. `until`: start from
    the stored rows before this time (default: after the store's last bar).

    A minute is computed when every pair has its bar, or, for a pair still missing: with
    `on_missing="carry"` at once; with `on_missing="wait"` once `wait_seconds` have passed since the
    minute's first bar (checked on every `update` and `poll`), or as soon as the pair's next bar
    shows the missing one cannot come in order. A missing pair has no bar at that minute, exactly as
    a batch run over the same bars; its row in the result repeats its last features with
    `live_status="carried"` and `live_bar_ts` the time of the bar they belong to.
    """

    def __init__(self, store_or_config: Any, pairs: Sequence[str] | None = None, *, until: datetime | str | None = None,
                 on_missing: OnMissing = "carry", wait_seconds: float = 0.0, families: Sequence[str] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        from bqx.config import Config

        if on_missing not in ("wait", "carry"):
            raise UsageError(f"on_missing must be 'wait' or 'carry', not {on_missing!r}")
        params_override: dict[str, dict[str, Any]] = {}
        if isinstance(store_or_config, Config):
            root = store_root(store_or_config.store)
            params_override = {k: dict(v) for k, v in store_or_config.families.items()}
            for module in store_or_config.plugins:
                importlib.import_module(module)
        else:
            root = store_root(os.fspath(store_or_config))  # a Path, or the URL of a store on object storage
        self.root = root
        opened = open_state(root)
        if pairs is None:
            pairs = sorted(opened.catalog)
        unknown = [p for p in pairs if p not in PAIR_NAMES]
        if unknown:
            raise UsageError(f"unknown pairs {unknown}", hint="Pairs are the 28 majors, e.g. EURUSD.")
        self.pairs = tuple(sorted(pairs))
        state = store_state(root, self.pairs, opened)
        _same_params(params_override, state.params)
        self.state = state
        self.infos = {p: state.pair_info(p) for p in self.pairs}  # the session's pairs only, as a batch task's
        self.plan = live_plan(state.params or None, list(families) if families is not None else None)
        self.columns = self.plan.columns
        self.anchors = anchors_for(self.plan, state, self.pairs)
        if isinstance(until, str):
            until = datetime.fromisoformat(until)
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=timezone.utc)
        logging.getLogger("bqx.families").setLevel(logging.ERROR)
        self.tails = {p: PairTail(p, self.plan.depth, read_tail(root, p, self.plan, until)) for p in self.pairs}
        self.reads = self._probe()
        depth = reads_depth(self.plan, self.reads)
        for tail in self.tails.values():
            tail.reshape(depth)
        self._fill_views()
        self.batched = self._probe_batched()
        self.on_missing, self.wait_seconds, self.clock = on_missing, float(wait_seconds), clock
        self._pending: dict[int, dict[str, dict[str, Any]]] = {}  # ts -> pair -> bar
        self._arrived: dict[int, float] = {}
        self._last_ts = {p: self.tails[p].last_ts for p in self.pairs}  # last accepted bar, cached or pending
        self._done = max((t for t in self._last_ts.values() if t is not None), default=None)  # last computed minute
        self.rejected = checks.empty_rejects()  # the last update's rejected bars
        self.tables: dict[str, pl.DataFrame] = {}  # the last computed minute's table rows
        self.timings: dict[str, float] = {}  # family -> seconds, summed over updates
        self.accepted: list[dict[str, Any]] = []  # bars computed, for appending to the store (drain it)

    # -- public ----------------------------------------------------------------------------
    def update(self, bars: Any) -> pl.DataFrame:
        """Take new bars (any pairs, any minutes after the last); return the features of the minutes now complete."""
        frame = checks.as_frame(bars)
        good, rejects = checks.row_rejects(frame)
        more = []
        now = self.clock()
        for row in good.iter_rows(named=True):
            problem = self._admit(row)
            if problem is not None:
                more.append(problem)
                continue
            ts = _us(row["ts"])
            bar = {c: row.get(c) for c in _VALUE_COLUMNS}
            bar["_meta"] = (row.get("_line"), row.get("_file"))
            self._pending.setdefault(ts, {})[row["pair"]] = bar
            self._arrived.setdefault(ts, now)
            self._last_ts[row["pair"]] = ts
        if more:
            rejects = pl.concat([rejects, pl.DataFrame(more, schema=checks.REJECT_SCHEMA)])
        self.rejected = rejects
        return self._release(now)

    def poll(self) -> pl.DataFrame:
        """Release the minutes whose wait is over (call it when no bars came for a while)."""
        return self._release(self.clock())

    def flush(self) -> pl.DataFrame:
        """Compute every pending minute now, whatever is missing (end of input)."""
        return self._release(float("inf"))

    @property
    def pending(self) -> list[datetime]:
        return [_dt(t) for t in sorted(self._pending)]

    @property
    def last_bars(self) -> dict[str, datetime | None]:
        """Each pair's last accepted bar (cached or pending): where a source continues from."""
        return {p: None if t is None else _dt(t) for p, t in self._last_ts.items()}

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tails."""
        return sum(t.nbytes for t in self.tails.values())

    def drain_accepted(self) -> pl.DataFrame:
        """The bars computed since the last call, as a bar frame with `pair` (for appending to the store)."""
        rows, self.accepted = self.accepted, []
        schema = {"pair": pl.String, "ts": TS_DTYPE, **{c: pl.Float64 for c in _VALUE_COLUMNS}}
        return pl.DataFrame(rows, schema=schema)

    # -- internals -------------------------------------------------------------------------
    def _admit(self, row: Mapping[str, Any]) -> dict[str, Any] | None:
        pair, ts = row["pair"], _us(row["ts"])
        text = _text(ts)
        meta = {"line": row.get("_line"), "file": row.get("_file")}
        if pair not in self.tails:
            return checks.record(pair, text, "not-followed", f"following {', '.join(self.pairs)}", column="pair",
                                 value=pair, **meta)
        last = self._last_ts[pair]
        if last is not None and ts == last:
            same = self._bar_at(pair, ts) == checks.bar_values(row)
            return checks.record(pair, text, "duplicate-identical" if same else "duplicate-conflict",
                                 "the bar already taken is kept", **meta)
        if last is not None and ts < last:
            return checks.record(pair, text, "out-of-order", f"{pair}'s last bar is at {_text(last)}", **meta)
        if self._done is not None and ts <= self._done:
            return checks.record(pair, text, "late-bar", f"minutes up to {_text(self._done)} are computed", **meta)
        return None

    def _bar_at(self, pair: str, ts: int) -> tuple:
        bar = self._pending.get(ts, {}).get(pair)
        if bar is not None:
            return tuple(bar[c] for c in _VALUE_COLUMNS)
        vals = self.tails[pair].last_values(_VALUE_COLUMNS)
        return tuple(vals[c] for c in _VALUE_COLUMNS)

    def _ready(self, ts: int, now: float) -> bool:
        have = self._pending[ts]
        missing = [p for p in self.pairs if p not in have]
        if not missing or self.on_missing == "carry":
            return True
        if now - self._arrived[ts] >= self.wait_seconds:
            return True
        return all(self._last_ts[p] is not None and self._last_ts[p] > ts for p in missing)

    def _release(self, now: float) -> pl.DataFrame:
        out = []
        for ts in sorted(self._pending):
            if not self._ready(ts, now):
                break
            try:
                out.append(self._compute(ts, self._pending.pop(ts)))
            except BaseException:
                self._forget_from(ts)
                raise
            self._arrived.pop(ts, None)
        if not out:
            return pl.DataFrame(schema=self.schema())
        return pl.concat(out)

    def _forget_from(self, ts: int) -> None:
        """A minute failed: drop it and every later pending bar, as if they never came (they may be sent again)."""
        for t in [t for t in self._pending if t >= ts]:
            self._pending.pop(t)
            self._arrived.pop(t, None)
        for p in self.pairs:
            times = [t for t, bars in self._pending.items() if p in bars]
            self._last_ts[p] = max(times) if times else self.tails[p].last_ts

    def _compute(self, ts: int, bars: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
        present = [p for p in self.pairs if p in bars]
        for p in present:
            values = {c: (np.nan if bars[p][c] is None else bars[p][c]) for c in _VALUE_COLUMNS}
            self.tails[p].append(ts, values)
        try:
            self.tables = compute_minute(self.plan, self.tails, present, ts, baseline=self.state.baseline,
                                         infos=self.infos, anchors=self.anchors, reads=self.reads,
                                         timings=self.timings, batched=self.batched)
        except BaseException:
            for p in present:
                self.tails[p].pop()
            raise
        self._done = ts
        shown = [p for p in self.pairs if self.tails[p].ts.end]
        for p in shown:
            if p in bars:
                self.accepted.append({"pair": p, "ts": _dt(ts), **{c: bars[p][c] for c in _VALUE_COLUMNS}})
        schema = self.schema()
        head = pl.DataFrame({"pair": shown, "ts": [_dt(ts)] * len(shown),
                             "live_status": [STATUS_OK if p in bars else STATUS_CARRIED for p in shown],
                             "live_bar_ts": [_dt(self.tails[p].last_ts) for p in shown]},
                            schema={k: schema[k] for k in ("pair", "ts", "live_status", "live_bar_ts")})
        values = np.array([self.tails[p].last_array(self.columns) for p in shown]).reshape(len(shown), len(self.columns))
        features = pl.DataFrame([pl.Series(c, np.ascontiguousarray(values[:, i]), dtype=pl.Float64, nan_to_null=True)
                                 for i, c in enumerate(self.columns)])
        return pl.concat([head, features], how="horizontal")

    def schema(self) -> dict[str, pl.DataType]:
        return {"pair": pl.String, "ts": TS_DTYPE, "live_status": pl.String, "live_bar_ts": TS_DTYPE,
                **{c: pl.Float64 for c in self.columns}}

    def _probe(self) -> dict[tuple[str, Any], tuple[str, ...]]:
        """Per family (and pair info), the columns it reads, found on the stored tail (bqx/live/usage.py)."""
        from bqx.core.declaration import check_output
        from bqx.live.compute import cross_ctx, cross_frame, pair_ctx
        from bqx.live.usage import read_columns

        reads: dict[tuple[str, Any], tuple[str, ...]] = {}
        last = max(t.last_ts for t in self.tails.values() if t.ts.end)
        infos, base = self.infos, self.state.baseline
        for f in self.plan.families:
            if f.family.cross_pair:
                key = (f.family.compute, tuple(sorted(f.params.items())), tuple(sorted(infos.items(), key=str)))
                if key not in _READS:
                    long = cross_frame(f, self.tails, last, f.visible)
                    ctx = cross_ctx(f, base, infos, self.anchors)
                    _READS[key] = read_columns(lambda fr, f=f, ctx=ctx: f.family.compute(fr, ctx), long)
                reads[(f.name, None)] = _READS[key]
                continue
            for p in self.pairs:
                info = infos[p]
                if (f.name, info) in reads or not self.tails[p].ts.end:
                    continue
                key = (f.family.compute, tuple(sorted(f.params.items())), info)
                if key not in _READS:
                    ctx = pair_ctx(f, p, base, infos, self.anchors)
                    frame = self.tails[p].frame(f.visible, f.rows)
                    _READS[key] = read_columns(
                        lambda fr, f=f, ctx=ctx: check_output(f.family, f.family.compute(fr, ctx), fr.height, f.params),
                        frame)
                reads[(f.name, info)] = _READS[key]
        return reads

    def _probe_batched(self) -> Batched:
        """The per-pair families run once a minute on every pair's tail concatenated (bqx/live/batch.py)."""
        from bqx.live.batch import probe
        from bqx.live.compute import pair_ctx

        infos, base = self.infos, self.state.baseline
        return probe(self.plan.families, self.tails, self.pairs,
                     lambda f, p: self.reads.get((f.name, infos[p]), f.visible),
                     lambda f, p: pair_ctx(f, p, base, infos, self.anchors))

    def _fill_views(self) -> None:
        """Views (lags) are not stored: compute the last stored row's values once, for carried rows."""
        from bqx.core.declaration import Ctx
        from bqx.core.runner import run_pair_family

        for f in self.plan.families:
            if not f.family.view:
                continue
            for p, tail in self.tails.items():
                if tail.ts.end:
                    ctx = Ctx(params=f.params, baseline_time=self.state.baseline, pair=self.infos[p],
                              pairs={p: self.infos[p]})
                    cols = self.reads.get((f.name, self.infos[p]), f.visible)
                    out = run_pair_family(f.family, tail.frame(cols, f.rows), ctx)
                    tail.set_last(dict(zip(out.columns, out.row(-1))))


def _same_params(given: Mapping[str, Mapping[str, Any]], stored: Mapping[str, Mapping[str, Any]]) -> None:
    from bqx.core.registry import REGISTRY

    for name, overrides in given.items():
        fam = REGISTRY.get(name)
        if fam.resolve_params(overrides) != fam.resolve_params(stored.get(name)):
            raise UsageError(f"family {name}: the configuration's parameters differ from the store's",
                             hint="Run `bqx run` with this configuration first, so batch and live agree.")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _text(us: int) -> str:
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S") + "Z"
