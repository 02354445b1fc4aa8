"""Which targets and labels an export carries, and each row's span: how many rows ahead its targets reach.

A fixed-horizon target `target_bqx_h{h}` spans h rows; a triple-barrier label `lbl_tb_h{h}_*`
spans its `lbl_tb_h{h}_t1` (NULL counted as h). A row's span is the largest over the exported
targets and labels (PIPELINE.md §7, Cross-validation folds); the default split purge is the
largest span any row can have.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from bqx.errors import UsageError

TARGET_STAGE = "targets"
_TARGET = re.compile(r"target_bqx_h(\d+)$")
_LABEL = re.compile(r"(lbl_tb_h(\d+))_(side|t1|ret|w)$")


def horizon_of(column: str, fallback: int) -> tuple[int, str | None]:
    """(h, the t1 column giving the row's span or None for a fixed span h); `fallback` for an unknown column."""
    m = _LABEL.match(column)
    if m:
        return int(m.group(2)), f"{m.group(1)}_t1"
    m = _TARGET.match(column)
    if m:
        return int(m.group(1)), None
    return int(fallback), None


def pick_targets(available: Sequence[str], wanted: Sequence[str] | None, families: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The exported target and label columns: all by default; else each token is a family (targets, labels),
    a column, or a column prefix (lbl_tb_h30, target_bqx_h15). A label column brings its horizon's four."""
    if not wanted:
        return tuple(available)
    chosen: set[str] = set()
    for token in wanted:
        if token in families:
            hit = [c for c in families[token] if c in available]
        else:
            hit = [c for c in available if c == token or c.startswith(token + "_")]
        if not hit:
            raise UsageError(f"--targets {token!r} matches no target or label column",
                             hint="Use targets, labels, a column such as target_bqx_h15, or a label horizon such as lbl_tb_h30.")
        chosen.update(hit)
    for c in list(chosen):
        m = _LABEL.match(c)
        if m:
            chosen.update(f"{m.group(1)}_{part}" for part in ("side", "t1", "ret", "w") if f"{m.group(1)}_{part}" in available)
    return tuple(c for c in available if c in chosen)


def largest_span(targets: Sequence[str], lookahead: Mapping[str, int]) -> int:
    """The largest span any row can have over these columns (the default purge before a split boundary)."""
    return max((horizon_of(c, lookahead.get(c, 0))[0] for c in targets), default=0)


def span_rule(targets: Sequence[str], lookahead: Mapping[str, int]) -> list[dict[str, object]]:
    """Per horizon group, what its span is, for the metadata."""
    seen: dict[str, dict[str, object]] = {}
    for c in targets:
        h, t1 = horizon_of(c, lookahead.get(c, 0))
        key = t1 or c
        seen.setdefault(key, {"columns": [], "span": f"{t1} (NULL counted as {h})" if t1 else str(h), "max": h})
        seen[key]["columns"].append(c)  # type: ignore[union-attr]
    return list(seen.values())


def row_spans(frame: pl.DataFrame, targets: Sequence[str], lookahead: Mapping[str, int]) -> np.ndarray:
    """Each row's span (int64): the largest over the targets' spans at that row."""
    span = np.zeros(frame.height, dtype=np.int64)
    done: set[str] = set()
    for c in targets:
        h, t1 = horizon_of(c, lookahead.get(c, 0))
        key = t1 or f"fixed{h}"
        if key in done:
            continue
        done.add(key)
        if t1 is None:
            span = np.maximum(span, h)
        else:
            span = np.maximum(span, frame[t1].fill_null(float(h)).to_numpy().astype(np.int64))
    return span
