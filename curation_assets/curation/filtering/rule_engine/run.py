"""``run_filters``: one pass over every rule, making ``filter_flags`` (one boolean column
per rule for every raw record), the working table of kept records and ``rejections``
(one row per record and rule that fired)."""

import re

import duckdb

from curation_assets.curation.filtering.rule_engine.record_flags import (
    RECORD_FLAGS,
    RECORD_REJECTIONS,
    update_record_flags,
)
from curation_assets.curation.filtering.rule_engine.rule import Rule, reason_sql
from curation_assets.curation.filtering.rule_engine.sync import (
    generation,
    set_generation,
    sync_table,
    table_exists,
)
from curation_assets.curation.filtering.rule_engine.working_table import (
    publish_filtered,
    refresh_working_table,
)

#: "First seen" among records of the same content: by batch (the file name), then line.
#: Never by ``ingested_at``: re-ingesting an unchanged file gives it a new time, and the
#: choice of the kept copy (exact and near duplicates) must depend on the content alone.
FIRST_SEEN_ORDER = "r.batch, r.line_no, r.record_id"

FLAGS = "filter_flags"
#: Columns of ``raw_scrapes`` that ``filter_flags`` does not copy.
_RAW_ONLY = re.compile(r"\b(source_file|prompt|response|original|ingested_at)\b")


def run_filters(
    con: duckdb.DuckDBPyConnection,
    rules: list[Rule],
    *,
    incremental: bool = True,
    update_flags: bool = True,
    publish: bool = True,
) -> int:
    """Bring ``filtered``, ``rejections`` and ``filter_flags`` up to date with ``raw_scrapes``.

    The kept records are written to the working table (``filtered__working``);
    ``publish`` then makes ``filtered`` from it (:func:`publish_filtered`). The filter
    stage passes ``publish=False`` and publishes after its audit.

    ``filter_flags`` holds one boolean column per rule for every raw record (the
    annotations; the texts stay in ``raw_scrapes``); ``filtered`` the records no rule fired
    on; ``rejections`` one row per (record, rule that fired) with the rule's reason.

    Record-scope rules are evaluated only for records not yet in ``record_flags`` (or whose
    content changed), and their ``rejections`` rows are computed at the same time and cached
    (``record_rejections``), so a new batch costs its own size; the cache is rebuilt when
    the rule set changes or ``incremental`` is off. Corpus-scope rules run over everything,
    on ids and flags only. Returns the number of records whose record-scope flags were
    computed. Pass ``update_flags=False`` when ``update_record_flags`` just ran for these
    rules.
    """
    local = [r for r in rules if r.scope == "record"]
    corpus = [r for r in rules if r.scope == "corpus"]
    computed = (
        update_record_flags(con, local, incremental)
        if update_flags or not table_exists(con, RECORD_REJECTIONS)
        else 0
    )
    local_cols = ", ".join(f"f.rule_{r.name}" for r in local)
    corpus_cols = ",\n".join(
        f"coalesce({r.sql_condition()}, TRUE) AS rule_{r.name}" for r in corpus
    )
    columns = ", ".join(c for c in (local_cols, corpus_cols) if c)
    any_fired = " OR ".join(f"rule_{r.name}" for r in rules) or "FALSE"
    # ``ordered`` exposes every raw column to corpus conditions; only ids and flags are kept
    sync_table(
        con,
        FLAGS,
        f"""
        WITH ordered AS (
            SELECT r.*,
                   row_number() OVER (
                       PARTITION BY r.example_id ORDER BY {FIRST_SEEN_ORDER}
                   ) AS _dup_rank,
                   first(r.record_id) OVER (
                       PARTITION BY r.example_id ORDER BY {FIRST_SEEN_ORDER}
                   ) AS first_record_id
            FROM raw_scrapes r
        )
        SELECT record_id, example_id, batch, line_no, source,
               first_record_id{", " + columns if columns else ""}
        FROM ordered JOIN (SELECT * EXCLUDE (example_id) FROM {RECORD_FLAGS}) f
             USING (record_id)
        """,
        keys=("record_id",),
        # a record's cached flags change only with its example_id, or when the cache is
        # rebuilt (a new generation): otherwise only these columns can differ
        incremental=incremental and generation(con, RECORD_FLAGS) == generation(con, FLAGS),
        compare=", ".join(
            ["record_id", "example_id", "batch", "line_no", "source", "first_record_id"]
            + [f"rule_{r.name}" for r in corpus]
        ),
    )
    set_generation(con, FLAGS, generation(con, RECORD_FLAGS))
    refresh_working_table(con, any_fired, incremental)
    # a corpus rule's reason may read raw columns that ``filter_flags`` leaves out (the labels
    # of a conflict): those are joined back for that rule only
    with_raw = (
        "(SELECT ff.*, r.source_file, r.prompt, r.response, r.original, r.ingested_at "
        "FROM filter_flags ff JOIN raw_scrapes r ON r.record_id = ff.record_id) AS filter_flags"
    )
    unions = [
        f"SELECT record_id, example_id, batch, line_no, rule, reason FROM {RECORD_REJECTIONS}"
    ] + [
        f"""SELECT record_id, example_id, batch, line_no, '{r.name}' AS rule,
                   {reason_sql(r)} AS reason
            FROM {with_raw if _RAW_ONLY.search(r.detail or "") else "filter_flags"}
            WHERE rule_{r.name}"""
        for r in corpus
    ]
    sync_table(
        con,
        "rejections",
        "\nUNION ALL\n".join(unions),
        keys=("record_id", "rule"),
        incremental=incremental,
    )
    if publish:
        publish_filtered(con)
    return computed
