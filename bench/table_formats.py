"""Hive Parquet + the manifest against Delta Lake and Iceberg, on one stage of a real bqx store.

Runs with its OWN venv: the table formats are not bqx dependencies and must not become ones.

    python3.11 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install deltalake 'pyiceberg[sql-sqlite,pyarrow]' polars pyarrow numpy
    /work/tfvenv/bin/python bench/table_formats.py --store /tmp/tf/store --stage regression
    /work/tfvenv/bin/python bench/table_formats.py --store /tmp/tf/store --stage rate_index --commits 300 --writers 2

The bqx store is only read: its `<stage>/pair=*/year_month=*/data.parquet` files are loaded into
memory, then written again into a scratch directory (`--work`, removed at the end) by each format:

- hive: bqx's way. One file per (pair, month), written atomically (temp file, fsync, rename) with
  bqx's own pinned writer (bqx/io.py, loaded by path so that bqx's other dependencies are not
  needed), plus one row per task upserted into a SQLite manifest (WAL, one transaction per task).
- delta: `deltalake.write_deltalake`, partitioned by pair and year_month, zstd. Once with one
  commit per partition (as a bqx task would commit), once with every partition in one commit.
- iceberg: pyiceberg with its SQL catalog on SQLite, identity-partitioned on pair and year_month
  (zstd is pyiceberg's default codec). Once with one append per partition, once with one append.

Each format reports write wall and CPU seconds, bytes and files (data and metadata apart), the cost
of replacing one (pair, month) (bqx rewrites one when it is recomputed), of reading one pair-month
back, and of opening the table (what a reader pays to learn what is complete).

`--commits N` repeats one partition as N synthetic months, committing each alone, to show how a
commit's cost grows with the table's history (bqx's 10-year store has ~10^5 (stage, pair, month)
partitions). `--writers K` starts K processes appending to one table at once, as K workers that
committed their own tasks would, and counts the commits that failed or had to retry.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent


def bqx_io():
    """bqx/io.py (the atomic write and the pinned Parquet writer) without importing the bqx package."""
    spec = importlib.util.spec_from_file_location("bqx_io_standalone", REPO / "bqx" / "io.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BQX_IO = bqx_io()


# -- measuring ------------------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.wall = self.cpu = 0.0


@contextmanager
def timed():
    c = Clock()
    w, p = time.perf_counter(), time.process_time()
    yield c
    c.wall, c.cpu = time.perf_counter() - w, time.process_time() - p


def footprint(root: Path) -> dict:
    """Files and bytes under `root`: data (.parquet) and metadata (everything else) apart."""
    out = {"data_files": 0, "data_bytes": 0, "meta_files": 0, "meta_bytes": 0}
    for f in root.rglob("*"):
        if f.is_file():
            kind = "data" if f.suffix == ".parquet" else "meta"
            out[f"{kind}_files"] += 1
            out[f"{kind}_bytes"] += f.stat().st_size
    return out


# -- the partitions -------------------------------------------------------------------------------

def load_partitions(store: Path, stage: str) -> list[tuple[str, str, pa.Table]]:
    parts = []
    for f in sorted((store / stage).glob("pair=*/year_month=*/data.parquet")):
        pair, month = f.parent.parent.name.split("=", 1)[1], f.parent.name.split("=", 1)[1]
        parts.append((pair, month, pq.read_table(f)))
    if not parts:
        sys.exit(f"{store / stage}: no partitions (is --store a bqx store and --stage one of its stages?)")
    return parts


def keyed(pair: str, month: str, table: pa.Table) -> pa.Table:
    """The partition with its keys as columns (Delta and Iceberg partition on columns, hive on paths)."""
    n = table.num_rows
    return table.append_column("pair", pa.array([pair] * n, pa.string())).append_column(
        "year_month", pa.array([month] * n, pa.string()))


def synthetic(parts: list[tuple[str, str, pa.Table]], n: int) -> list[tuple[str, str, pa.Table]]:
    """`n` partitions: the first one's rows under n synthetic months (1900-01, 1900-02, ...)."""
    pair, _, table = parts[0]
    return [(pair, f"{1900 + i // 12}-{i % 12 + 1:02d}", table) for i in range(n)]


# -- hive Parquet + manifest (bqx) -----------------------------------------------------------------

