"""Two stores hold the same values: every column of every partition, and the state the manifests record.

    PYTHONPATH=. python bench/compare_stores.py STORE_A STORE_B [--fingerprints]   (a local path or an s3:// URL each)

The partitions compared are those the manifests record (bars months and the outputs of done
tasks; a store is what its manifest says, not what a listing shows), read through the store's own
state (bqx.store.state) and compared frame-equal (same columns, dtypes, rows and values; NULL and
NaN are told apart). Also compared: the baseline time, the parameters, the pair infos, the anchors,
the bars digests and the set of done tasks. `--fingerprints` also compares the task fingerprints,
which hold the code's digest (two checkouts of different code differ there and nowhere else).
Prints one line per difference and exits 1 if there is any, else prints what was compared and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from bqx.store.checksum import recorded_files
from bqx.store.layout import read_partition
from bqx.store.state import StoreState, open_state


def read_file(root: str, rel: str) -> pl.DataFrame:
    """One store file (a local root or an s3:// URL, and the file's path in the store), through its backend."""
    return read_partition(root, rel)


def state_differences(a: StoreState, b: StoreState, *, fingerprints: bool = False) -> list[str]:
    out = []
    for name in ("baseline", "params", "pairs", "anchors"):
        if getattr(a, name) != getattr(b, name):
            out.append(f"state: {name} differ: {getattr(a, name)!r} != {getattr(b, name)!r}"[:400])
    digests_a = {k: v[0:2] for k, v in a.bars.items()}
    digests_b = {k: v[0:2] for k, v in b.bars.items()}
    for key in sorted(set(digests_a) | set(digests_b)):
        if digests_a.get(key) != digests_b.get(key):
            out.append(f"bars {key[0]} {key[1]}: (digest, rows) {digests_a.get(key)} != {digests_b.get(key)}")
    done_a = {k: t for k, t in a.tasks.items() if t.status == "done"}
    done_b = {k: t for k, t in b.tasks.items() if t.status == "done"}
    for key in sorted(set(done_a) ^ set(done_b), key=lambda k: (k[0], k[1] or "", k[2])):
        out.append(f"task {key}: done in {'A' if key in done_a else 'B'} only")
    for key in sorted(set(done_a) & set(done_b), key=lambda k: (k[0], k[1] or "", k[2])):
        ta, tb = done_a[key], done_b[key]
        if ta.rows != tb.rows:
            out.append(f"task {key}: rows {ta.rows} != {tb.rows}")
        if fingerprints and ta.fingerprint != tb.fingerprint:
            out.append(f"task {key}: fingerprint {ta.fingerprint} != {tb.fingerprint}")
    return out


def partition_differences(a: StoreState, b: StoreState) -> tuple[list[str], int, int, int]:
    """(differences, files compared, columns compared, cells compared) over every file both manifests record."""
    files_a = {r.rel: r for r in recorded_files(a)}
    files_b = {r.rel: r for r in recorded_files(b)}
    out = [f"file {rel}: recorded in {'A' if rel in files_a else 'B'} only"
           for rel in sorted(set(files_a) ^ set(files_b))]
    n_files = n_cols = n_cells = 0
    for rel in sorted(set(files_a) & set(files_b)):
        fa, fb = read_file(a.root, rel), read_file(b.root, rel)
        try:
            assert_frame_equal(fa, fb, check_exact=True)
        except AssertionError as exc:
            out.append(f"file {rel}: {' '.join(str(exc).split())[:300]}")
        n_files += 1
        n_cols += fa.width
        n_cells += fa.width * fa.height
    return out, n_files, n_cols, n_cells


def compare(root_a: str, root_b: str, *, fingerprints: bool = False) -> tuple[list[str], dict[str, Any]]:
    a, b = open_state(root_a), open_state(root_b)
    diffs = state_differences(a, b, fingerprints=fingerprints)
    part_diffs, n_files, n_cols, n_cells = partition_differences(a, b)
    return diffs + part_diffs, {"files": n_files, "columns": n_cols, "cells": n_cells,
                                "tasks_done": sum(t.status == "done" for t in a.tasks.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store_a")
    ap.add_argument("store_b")
    ap.add_argument("--fingerprints", action="store_true", help="also compare task fingerprints (code digests)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    diffs, counts = compare(os.fspath(args.store_a), os.fspath(args.store_b), fingerprints=args.fingerprints)
    for line in diffs:
        print(line)
    print(f"{len(diffs)} difference(s); compared {counts['files']} files, {counts['columns']} columns, "
          f"{counts['cells']} cells, {counts['tasks_done']} done tasks in {time.perf_counter() - t0:.1f}s")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
