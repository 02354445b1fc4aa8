"""The bar sources of `bqx ingest` and `bqx run --source`, one module per URL scheme (bqx.connect.sources).

- `files`: local bar files (CSV or Parquet), the "file" scheme;
- `postgres`: a PostgreSQL database, the "postgresql" scheme.
"""
