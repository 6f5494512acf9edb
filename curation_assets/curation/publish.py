"""Write, audit, publish: no reader sees a version whose blocking checks failed.

A stage writes its new version inside one DuckDB transaction, audits it on the same
connection (the audit sees the uncommitted version, nobody else does), then either
commits (the publish: one atomic step) or copies the staged tables to ``<table>__staged``
for inspection and rolls back, which leaves the published tables byte-identical.

Held batches: a batch that fails a per-batch audit is kept out of the published tables
(its rows stay in the stage's ``__staged`` tables) and listed in ``held_batches`` with
the reason, until its file is fixed or an admin accepts it (``batch_overrides`` in the
decision store, see :func:`curation_assets.curation.review.decisions.accept_batch`).

Readers outside the run (``curation trace``, notebooks, BI tools) read the Parquet
snapshot of the published tables that :func:`snapshot` writes after each publish; each
file is replaced atomically (``os.replace``), so a reader sees the previous version or
the new one, never a half-written one, and never waits for the warehouse lock.
"""

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from curation_assets.curation.schema import load_tables, require_declared_columns
from curation_assets.curation.warehouse import table_exists

(HELD_BATCHES,) = load_tables(__file__, "held_batches")
HELD_TABLE = HELD_BATCHES.name


def staged_name(table: str) -> str:
    """Where the unpublished version of ``table`` is kept for inspection."""
    return f"{table}__staged"


@dataclass
class Outcome:
    """What happened to one write: published or held back, and where to look."""

    published: bool
    staged_tables: list[str] = field(default_factory=list)
    snapshot_files: list[str] = field(default_factory=list)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: rolled back if the body raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        # the body may have ended the transaction (``finish``) before it raised
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")
        raise


def finish(
    con: duckdb.DuckDBPyConnection, passed: bool, tables: Sequence[str], where: str | None = None
) -> Outcome:
    """End the open transaction: publish (commit) if ``passed``, else keep a copy of the
    staged ``tables`` as ``<table>__staged`` and roll back.

    A declared table (:mod:`curation_assets.curation.schema`) whose columns drifted from its
    declaration is never published: :class:`SchemaDriftError`, and nothing is committed.

    ``where`` (e.g. one batch) limits the staged copy to those rows and replaces only
    them in ``<table>__staged``, so the staged rows of other held batches stay.
    """
    if passed:
        require_declared_columns(con, list(tables))  # raises: the caller's transaction rolls back
        for table in tables:
            staged = staged_name(table)
            if where is None:
                con.execute(f"DROP TABLE IF EXISTS {staged}")
            elif table_exists(con, staged):
                con.execute(f"DELETE FROM {staged} WHERE {where}")
        con.execute("COMMIT")
        return Outcome(published=True)
    # Rollback discards the staged rows (temp tables too), so hold them in Arrow across it.
    copies = {}
    for table in tables:
        copies[table] = con.sql(f"SELECT * FROM {table} WHERE {where or 'TRUE'}").to_arrow_table()
    con.execute("ROLLBACK")
    with transaction(con):
        for table, rows in copies.items():
            copy = f"_staged_{uuid.uuid4().hex[:8]}"
            con.register(copy, rows)
            staged = staged_name(table)
            if where is None:
                con.execute(f"CREATE OR REPLACE TABLE {staged} AS SELECT * FROM {copy}")
            else:
                con.execute(f"CREATE TABLE IF NOT EXISTS {staged} AS FROM {copy} LIMIT 0")
                con.execute(f"DELETE FROM {staged} WHERE {where}")
                con.execute(f"INSERT INTO {staged} SELECT * FROM {copy}")
            con.unregister(copy)
        con.execute("COMMIT")
    return Outcome(published=False, staged_tables=[staged_name(t) for t in tables])


def ensure_held_table(con: duckdb.DuckDBPyConnection) -> None:
    HELD_BATCHES.create(con)


def replace_holds(con: duckdb.DuckDBPyConnection, stage: str, holds: Sequence[dict]) -> None:
    """Make ``holds`` (dicts with the ``held_batches`` columns) the stage's held batches."""
    ensure_held_table(con)
    con.execute(f"DELETE FROM {HELD_TABLE} WHERE stage = ?", [stage])
    for hold in holds:
        _insert_hold(con, stage, hold["batch"], hold)


def set_hold(con: duckdb.DuckDBPyConnection, stage: str, batch: str, hold: dict | None) -> None:
    """Hold ``batch`` at ``stage`` (``hold``: the row's columns) or release it (None)."""
    ensure_held_table(con)
    con.execute(f"DELETE FROM {HELD_TABLE} WHERE stage = ? AND batch = ?", [stage, batch])
    if hold is not None:
        _insert_hold(con, stage, batch, hold)


def _insert_hold(con: duckdb.DuckDBPyConnection, stage: str, batch: str, hold: dict) -> None:
    con.execute(
        f"INSERT INTO {HELD_TABLE} VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [
            stage,
            batch,
            hold.get("sha256"),
            hold.get("records"),
            hold["reason"],
            hold.get("staged_table"),
        ],
    )


def held(con: duckdb.DuckDBPyConnection, stage: str | None = None) -> list[dict]:
    """The batches held now (at ``stage``, or at any stage)."""
    ensure_held_table(con)
    where, params = ("WHERE stage = ?", [stage]) if stage else ("", [])
    frame = con.execute(
        f"SELECT stage, batch, sha256, records, reason, staged_table, held_at "
        f"FROM {HELD_TABLE} {where} ORDER BY stage, batch",
        params,
    ).df()
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


# ---------------------------------------------------------------------------- snapshots
_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def snapshot(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    table: str,
    *,
    where: str = "TRUE",
    part: str | None = None,
) -> Path:
    """Write the published ``table`` (or one ``part`` of it, rows matching ``where``) to
    ``directory/<table>.parquet`` (``directory/<table>/<part>.parquet``), atomically."""
    target = directory / f"{table}.parquet"
    if part is not None:
        target = directory / table / f"{_SAFE.sub('_', part)}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    path = str(tmp).replace("'", "''")
    con.execute(f"COPY (SELECT * FROM {table} WHERE {where}) TO '{path}' (FORMAT parquet)")
    os.replace(tmp, target)
    return target


def drop_snapshot_part(directory: Path, table: str, part: str) -> None:
    """Remove one part of a partitioned snapshot (a batch that is no longer published)."""
    (directory / table / f"{_SAFE.sub('_', part)}.parquet").unlink(missing_ok=True)


def open_snapshot(directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per published table of the snapshot.

    Never touches the warehouse file, so it works while a run writes to it.
    """
    con = duckdb.connect()
    if not directory.is_dir():
        return con
    for path in sorted(directory.iterdir()):
        name = path.name.removesuffix(".parquet")
        if path.name.startswith(".") or not re.fullmatch(r"[a-z_]+", name):
            continue
        if path.is_dir():
            if not any(path.glob("*.parquet")):
                continue
            source = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}/*.parquet')"
        else:
            source = f"read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')"
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    return con
