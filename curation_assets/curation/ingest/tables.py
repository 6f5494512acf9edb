"""The ingest stage's tables (declared in ``tables.yaml`` beside this module): per-file
accounting, the canonical records, the quarantine."""

import duckdb

from curation_assets.curation.schema import load_tables

INGEST_BATCHES, RAW_SCRAPES, QUARANTINE = load_tables(
    __file__, "ingest_batches", "raw_scrapes", "quarantine"
)
TABLES = (INGEST_BATCHES, RAW_SCRAPES, QUARANTINE)


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    """Create the given (default: all) ingest tables if they do not exist yet."""
    chosen = [t for t in TABLES if names is None or t.name in names]
    for table in chosen:
        table.create(con)
    if INGEST_BATCHES in chosen:  # warehouses made before read_key existed
        con.execute("ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS read_key VARCHAR")
