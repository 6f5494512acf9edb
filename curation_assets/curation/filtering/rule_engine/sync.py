"""Warehouse helpers the engine's cached tables are built on: existence and counts, the
incremental rewrite of a derived table (:func:`sync_table`), the build generation each
derived table came from, dropping stale per-record cache rows, and :func:`batch_range`."""

import duckdb

from curation_assets.curation.filtering.tables import FILTER_GENERATIONS
from curation_assets.curation.warehouse import sql_literal

_GENERATIONS = FILTER_GENERATIONS.name  # which build of record_flags a table was derived from


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether a persistent (not temporary) table of that name exists."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
            [table],
        ).fetchall()[0][0]
    )


def count_rows(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Rows of a query."""
    return int(con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])


def generation(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """The build of ``record_flags`` that ``table`` was derived from (None: unknown)."""
    FILTER_GENERATIONS.create(con)
    found = con.execute(f"SELECT generation FROM {_GENERATIONS} WHERE name = ?", [table]).fetchall()
    return found[0][0] if found else None


def set_generation(con: duckdb.DuckDBPyConnection, table: str, generation: str | None) -> None:
    """Record the build of ``record_flags`` that ``table`` is now derived from."""
    FILTER_GENERATIONS.create(con)
    con.execute(f"DELETE FROM {_GENERATIONS} WHERE name = ?", [table])
    con.execute(f"INSERT INTO {_GENERATIONS} VALUES (?, ?)", [table, generation])


def _columns(con: duckdb.DuckDBPyConnection, table: str, database: str) -> list[tuple]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE table_name = ? AND database_name = ? ORDER BY column_index",
        [table, database],
    ).fetchall()


def sync_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    query: str,
    *,
    keys: tuple[str, ...],
    incremental: bool,
    compare: str = "*",
) -> None:
    """Make ``table`` hold the rows of ``query`` (unique on ``keys``), writing only the rows
    that differ: a run that adds a batch rewrites a few thousand rows, not the table (less
    to write, and to checkpoint). Rows are compared on the ``compare`` columns (the caller
    vouches that the others follow from them). Replaced when its columns differ or
    ``incremental`` is off."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sync_new AS {query}")
    try:
        database = con.execute("SELECT current_database()").fetchall()[0][0]
        if not (
            incremental
            and table_exists(con, table)
            and _columns(con, table, database) == _columns(con, "_sync_new", "temp")
        ):
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _sync_new")
            return
        key_list = ", ".join(keys)
        match = " AND ".join(f"g.{k} = t.{k}" for k in keys)
        # rows that left or changed go; then every row of the query whose key is missing
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _sync_gone AS SELECT {key_list} FROM ("
            f"SELECT {compare} FROM {table} EXCEPT ALL SELECT {compare} FROM _sync_new)"
        )
        con.execute(
            f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM _sync_gone g WHERE {match})"
        )
        con.execute(
            f"INSERT INTO {table} SELECT * FROM _sync_new g "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {match})"
        )
    finally:
        con.execute("DROP TABLE IF EXISTS temp._sync_new")
        con.execute("DROP TABLE IF EXISTS temp._sync_gone")


def drop_stale(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Delete the rows of a per-record cache (``record_id``, ``example_id``) whose record
    left ``raw_scrapes`` or now has other content (a file dropped again, changed)."""
    con.execute(
        f"""DELETE FROM {table} c WHERE NOT EXISTS (
                SELECT 1 FROM raw_scrapes r
                WHERE r.record_id = c.record_id AND r.example_id = c.example_id)"""
    )


def batch_range(
    con: duckdb.DuckDBPyConnection, where: str, table: str = "raw_scrapes", column: str = "batch"
) -> str:
    """``<column> BETWEEN <first> AND <last>`` over the batches of the rows of ``table`` that
    ``where`` selects (``FALSE`` when none): ANDed to a query that reads only those rows, it
    changes nothing but lets DuckDB skip the texts of every other batch. A join or
    ``NOT IN`` against another table makes the scan read every row's columns; a range on
    ``batch`` is applied inside the scan. ``where`` should read narrow columns (ids)."""
    sql = f"SELECT min(batch), max(batch) FROM {table} WHERE {where}"
    low, high = con.execute(sql).fetchall()[0]
    if low is None:
        return "FALSE"
    return f"{column} BETWEEN {sql_literal(low)} AND {sql_literal(high)}"
