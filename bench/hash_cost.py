"""What content checksums cost (docs/INTEGRITY.md): CRC-32 at write, in `bqx verify` and in the export.

    PYTHONPATH=. python bench/hash_cost.py STORE [--repeat 9] [--scale 5]

Measured in CPU seconds (time.process_time, the median of `--repeat` alternating runs), which a
loaded machine disturbs far less than wall time: (1) writing each stage file of STORE with the plain pinned writer (bqx.io.write_parquet)
against the checksumming one (bqx.store.layout.write_parquet); (2) reading every recorded file
with and without hashing it; (3) the export's reads: polars from the path against checksum through a memory map, then polars. Prints
CPU seconds per GB and the extrapolation to the year's 30.4 GB written by the run (docs/SCALING.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

YEAR_GB = 30.4  # bytes the full-year run writes and the export reads (docs/SCALING.md)
YEAR_RUN_CPU, YEAR_RUN_WALL = 458.0, 256.0
YEAR_EXPORT_CPU, YEAR_EXPORT_WALL = 257.0, 164.0


def cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def paired(plain, checked, repeat: int) -> tuple[float, float]:
    """Median CPU seconds of `plain` and of `checked`, run alternately (a loaded machine drifts)."""
    import statistics

    a, b = [], []
    for _ in range(repeat):
        for fn, out in ((plain, a), (checked, b)):
            t = time.process_time()
            fn()
            out.append(time.process_time() - t)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--scale", type=int, default=5)
    a = ap.parse_args()
    from bqx.io import write_parquet
    from bqx.store.checksum import checked_path, digest_bytes, expected_hashes, recorded_files
    from bqx.store.layout import write_parquet as write_parquet_hashed
    from bqx.store.state import open_state

    state = open_state(a.store)
    recs = recorded_files(state)
    hashes = expected_hashes(state)
    files = [a.store / r.rel for r in recs] * a.scale  # each file several times: a signal above the noise
    gb = sum(f.stat().st_size for f in files) / 1e9
    frames = [pl.read_parquet(f) for f in files if "/bars/" not in str(f) and not str(f).startswith(str(a.store / "bars"))]
    wgb = a.scale * sum(r.size for r in recs if not r.rel.startswith("bars/")) / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        plain, hashed = paired(lambda: [write_parquet(fr, Path(tmp) / f"{i}.parquet") for i, fr in enumerate(frames)],
                               lambda: [write_parquet_hashed(fr, Path(tmp) / f"{i}.parquet") for i, fr in enumerate(frames)],
                               a.repeat)
    read, read_hash = paired(lambda: [len(f.read_bytes()) for f in files],
                             lambda: [len(digest_bytes(f.read_bytes())) for f in files], a.repeat)

    def old_read() -> None:  # the export before checksums: polars reads each file from its path
        for f in files:
            pl.read_parquet(f)

    def new_read() -> None:  # now: checksummed through a memory map, then read by polars from the page cache
        for f in files:
            pl.read_parquet(checked_path(a.store, str(f.relative_to(a.store)), hashes))

    exp_plain, exp_check = paired(old_read, new_read, a.repeat)
    w_per_gb = (hashed - plain) / wgb
    r_per_gb = (read_hash - read) / gb
    e_per_gb = (exp_check - exp_plain) / gb
    print(f"store {a.store}: {len(files)} recorded files, {gb * 1e3:.1f} MB ({wgb * 1e3:.1f} MB of stage files)")
    print(f"write stage files: plain {plain:.3f} CPU-s, hashed {hashed:.3f} CPU-s -> +{w_per_gb:.2f} CPU-s per GB")
    print(f"read all files:    plain {read:.3f} CPU-s, hashed {read_hash:.3f} CPU-s -> +{r_per_gb:.2f} CPU-s per GB "
          f"(verify: {gb / max(read_hash, 1e-9):.2f} GB per CPU-s)")
    print(f"export's reads:    from path {exp_plain:.3f} CPU-s, checked first {exp_check:.3f} CPU-s -> "
          f"+{e_per_gb:.2f} CPU-s per GB")
    run_cpu = w_per_gb * YEAR_GB
    exp_cpu = max(e_per_gb, r_per_gb) * YEAR_GB
    print(f"year ({YEAR_GB} GB): run +{run_cpu:.0f} CPU-s = {100 * run_cpu / YEAR_RUN_CPU:.1f} % of {YEAR_RUN_CPU:.0f} CPU-s "
          f"(wall on 2 workers ~+{run_cpu / 2:.0f} s = {100 * run_cpu / 2 / YEAR_RUN_WALL:.1f} % of {YEAR_RUN_WALL:.0f} s); "
          f"export +{exp_cpu:.0f} CPU-s = {100 * exp_cpu / YEAR_EXPORT_CPU:.1f} % of {YEAR_EXPORT_CPU:.0f} CPU-s "
          f"(2 threads: ~+{exp_cpu / 2:.0f} s = {100 * exp_cpu / 2 / YEAR_EXPORT_WALL:.1f} % of {YEAR_EXPORT_WALL:.0f} s); "
          f"bqx verify of the year: ~{YEAR_GB / (gb / max(read_hash, 1e-9)):.0f} CPU-s")


if __name__ == "__main__":
    main()
