"""The ingest stage's tables: per-file accounting, the canonical records, the quarantine."""

import duckdb

from curation_assets.curation.schema import (
    INGESTED_AT,
    LINE_NO,
    SOURCE,
    SOURCE_FILE,
    Column,
    Table,
)

INGEST_BATCHES = Table(
    "ingest_batches",
    "One row per ingested inbox file: what was read, loaded and quarantined.",
    (
        Column("batch", "VARCHAR", "Batch id (the inbox file's partition key).", "PRIMARY KEY"),
        SOURCE_FILE,
        Column("file_format", "VARCHAR", "Format it was read as (jsonl, csv, parquet, ...)."),
        Column("sha256", "VARCHAR", "Content hash of the file when it was read."),
        Column("units_read", "BIGINT", "Lines, rows or documents read from the file."),
        Column("records_loaded", "BIGINT", "Units that became records in raw_scrapes."),
        Column("records_quarantined", "BIGINT", "Units that went to quarantine."),
        INGESTED_AT,
        Column("read_key", "VARCHAR", "Hash of the file and the reading settings."),
    ),
)

RAW_SCRAPES = Table(
    "raw_scrapes",
    "Every record of every ingested file, mapped to the canonical record.",
    (
        Column("record_id", "VARCHAR", "batch:line, unique per raw record.", "PRIMARY KEY"),
        Column("example_id", "VARCHAR", "Hash of the normalized content.", "NOT NULL"),
        Column("batch", "VARCHAR", "Batch (inbox file) it came from.", "NOT NULL"),
        SOURCE_FILE,
        LINE_NO,
        SOURCE,
        Column("prompt", "VARCHAR", "Text shown to the model (instruction plus input)."),
        Column("response", "VARCHAR", "Target: the label or the answer."),
        Column("original", "VARCHAR", "The record's original fields as JSON."),
        INGESTED_AT,
    ),
)

QUARANTINE = Table(
    "quarantine",
    "Lines and files that could not become records, each with its reason.",
    (
        Column("batch", "VARCHAR", "Batch (inbox file) it came from.", "NOT NULL"),
        SOURCE_FILE,
        LINE_NO,
        Column("reason", "VARCHAR", "Why it was quarantined.", "NOT NULL"),
        Column("raw", "VARCHAR", "The unit as read (shortened), for inspection."),
        INGESTED_AT,
    ),
)

TABLES = (INGEST_BATCHES, RAW_SCRAPES, QUARANTINE)


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    """Create the given (default: all) ingest tables if they do not exist yet."""
    chosen = [t for t in TABLES if names is None or t.name in names]
    for table in chosen:
        table.create(con)
    if INGEST_BATCHES in chosen:  # warehouses made before read_key existed
        con.execute("ALTER TABLE ingest_batches ADD COLUMN IF NOT EXISTS read_key VARCHAR")
