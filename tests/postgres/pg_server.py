"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, run as the `postgres` user.

A fresh cluster (initdb) in a temporary directory owned by `postgres`, listening on 127.0.0.1 on a
free port; password (scram-sha-256) authentication for TCP. `Server.stop()` removes everything.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ADMIN, ADMIN_PASSWORD = "postgres", "admin-secret"
USER, PASSWORD, DB = "bqx", "bqx-secret", "market"


def binaries() -> Path | None:
    """The newest installed PostgreSQL bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(args: list[str], **kw) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kw)


@dataclass
class Server:
    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, user: str = USER, db: str = DB) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{db}"

    def admin_uri(self, db: str = DB) -> str:
        return f"postgresql://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = DB):
        """An ADBC connection as the superuser (autocommit)."""
        import adbc_driver_postgresql.dbapi as pg

        return pg.connect(self.admin_uri(db), autocommit=True)

    def execute(self, *sql: str, db: str = DB) -> None:
        with self.connect(db) as conn, conn.cursor() as cur:
            for s in sql:
                cur.execute(s)

    def psql(self, sql: str, db: str = DB) -> str:
        """Run SQL with psql over the local socket (for statements COPY cannot wrap, like EXPLAIN)."""
        return _as_postgres([str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-d", db,
                             "-X", "-A", "-t", "-c", sql]).stdout

    def stop(self) -> None:
        try:
            _as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Server:
    """initdb + pg_ctl start; the `bqx` role (password) owns database `market`."""
    bindir = binaries()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed")
    root = Path(tempfile.mkdtemp(prefix="bqx-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    pwfile = root / "pw"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    server = Server(bindir, root, _free_port())
    _as_postgres([str(bindir / "initdb"), "-D", str(server.data), "-U", ADMIN, "--pwfile", str(pwfile),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"])
    opts = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c shared_buffers=128MB")
    try:
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(server.data), "-o", opts, "-l", str(root / "log"), "-w", "start"])
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from None
    server.execute(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'", f"CREATE DATABASE {DB} OWNER {USER}", db="postgres")
    server.execute(f"GRANT ALL ON SCHEMA public TO {USER}")
    return server


PRICE_SQL = {"float8": "double precision", "numeric": "numeric(18,10)", "real": "real"}


def create_bar_table(server: Server, name: str, months: list[str], *, price_type: str = "float8", pair_column: bool = False,
                     bidask: bool = True, ts_type: str = "timestamptz") -> None:
    """A bars table range-partitioned by month (one partition per month, `<name>_YYYY_MM`), owned by the `bqx` role."""
    cols = [f"ts {ts_type} NOT NULL"] + (["pair text NOT NULL"] if pair_column else [])
    names = ["open", "high", "low", "close", "volume"] + ([f"{s}_{p}" for s in ("bid", "ask") for p in ("open", "high", "low", "close")] if bidask else [])
    cols += [f"{c} {PRICE_SQL[price_type]}" for c in names]
    sql = [f"DROP TABLE IF EXISTS {name} CASCADE", f"CREATE TABLE {name} ({', '.join(cols)}) PARTITION BY RANGE (ts)"]
    suffix = "+00" if ts_type == "timestamptz" else ""
    for m in months:
        y, mo = int(m[:4]), int(m[5:])
        nxt = f"{y + (mo == 12):04d}-{mo % 12 + 1:02d}"
        sql.append(f"CREATE TABLE {name}_{y}_{mo:02d} PARTITION OF {name} "
                   f"FOR VALUES FROM ('{m}-01 00:00{suffix}') TO ('{nxt}-01 00:00{suffix}')")
    sql.append(f"ALTER TABLE {name} OWNER TO {USER}")
    server.execute(*sql)


def insert_bars(server: Server, name: str, frame) -> None:
    """Append a polars frame (columns named as the table's) with ADBC's bulk ingest (COPY)."""
    stage = name.replace(".", "_") + "_stage"
    cols = ", ".join(frame.columns)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {stage}")
        cur.adbc_ingest(stage, frame.to_arrow(), mode="create")
        cur.execute(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {stage}")
        cur.execute(f"DROP TABLE {stage}")


def load_market(server: Server, bars, *, pattern: str = "m1_{pair}", price_type: str = "float8",
                long_table: str | None = None) -> None:
    """Sample-market bars (with a `pair` column) into one partitioned table per pair, or one long table."""
    import polars as pl

    months = sorted(set(bars["ts"].dt.strftime("%Y-%m").to_list()))
    cast = {c: pl.Float64 for c in bars.columns if c not in ("ts", "pair")}
    if long_table:
        create_bar_table(server, long_table, months, price_type=price_type, pair_column=True)
        insert_bars(server, long_table, bars.cast(cast))
        return
    for (pair,), part in bars.partition_by("pair", as_dict=True, maintain_order=True).items():
        name = pattern.format(pair=pair.lower())
        create_bar_table(server, name, months, price_type=price_type)
        insert_bars(server, name, part.drop("pair").cast(cast))
