"""An independent plain-Python reference of the triple-barrier labels (FEATURES.md "labels"), row by row.

Written from the specification, sharing no code with bqx.families.labels: one loop per row, the
barrier search, the gap and data-end rules, then the uniqueness weights from the intervals.
"""

from __future__ import annotations

import math
from datetime import datetime


def reference_labels(ts: list[datetime], close: list[float], sigma: list[float | None],
                     absmean: list[float | None], h: int, width: float = 1.0,
                     max_gap: int = 60) -> dict[str, list[float | None]]:
    n = len(close)
    side: list[float | None] = [None] * n
    t1: list[int | None] = [None] * n
    ret: list[float | None] = [None] * n
    for t in range(n):
        s = sigma[t]
        if s is None or s <= 1e-12 or (absmean[t] is not None and s <= 1e-9 * absmean[t]):
            continue
        u = width * s * math.sqrt(h)
        end = None
        for j in range(1, h + 1):
            if t + j >= n:
                break
            z = math.log(close[t + j] / close[t])
            if z >= u - 1e-12:
                end = (j, 1, z)
                break
            if z <= -u + 1e-12:
                end = (j, -1, z)
                break
            if j == h:
                end = (h, 0, z)
        if end is None:
            continue
        j, hit, z = end
        if any((ts[v] - ts[v - 1]).total_seconds() > max_gap * 60 for v in range(t + 1, t + j + 1)):
            continue
        side[t], t1[t], ret[t] = float(hit), j, z
    # per row u: how many labels' intervals (s, s + t1_s] contain it, and whether a label that could is NULL
    n_u: list[int] = [0] * n
    unknown_u: list[bool] = [False] * n
    for u in range(n):
        for s in range(u - h, u):
            if s < 0 or t1[s] is None:
                unknown_u[u] = True
            elif u <= s + t1[s]:
                n_u[u] += 1
    weight: list[float | None] = [None] * n
    for t in range(n):
        if t1[t] is None:
            continue
        interval = range(t + 1, t + t1[t] + 1)
        if not any(unknown_u[u] for u in interval):
            weight[t] = sum(1.0 / n_u[u] for u in interval) / t1[t]
    return {f"lbl_tb_h{h}_side": side, f"lbl_tb_h{h}_t1": [None if v is None else float(v) for v in t1],
            f"lbl_tb_h{h}_ret": ret, f"lbl_tb_h{h}_w": weight}