class Hive:
    name = "hive + manifest"

    def __init__(self, root: Path, create: bool = True):
        self.root = root
        root.mkdir(parents=True, exist_ok=not create)
        self.conn = sqlite3.connect(root / "manifest.sqlite", isolation_level=None, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        if create:
            self.conn.execute("CREATE TABLE tasks (stage TEXT, pair TEXT, month TEXT, status TEXT, rows INTEGER, "
                              "fingerprint TEXT, outputs TEXT, PRIMARY KEY (stage, pair, month))")

    def path(self, pair: str, month: str) -> Path:
        return self.root / "stage" / f"pair={pair}" / f"year_month={month}" / "data.parquet"

    def _commit(self, pair: str, month: str, table: pa.Table) -> None:
        p = self.path(pair, month)
        size, mtime = BQX_IO.atomic_write(p, lambda fh: BQX_IO.write_parquet_to(table, fh))
        self.conn.execute("BEGIN")
        self.conn.execute("INSERT OR REPLACE INTO tasks VALUES ('stage', ?, ?, 'done', ?, ?, ?)",
                          (pair, month, table.num_rows, "f" * 64,
                           json.dumps([[str(p.relative_to(self.root)), size, mtime]])))
        self.conn.execute("COMMIT")

    def write_each(self, parts) -> list[float]:
        times = []
        for pair, month, t in parts:
            w = time.perf_counter()
            self._commit(pair, month, t)
            times.append(time.perf_counter() - w)
        return times

    write_batch = write_each  # bqx has no multi-file commit: a batch is its partitions one by one

    def replace(self, pair: str, month: str, table: pa.Table) -> None:
        self._commit(pair, month, table)

    def open(self) -> int:
        conn = sqlite3.connect(f"file:{self.root / 'manifest.sqlite'}?mode=ro", uri=True)
        n = len(conn.execute("SELECT pair, month, outputs FROM tasks WHERE status='done'").fetchall())
        conn.close()
        return n

    def read(self, pair: str, month: str) -> pa.Table:
        return pq.read_table(self.path(pair, month))


# -- Delta Lake ----------------------------------------------------------------------------------

class Delta:
    name = "delta"

    def __init__(self, root: Path, floats: list[str] | None = None):
        from deltalake import ColumnProperties, WriterProperties

        self.root = root
        cols = {c: ColumnProperties(dictionary_enabled=False) for c in floats or ()}  # bqx's rule (--tuned)
        self.props = WriterProperties(compression="ZSTD", max_row_group_size=BQX_IO.ROW_GROUP_ROWS,
                                      column_properties=cols or None)

    def _write(self, table: pa.Table, **kw) -> None:
        from deltalake import write_deltalake

        write_deltalake(str(self.root), table, partition_by=["pair", "year_month"],
                        writer_properties=self.props, **kw)

    def write_each(self, parts) -> list[float]:
        times = []
        for pair, month, t in parts:
            w = time.perf_counter()
            self._write(keyed(pair, month, t), mode="append")
            times.append(time.perf_counter() - w)
        return times

    def write_batch(self, parts) -> list[float]:
        w = time.perf_counter()
        self._write(pa.concat_tables([keyed(*p) for p in parts]), mode="append")
        return [time.perf_counter() - w]

    def replace(self, pair: str, month: str, table: pa.Table) -> None:
        self._write(keyed(pair, month, table), mode="overwrite",
                    predicate=f"pair = '{pair}' AND year_month = '{month}'")

    def open(self) -> int:
        from deltalake import DeltaTable

        return len(DeltaTable(str(self.root)).file_uris())

    def read(self, pair: str, month: str) -> pa.Table:
        from deltalake import DeltaTable

        return DeltaTable(str(self.root)).to_pyarrow_table(
            filters=[("pair", "=", pair), ("year_month", "=", month)])

    def history(self) -> int:
        from deltalake import DeltaTable

        return DeltaTable(str(self.root)).version()


# -- Iceberg (pyiceberg, SQL catalog on SQLite) ---------------------------------------------------

def iceberg_catalog(root: Path):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("bench", uri=f"sqlite:///{root / 'catalog.sqlite'}", warehouse=f"file://{root / 'warehouse'}")


class Iceberg:
    name = "iceberg"

    def __init__(self, root: Path, schema: pa.Schema | None = None, tuned: bool = False):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        cat = iceberg_catalog(root)
        if schema is not None:  # create
            cat.create_namespace("bqx")
            # pyiceberg cannot turn dictionaries off; the smallest dictionary page makes pyarrow fall back at once
            props = {"write.parquet.dict-size-bytes": "1"} if tuned else {}
            table = cat.create_table("bqx.stage", schema=schema, properties=props)
            with table.update_spec() as spec:
                spec.add_identity("pair")
                spec.add_identity("year_month")
        self.table = cat.load_table("bqx.stage")

    def write_each(self, parts) -> list[float]:
        times = []
        for pair, month, t in parts:
            w = time.perf_counter()
            self.table.append(keyed(pair, month, t))
            times.append(time.perf_counter() - w)
        return times

    def write_batch(self, parts) -> list[float]:
        w = time.perf_counter()
        self.table.append(pa.concat_tables([keyed(*p) for p in parts]))
        return [time.perf_counter() - w]

    def replace(self, pair: str, month: str, table: pa.Table) -> None:
        self.table.dynamic_partition_overwrite(keyed(pair, month, table))

    def open(self) -> int:
        table = iceberg_catalog(self.root).load_table("bqx.stage")
        return len(list(table.scan().plan_files()))

    def read(self, pair: str, month: str) -> pa.Table:
        from pyiceberg.expressions import And, EqualTo

        table = iceberg_catalog(self.root).load_table("bqx.stage")
        return table.scan(row_filter=And(EqualTo("pair", pair), EqualTo("year_month", month))).to_arrow()


TUNED = False  # --tuned: Delta and Iceberg without dictionaries for float columns, as bqx's writer


def make(fmt: str, root: Path, parts) -> Hive | Delta | Iceberg:
    if fmt == "hive":
        return Hive(root)
    if fmt == "delta":
        schema = parts[0][2].schema
        return Delta(root, [f.name for f in schema if pa.types.is_floating(f.type)] if TUNED else None)
    return Iceberg(root, keyed(*parts[0]).schema, tuned=TUNED)


# -- the measurements -----------------------------------------------------------------------------

def compare(parts, work: Path, repeat: int) -> list[dict]:
    """Write, replace, open and read with each format, per partition and batched."""
    rows = []
    pair, month, table = parts[len(parts) // 2]
    for fmt in ("hive", "delta", "iceberg"):
        for mode in ("each", "batch"):
            if fmt == "hive" and mode == "batch":
                continue  # the same as "each": bqx has no multi-file commit
            root = work / f"{fmt}-{mode}"
            tf = make(fmt, root, parts)
            with timed() as c:
                times = (tf.write_each if mode == "each" else tf.write_batch)(parts)
            after_write = footprint(root)
            rep, opened, reads = [], [], []
            for _ in range(repeat):
                with timed() as r:
                    tf.replace(pair, month, table)
                rep.append(r)
                with timed() as o:
                    n_open = tf.open()
                opened.append(o)
                with timed() as rd:
                    back = tf.read(pair, month)
                reads.append(rd)
            got = back.drop_columns([c for c in ("pair", "year_month") if c in back.column_names])
            assert got.num_rows == table.num_rows and got.sort_by("ts").equals(table.sort_by("ts")), \
                f"{fmt}: the pair-month read back differs from the one written"
            rows.append({
                "format": fmt, "mode": mode, "partitions": len(parts), "commits": len(times),
                "write_wall": c.wall, "write_cpu": c.cpu, **{f"write_{k}": v for k, v in after_write.items()},
                "replace_wall": statistics.median(x.wall for x in rep),
                "replace_cpu": statistics.median(x.cpu for x in rep),
                "open_wall": statistics.median(x.wall for x in opened), "open_entries": n_open,
                "read_wall": statistics.median(x.wall for x in reads),
                "read_cpu": statistics.median(x.cpu for x in reads),
                **{f"final_{k}": v for k, v in footprint(root).items()},
            })
            print(f"  {fmt:8s} {mode:5s} done: write {c.wall:.2f} s, replace {rows[-1]['replace_wall']:.3f} s, "
                  f"read {rows[-1]['read_wall']:.3f} s", flush=True)
            shutil.rmtree(root)
    return rows


def history_growth(parts, work: Path, n: int) -> list[dict]:
    """One commit per synthetic month, n of them: how a commit's cost grows with the table's history."""
    many = synthetic(parts, n)
    rows = []
    for fmt in ("hive", "delta", "iceberg"):
        root = work / f"{fmt}-history"
        tf = make(fmt, root, many)
        with timed() as c:
            times = tf.write_each(many)
        with timed() as o:
            tf.open()
        with timed() as rd:
            tf.read(*many[n // 2][:2])
        k = max(1, min(20, n // 10))
        rows.append({"format": fmt, "commits": n, "first_ms": 1e3 * statistics.mean(times[:k]),
                     "last_ms": 1e3 * statistics.mean(times[-k:]), "total_wall": c.wall, "total_cpu": c.cpu,
                     "open_wall": o.wall, "read_wall": rd.wall, "window": k, **footprint(root)})
        print(f"  {fmt:8s} {n} commits: first {k} {rows[-1]['first_ms']:.1f} ms, last {k} "
              f"{rows[-1]['last_ms']:.1f} ms each", flush=True)
        shutil.rmtree(root)
    return rows


def _writer(fmt: str, root: str, store: str, stage: str, who: int, k: int, start: float, out) -> None:
    """One of the concurrent writers: k appends of synthetic months of its own.

    Iceberg: pyiceberg retries a commit refused because another writer committed first (4 times,
    logged: counted here); one still refused (CommitFailedException) is retried here after
    refreshing the table, up to 20 times. Delta retries inside `write_deltalake` (not visible).
    """
    import logging

    class Retries(logging.Handler):  # pyiceberg retries a refused commit itself and logs each retry
        n = 0

        def emit(self, record: logging.LogRecord) -> None:
            Retries.n += "retrying" in record.getMessage()

    logging.getLogger().addHandler(Retries())
    parts = synthetic(load_partitions(Path(store), stage), (who + 1) * k)[who * k:]
    tf = Hive(Path(root), create=False) if fmt == "hive" else Delta(Path(root)) if fmt == "delta" else Iceberg(Path(root))
    while time.time() < start:
        time.sleep(0.001)
    ok, failed, retries, errors = 0, 0, 0, []
    t = time.perf_counter()
    for pair, month, table in parts:
        for attempt in range(21):
            try:
                tf.write_each([(pair, month, table)])
                ok += 1
                break
            except Exception as exc:  # noqa: BLE001 - counted and reported: the point of the measurement
                errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                if fmt != "iceberg" or type(exc).__name__ != "CommitFailedException" or attempt == 20:
                    failed += 1
                    break
                retries += 1
                tf.table.refresh()
    out.put({"who": who, "ok": ok, "failed": failed, "retries": retries + Retries.n, "seconds": time.perf_counter() - t,
             "errors": errors[:2]})


def concurrent(store: Path, stage: str, work: Path, writers: int, k: int) -> list[dict]:
    """`writers` processes each append k partitions to one table at the same moment."""
    rows = []
    ctx = mp.get_context("spawn")
    parts = load_partitions(store, stage)
    for fmt in ("hive", "delta", "iceberg"):
        root = work / f"{fmt}-concurrent"
        tf = make(fmt, root, parts)
        if fmt == "delta":  # create the table first, as bqx's driver would before submitting tasks
            tf.write_each([(parts[0][0], "1899-12", parts[0][2])])
        out = ctx.Queue()
        start = time.time() + 3.0
        procs = [ctx.Process(target=_writer, args=(fmt, str(root), str(store), stage, w, k, start, out))
                 for w in range(writers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=900) for _ in procs]
        for p in procs:
            p.join()
        with timed() as o:
            entries = tf.open() if fmt != "iceberg" else Iceberg(root).open()
        expected = writers * k + (1 if fmt == "delta" else 0)
        rows.append({"format": fmt, "writers": writers, "per_writer": k,
                     "ok": sum(r["ok"] for r in results), "failed": sum(r["failed"] for r in results),
                     "retries": sum(r["retries"] for r in results),
                     "entries": entries, "expected": expected, "errors": [e for r in results for e in r["errors"]][:3],
                     "seconds": max(r["seconds"] for r in results)})
        print(f"  {fmt:8s} {writers} writers x {k}: {rows[-1]['ok']} ok, {rows[-1]['retries']} retried, "
              f"{rows[-1]['failed']} failed, "
              f"{entries} of {expected} entries visible", flush=True)
        shutil.rmtree(root)
    return rows


# -- printing -------------------------------------------------------------------------------------

def kb(n: float) -> str:
    return f"{n / 1e3:,.0f} kB" if n < 1e6 else f"{n / 1e6:,.1f} MB"


def print_compare(rows: list[dict]) -> None:
    print("\n| format | commits | write wall / CPU s | data files, bytes | metadata files, bytes | "
          "replace one pair-month wall / CPU s | after replace: data files, bytes | open (entries) s | "
          "read one pair-month s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['format']} ({r['mode']}) | {r['commits']} | {r['write_wall']:.2f} / {r['write_cpu']:.2f} | "
              f"{r['write_data_files']}, {kb(r['write_data_bytes'])} | {r['write_meta_files']}, "
              f"{kb(r['write_meta_bytes'])} | {r['replace_wall']:.3f} / {r['replace_cpu']:.3f} | "
              f"{r['final_data_files']}, {kb(r['final_data_bytes'])} | {r['open_wall']:.3f} ({r['open_entries']}) | "
              f"{r['read_wall']:.3f} |")


def print_history(rows: list[dict]) -> None:
    print("\n| format | commits | first commits ms each | last commits ms each | all, wall / CPU s | "
          "metadata files, bytes | open s | read one s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['format']} | {r['commits']} | {r['first_ms']:.1f} (first {r['window']}) | "
              f"{r['last_ms']:.1f} (last {r['window']}) | {r['total_wall']:.1f} / {r['total_cpu']:.1f} | "
              f"{r['meta_files']}, {kb(r['meta_bytes'])} | {r['open_wall']:.3f} | {r['read_wall']:.3f} |")


def print_concurrent(rows: list[dict]) -> None:
    print("\n| format | writers x appends | committed | retried | failed | visible entries / expected | slowest writer s | first errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['format']} | {r['writers']} x {r['per_writer']} | {r['ok']} | {r['retries']} | {r['failed']} | "
              f"{r['entries']} / {r['expected']} | {r['seconds']:.1f} | {'; '.join(r['errors'])[:300]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", required=True, help="a bqx store directory (only read)")
    ap.add_argument("--stage", default="regression", help="the stage whose partitions are written (default regression)")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temp dir; removed at the end)")
    ap.add_argument("--repeat", type=int, default=3, help="replace/open/read this many times (median)")
    ap.add_argument("--commits", type=int, default=0, help="also: this many one-partition commits (history growth)")
    ap.add_argument("--writers", type=int, default=0, help="also: this many concurrent writer processes")
    ap.add_argument("--appends", type=int, default=20, help="appends per concurrent writer")
    ap.add_argument("--skip-compare", action="store_true", help="only --commits / --writers")
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    ap.add_argument("--tuned", action="store_true",
                    help="Delta and Iceberg without dictionary encoding of floats (bqx's writer rule), to tell the "
                         "format's cost from its writer's defaults")
    args = ap.parse_args()
    global TUNED
    TUNED = args.tuned

    import deltalake
    import pyiceberg

    store = Path(args.store)
    work = Path(args.work or tempfile.mkdtemp(prefix="bqx-tf-"))
    work.mkdir(parents=True, exist_ok=True)
    parts = load_partitions(store, args.stage)
    print(f"{args.stage}: {len(parts)} partitions, {sum(t.num_rows for *_, t in parts):,d} rows, "
          f"{parts[0][2].num_columns} columns; deltalake {deltalake.__version__}, pyiceberg {pyiceberg.__version__}, "
          f"pyarrow {pa.__version__}; scratch {work}; load average {os.getloadavg()[0]:.1f}", flush=True)
    out: dict = {"stage": args.stage, "partitions": len(parts), "tuned": args.tuned}
    try:
        if not args.skip_compare:
            out["compare"] = compare(parts, work, args.repeat)
            print_compare(out["compare"])
        if args.commits:
            out["history"] = history_growth(parts, work, args.commits)
            print_history(out["history"])
        if args.writers:
            out["concurrent"] = concurrent(store, args.stage, work, args.writers, args.appends)
            print_concurrent(out["concurrent"])
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
