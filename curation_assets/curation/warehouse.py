"""The DuckDB warehouse: small helpers every stage shares (existence, counts, previews).

Each stage declares its tables in its own ``tables.py`` (:mod:`curation_assets.curation.schema`).

Functions take an open ``duckdb`` connection; the caller owns it (Dagster's
``DuckDBResource`` in the pipeline, a read-only connection in the CLI).
"""

import duckdb


def sql_literal(value: object) -> str:
    """``value`` as a SQL string literal (quotes doubled), for text built into a query."""
    return "'" + str(value).replace("'", "''") + "'"


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
