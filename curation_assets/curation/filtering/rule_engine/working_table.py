"""The stage's working table (``filtered__working``: every kept record with its text, held
batches included), kept in line with ``filter_flags``, and ``filtered`` (what readers see)
published from it."""

import duckdb

from curation_assets.curation.filtering.rule_engine.sync import batch_range, table_exists
from curation_assets.curation.filtering.tables import FILTERED
from curation_assets.curation.publish import HELD_TABLE

#: The stage's working table: every kept record of every batch, held batches included.
#: ``filtered`` (what readers see) is published from it, without the held batches.
WORKING_TABLE = "filtered__working"
FILTERED_SCHEMA = FILTERED.ddl()

#: The version (sha256 and time of ingest) of each batch that ``filtered`` was built from.
FILTERED_BATCHES = "filtered_batches"
_BATCH_VERSIONS = (
    "SELECT batch, coalesce(sha256, '') || '|' || coalesce(CAST(ingested_at AS VARCHAR), '') "
    "AS version FROM ingest_batches"
)


def publish_filtered(con: duckdb.DuckDBPyConnection) -> int:
    """Make ``filtered`` (what readers see) the working table minus the batches held at
    the filter stage (``held_batches``); returns its row count."""
    held = (
        f"batch NOT IN (SELECT batch FROM {HELD_TABLE} WHERE stage = 'filtered')"
        if table_exists(con, HELD_TABLE)
        else "TRUE"
    )
    con.execute(f"CREATE OR REPLACE TABLE filtered AS SELECT * FROM {WORKING_TABLE} WHERE {held}")
    return con.execute("SELECT count(*) FROM filtered").fetchall()[0][0]


def refresh_working_table(
    con: duckdb.DuckDBPyConnection, any_fired: str, incremental: bool
) -> None:
    """Bring the working table in line with ``filter_flags`` (``any_fired``: SQL, TRUE when
    a rule fired): rows that are no longer kept, or whose batch was ingested again since,
    leave; kept records not in it arrive with their text. Rows that stay are not rewritten
    (it holds every kept text, and the stage masks PII in place). Rebuilt from scratch when
    it or its batch versions are missing, or ``incremental`` is off."""
    kept = (
        "SELECT record_id, example_id, batch, line_no, source FROM filter_flags "
        f"WHERE NOT ({any_fired})"
    )
    insert = f"""INSERT INTO {WORKING_TABLE}
        SELECT k.example_id, k.record_id, k.batch, k.line_no, k.source, r.prompt, r.response,
               length(r.prompt), length(r.response)
        FROM {{kept}} k JOIN raw_scrapes r ON r.record_id = k.record_id {{where}}
        ORDER BY k.batch, k.line_no"""
    if not (
        incremental and table_exists(con, WORKING_TABLE) and table_exists(con, FILTERED_BATCHES)
    ):
        con.execute(f"CREATE OR REPLACE TABLE {WORKING_TABLE} ({FILTERED_SCHEMA})")
        con.execute(insert.format(kept=f"({kept})", where=""))
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _kept AS {kept}")
        try:
            con.execute(
                f"""DELETE FROM {WORKING_TABLE} WHERE batch IN (
                        SELECT batch FROM (SELECT batch, version FROM {FILTERED_BATCHES}
                                           EXCEPT SELECT batch, version FROM ({_BATCH_VERSIONS})))
                    OR NOT EXISTS (SELECT 1 FROM _kept k
                                   WHERE k.record_id = {WORKING_TABLE}.record_id
                                     AND k.example_id = {WORKING_TABLE}.example_id)"""
            )
            entering = f"record_id NOT IN (SELECT record_id FROM {WORKING_TABLE})"
            in_range = batch_range(con, entering, "_kept", column="r.batch")
            con.execute(insert.format(kept="_kept", where=f"WHERE {in_range} AND k.{entering}"))
        finally:
            con.execute("DROP TABLE IF EXISTS temp._kept")
    con.execute(f"CREATE OR REPLACE TABLE {FILTERED_BATCHES} AS {_BATCH_VERSIONS}")
