"""Helpers for the engine tests: synthetic bars and reading a store back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bqx.engine.partitions import month_start


def synth_bars(pairs=("EURUSD", "USDJPY"), months=None, seed=0) -> pl.DataFrame:
    """Minute bars from each month's first minute: a seeded random walk per pair; months = {month: rows}."""
    months = months or {"2024-01": 1500, "2024-02": 1500, "2024-03": 1500}
    frames = []
    for k, pair in enumerate(pairs):
        rng = np.random.default_rng([seed, k])
        level = 150.0 if pair.endswith("JPY") else 1.1
        for month, n in months.items():
            t0 = month_start(month)
            ts = [t0 + timedelta(minutes=i) for i in range(n)]
            close = level * np.exp(np.cumsum(rng.normal(0, 2e-4, n)))
            level = float(close[-1])
            open_ = np.concatenate([[close[0]], close[:-1]])
            spread = np.abs(rng.normal(0, 1e-4, n)) * level
            frames.append(pl.DataFrame({
                "pair": pair, "ts": ts, "open": open_, "close": close,
                "high": np.maximum(open_, close) + spread, "low": np.minimum(open_, close) - spread,
                "volume": rng.integers(1, 50, n).astype(float),
                "bid_close": close - 1e-5 * level, "ask_close": close + 1e-5 * level,
            }))
    return pl.concat(frames).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))



def read_store(root: Path, stages) -> dict[str, pl.DataFrame]:
    """Every data file of `stages`, keyed by its path in the store."""
    out = {}
    for stage in stages:
        for f in sorted((Path(root) / stage).rglob("data.parquet")):
            out[str(f.relative_to(root))] = pl.read_parquet(f)
    return out


def done_keys(result) -> set[tuple[str, str | None, str]]:
    return {(d["stage"], d["pair"], d["month"]) for d in result.done}
