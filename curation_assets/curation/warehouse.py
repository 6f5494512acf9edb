"""The DuckDB warehouse: one table per asset, created here so every stage agrees on schemas.

Functions take an open ``duckdb`` connection; the caller owns it (Dagster's
``DuckDBResource`` in the pipeline, a read-only connection in the CLI).
"""

import duckdb

#: Table schemas, documented in the README ("Warehouse tables").
SCHEMAS: dict[str, str] = {
    "ingest_batches": """
        batch VARCHAR PRIMARY KEY, source_file VARCHAR, file_format VARCHAR, sha256 VARCHAR,
        units_read BIGINT, records_loaded BIGINT, records_quarantined BIGINT,
        ingested_at TIMESTAMP, read_key VARCHAR""",
    "raw_scrapes": """
        record_id VARCHAR PRIMARY KEY, example_id VARCHAR NOT NULL, batch VARCHAR NOT NULL,
        source_file VARCHAR, line_no BIGINT, source VARCHAR, prompt VARCHAR, response VARCHAR,
        original VARCHAR, ingested_at TIMESTAMP""",
    "quarantine": """
        batch VARCHAR NOT NULL, source_file VARCHAR, line_no BIGINT, reason VARCHAR NOT NULL,
        raw VARCHAR, ingested_at TIMESTAMP""",
}


def ensure_tables(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> None:
    """Create the given (default: all ingest) tables if they do not exist yet."""
    for name in names or list(SCHEMAS):
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({SCHEMAS[name]})")
    if "ingest_batches" in (names or SCHEMAS) and not _has_column(
        con, "ingest_batches", "read_key"
    ):  # warehouses made before read_key existed
        con.execute("ALTER TABLE ingest_batches ADD COLUMN read_key VARCHAR")


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
        [table, column],
    ).fetchall()[0]
    return bool(row[0])


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()[0]
    return bool(row and row[0])


def count(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE", params=None) -> int:
    """Row count of ``table`` (0 when the table does not exist yet)."""
    if not table_exists(con, table):
        return 0
    row = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params or []).fetchall()[0]
    return int(row[0]) if row else 0


def preview(con: duckdb.DuckDBPyConnection, sql: str, limit: int = 10) -> list[dict]:
    """First rows of a query as plain dicts (for metadata tables)."""
    frame = con.sql(f"SELECT * FROM ({sql}) LIMIT {int(limit)}").df()
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
