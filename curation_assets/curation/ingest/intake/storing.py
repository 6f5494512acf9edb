"""Store one read batch in the warehouse (``raw_scrapes``, ``quarantine``, ``ingest_batches``)."""

import contextlib
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from curation_assets.curation import publish
from curation_assets.curation.ingest.intake.entries import list_inbox
from curation_assets.curation.ingest.intake.reading import IngestResult, read_file
from curation_assets.curation.ingest.tables import ensure_tables
from curation_assets.curation.records import example_id_sql


def store_batch(
    con: duckdb.DuckDBPyConnection,
    result: IngestResult,
    ingested_at: datetime,
    atomic: bool = True,
) -> None:
    """Replace one batch's rows in ``raw_scrapes``, ``quarantine`` and ``ingest_batches``.

    Idempotent: re-ingesting the same file replaces its rows, so it adds nothing; an
    empty file is an empty batch (zero units) that is still recorded. The
    example id is computed in DuckDB from the normalized content. The writes go in one
    transaction (``atomic``); pass ``atomic=False`` inside the caller's own transaction.
    """
    ensure_tables(con)
    batch, source_file = result.batch, result.source_file
    if not batch:
        raise ValueError("an ingest result must name its batch")
    con.register("_records", result.records)
    con.register("_quarantine", result.quarantine)
    try:
        with contextlib.ExitStack() as writes:
            if atomic:
                writes.enter_context(publish.transaction(con))  # rolled back if one fails
            for table in ("raw_scrapes", "quarantine", "ingest_batches"):
                con.execute(f"DELETE FROM {table} WHERE batch = ?", [batch])
            con.execute(
                f"""INSERT INTO raw_scrapes
                    SELECT batch || ':' || line_no, {example_id_sql()}, batch, source_file,
                           line_no, source, prompt, response, original, $ts
                    FROM _records""",
                {"ts": ingested_at},
            )
            con.execute(
                "INSERT INTO quarantine SELECT batch, source_file, line_no, reason, raw, $ts "
                "FROM _quarantine",
                {"ts": ingested_at},
            )
            con.execute(
                "INSERT INTO ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    batch,
                    source_file,
                    result.file_format,
                    result.sha256,
                    result.units_read,
                    len(result.records),
                    len(result.quarantine),
                    ingested_at,
                    result.read_key,
                ],
            )
            if atomic:
                con.execute("COMMIT")
    finally:
        con.unregister("_records")
        con.unregister("_quarantine")


def store_inbox(
    con: duckdb.DuckDBPyConnection,
    inbox: Path,
    column_mapping: dict[str, str],
    max_record_bytes: int,
    started: datetime,
) -> int:
    """Read and store every entry of ``inbox`` in order, the i-th ingested at ``started``
    plus i minutes (fixed times: sample builders and tests get reproducible rows); the
    ingest tables exist afterwards even for an empty inbox. Returns the entries stored."""
    ensure_tables(con)
    paths = list_inbox(inbox)
    for i, path in enumerate(paths):
        result = read_file(path, column_mapping, max_record_bytes)
        store_batch(con, result, started + timedelta(minutes=i))
    return len(paths)
