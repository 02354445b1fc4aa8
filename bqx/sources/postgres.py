"""Bars from a PostgreSQL database: the bar source of the "postgresql" scheme (bqx.connect.sources).

Both `bqx ingest postgresql://...` and a run with that source read the database month by month,
incrementally (bqx.bars.ingest_postgres; layout and zones in docs/POSTGRESQL.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from bqx.connect.sources import IngestOptions

if TYPE_CHECKING:
    from bqx.bars.ingest_report import IngestReport


class DatabaseSource:
    """A PostgreSQL database of bars; a password in the URL is refused here, before anything connects."""

    scheme = "postgresql"

    def __init__(self, url: str):
        from bqx.bars.readers.postgres import check_url

        check_url(str(url))
        self.url = str(url)

    def describe(self) -> str:
        from bqx.bars.readers.postgres import mask_url

        return mask_url(self.url)

    def ingest(self, store: Path, options: IngestOptions) -> "IngestReport":
        from bqx.bars.ingest_postgres import ingest_postgres
        from bqx.bars.readers.postgres import PgLayout
        from bqx.bars.timezones import ZoneMap

        zones = ZoneMap.of(options.tz)
        table = {"table": options.table} if options.table else {}
        layout = PgLayout(**table, pair_column=options.pair_column, column_map=options.column_map, tz=zones.default,
                          zones=dict(zones.pairs) or None)
        return ingest_postgres(self.url, store, layout, policy=options.policy, pairs=options.pairs,
                               run_id=options.run_id, on_month=options.on_month, lock=options.lock)

    def write_into(self, store: Path, *, pairs: Sequence[str] | None, start: str | None, end: str | None) -> int:
        """The selected pairs' bars, every month the database has (the default layout m1_{pair})."""
        from bqx.bars.ingest_postgres import ingest_postgres

        return ingest_postgres(self.url, store, pairs=pairs, lock=False).rows_out


__all__ = ["DatabaseSource"]
