"""The ``filtered`` stage: named rules that annotate raw records, all in one DuckDB pass.

Each rule is one small unit: a name, a reason a person can read, and a SQL condition that
is TRUE when the rule fires. Rules annotate rather than delete: every rule becomes a
boolean column, the keep/reject decision is derived from them, and a rejected record keeps
every reason that applied (one row per rule in ``rejections``).
"""

import hashlib
import re
import uuid
from dataclasses import dataclass

import duckdb

from curation_assets.curation.filtering.tables import FILTERED, REJECTIONS
from curation_assets.curation.publish import HELD_TABLE
from curation_assets.curation.warehouse import sql_literal


@dataclass(frozen=True)
class Rule:
    """One filter rule: fires (rejects) when ``condition`` is TRUE for a record."""

    name: str
    reason: str
    condition: str
    detail: str | None = None  # optional SQL text appended to the reason, per record
    #: "record": the condition reads only the record (and per-record annotation tables), so
    #: its flag is computed once per record and cached; "corpus": it compares records with
    #: each other (window functions, dedup tables) and is re-evaluated on every run.
    scope: str = "record"
    #: Optional SQL predicate over a record: the rule applies only where it holds and never
    #: fires elsewhere (``rules_documents.only_where``). Record-scope rules are evaluated in
    #: one SELECT per combination of these predicates, restricted by WHERE, rather than
    #: wrapped in CASE: DuckDB does not share common subexpressions across CASE branches.
    where: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in ("record", "corpus"):
            raise ValueError(f"rule {self.name}: scope must be 'record' or 'corpus'")

    def sql_condition(self) -> str:
        """The condition with ``where`` folded in (as CASE), for a single SELECT."""
        if self.where is None:
            return self.condition
        return f"CASE WHEN {self.where} THEN ({self.condition}) ELSE FALSE END"


#: "First seen" among records of the same content: by batch (the file name), then line.
#: Never by ``ingested_at``: re-ingesting an unchanged file gives it a new time, and the
#: choice of the kept copy (exact and near duplicates) must depend on the content alone.
FIRST_SEEN_ORDER = "r.batch, r.line_no, r.record_id"

FILTERED_SCHEMA = FILTERED.ddl()


#: Columns of ``raw_scrapes`` that ``filter_flags`` does not copy.
_RAW_ONLY = re.compile(r"\b(source_file|prompt|response|original|ingested_at)\b")

FLAGS = "filter_flags"
RECORD_FLAGS = "record_flags"  # cached flags of the record-scope rules, one row per record
#: Cached ``rejections`` rows of the record-scope rules (reason and detail computed once, when
#: the record's flags are), kept in step with ``record_flags``.
RECORD_REJECTIONS = "record_rejections"
_RULESET_TABLE = "record_flags_ruleset"
REJECTIONS_SCHEMA = REJECTIONS.ddl()


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
        if update_flags or not _exists(con, RECORD_REJECTIONS)
        else 0
    )
    local_cols = ", ".join(f"f.rule_{r.name}" for r in local)
    corpus_cols = ",\n".join(
        f"coalesce({r.sql_condition()}, TRUE) AS rule_{r.name}" for r in corpus
    )
    columns = ", ".join(c for c in (local_cols, corpus_cols) if c)
    any_fired = " OR ".join(f"rule_{r.name}" for r in rules) or "FALSE"
    # ``ordered`` exposes every raw column to corpus conditions; only ids and flags are kept
    _sync_table(
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
        incremental=incremental and _generation(con, RECORD_FLAGS) == _generation(con, FLAGS),
        compare=", ".join(
            ["record_id", "example_id", "batch", "line_no", "source", "first_record_id"]
            + [f"rule_{r.name}" for r in corpus]
        ),
    )
    _set_generation(con, FLAGS, _generation(con, RECORD_FLAGS))
    _refresh_filtered(con, any_fired, incremental)
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
                   {_reason_sql(r)} AS reason
            FROM {with_raw if _RAW_ONLY.search(r.detail or "") else "filter_flags"}
            WHERE rule_{r.name}"""
        for r in corpus
    ]
    _sync_table(
        con,
        "rejections",
        "\nUNION ALL\n".join(unions),
        keys=("record_id", "rule"),
        incremental=incremental,
    )
    if publish:
        publish_filtered(con)
    return computed


_GENERATIONS = "filter_generations"  # which build of record_flags a table was derived from


def _generation(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    _ensure_generations(con)
    found = con.execute(f"SELECT generation FROM {_GENERATIONS} WHERE name = ?", [table]).fetchall()
    return found[0][0] if found else None


def _ensure_generations(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {_GENERATIONS} (name VARCHAR, generation VARCHAR)")


def _set_generation(con: duckdb.DuckDBPyConnection, table: str, generation: str | None) -> None:
    _ensure_generations(con)
    con.execute(f"DELETE FROM {_GENERATIONS} WHERE name = ?", [table])
    con.execute(f"INSERT INTO {_GENERATIONS} VALUES (?, ?)", [table, generation])


def _columns(con: duckdb.DuckDBPyConnection, table: str, database: str) -> list[tuple]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE table_name = ? AND database_name = ? ORDER BY column_index",
        [table, database],
    ).fetchall()


def _sync_table(
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
            and _exists(con, table)
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


#: The stage's working table: every kept record of every batch, held batches included.
#: ``filtered`` (what readers see) is published from it, without the held batches.
WORKING_TABLE = "filtered__working"

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
        if _exists(con, HELD_TABLE)
        else "TRUE"
    )
    con.execute(f"CREATE OR REPLACE TABLE filtered AS SELECT * FROM {WORKING_TABLE} WHERE {held}")
    return con.execute("SELECT count(*) FROM filtered").fetchall()[0][0]


def _refresh_filtered(con: duckdb.DuckDBPyConnection, any_fired: str, incremental: bool) -> None:
    """Bring ``filtered`` in line with ``filter_flags``: rows that are no longer kept, or
    whose batch was ingested again since, leave; kept records not in it arrive with their
    text. Rows that stay are not rewritten (``filtered`` holds every kept text, and the
    stage masks PII in place). Rebuilt from scratch when it or its batch versions are
    missing, or ``incremental`` is off."""
    kept = (
        "SELECT record_id, example_id, batch, line_no, source FROM filter_flags "
        f"WHERE NOT ({any_fired})"
    )
    insert = f"""INSERT INTO {WORKING_TABLE}
        SELECT k.example_id, k.record_id, k.batch, k.line_no, k.source, r.prompt, r.response,
               length(r.prompt), length(r.response)
        FROM {{kept}} k JOIN raw_scrapes r ON r.record_id = k.record_id {{where}}
        ORDER BY k.batch, k.line_no"""
    if not (incremental and _exists(con, WORKING_TABLE) and _exists(con, FILTERED_BATCHES)):
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


def ruleset_fingerprint(rules: list[Rule]) -> str:
    """A hash of the rules (name, condition, where, reason, detail): cached flags and
    reasons are valid while it holds."""
    text = "\x1f".join(
        "\x1e".join((r.name, r.condition, r.where or "", r.reason, r.detail or "")) for r in rules
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
            [table],
        ).fetchall()[0][0]
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])


def update_record_flags(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], incremental: bool = True
) -> int:
    """Bring ``record_flags`` and ``record_rejections`` up to date for ``rules``
    (record-scope): new records only, or all of them when the rule set changed. Returns
    the records evaluated.

    Rules restricted by ``where`` are evaluated in one SELECT per combination of the
    predicates (each computed once per record), restricted by WHERE; a rule whose
    predicate does not hold is FALSE there. The pieces are combined with UNION ALL.
    """
    fingerprint = ruleset_fingerprint(rules)
    con.execute(f"CREATE TABLE IF NOT EXISTS {_RULESET_TABLE} (fingerprint VARCHAR)")
    stored = con.execute(f"SELECT fingerprint FROM {_RULESET_TABLE}").fetchall()
    cached = (
        incremental
        and stored == [(fingerprint,)]
        and _exists(con, RECORD_FLAGS)
        and _exists(con, RECORD_REJECTIONS)
    )
    if not cached:
        flag_schema = "".join(f", rule_{r.name} BOOLEAN" for r in rules)
        con.execute(
            f"CREATE OR REPLACE TABLE {RECORD_FLAGS} "
            f"(record_id VARCHAR, example_id VARCHAR{flag_schema})"
        )
        con.execute(f"CREATE OR REPLACE TABLE {RECORD_REJECTIONS} ({REJECTIONS_SCHEMA})")
        con.execute(f"DELETE FROM {_RULESET_TABLE}")
        con.execute(f"INSERT INTO {_RULESET_TABLE} VALUES (?)", [fingerprint])
        _set_generation(con, RECORD_FLAGS, uuid.uuid4().hex)
    else:
        # forget records that left raw_scrapes or whose content (hence example_id) changed;
        # reasons without flags (an interrupted run) go too, and are computed again
        con.execute(
            f"""DELETE FROM {RECORD_FLAGS} f WHERE NOT EXISTS (
                    SELECT 1 FROM raw_scrapes r
                    WHERE r.record_id = f.record_id AND r.example_id = f.example_id)"""
        )
        con.execute(
            f"""DELETE FROM {RECORD_REJECTIONS} j WHERE NOT EXISTS (
                    SELECT 1 FROM {RECORD_FLAGS} f
                    WHERE f.record_id = j.record_id AND f.example_id = j.example_id)"""
        )
    pending = (
        f"SELECT record_id FROM raw_scrapes "
        f"WHERE record_id NOT IN (SELECT record_id FROM {RECORD_FLAGS})"
    )
    n = _count(con, pending)
    if n == 0:  # nothing new: the rule SELECT is never built or bound
        return 0
    in_range = batch_range(con, f"record_id IN ({pending})")
    r_in_range = f"r.{in_range}"  # never FALSE here: n > 0
    wheres = list(dict.fromkeys(r.where for r in rules if r.where is not None))
    family_cols = "".join(f", coalesce(({w}), FALSE) AS _w{i}" for i, w in enumerate(wheres))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _flag_todo AS SELECT record_id{family_cols} "
        f"FROM raw_scrapes WHERE {in_range} AND record_id IN ({pending})"
    )
    try:
        combos = (
            con.execute(
                "SELECT DISTINCT "
                + ", ".join(f"_w{i}" for i in range(len(wheres)))
                + " FROM _flag_todo"
            ).fetchall()
            if wheres
            else [()]
        )
        branches = []
        for combo in combos:
            holds = dict(zip(wheres, combo, strict=True))
            cols = "".join(
                f", coalesce({r.condition}, TRUE) AS rule_{r.name}"
                if r.where is None or holds[r.where]
                else f", FALSE AS rule_{r.name}"
                for r in rules
            )
            restrict = " AND ".join(
                f"{'' if value else 'NOT '}_w{i}" for i, value in enumerate(combo)
            )
            branches.append(
                f"SELECT record_id, example_id{cols} FROM raw_scrapes WHERE {in_range} AND "
                f"record_id IN (SELECT record_id FROM _flag_todo"
                f"{' WHERE ' + restrict if restrict else ''})"
            )
        con.execute("CREATE OR REPLACE TEMP TABLE _new_flags AS " + "\nUNION ALL\n".join(branches))
        if rules:
            any_fired = " OR ".join(f"f.rule_{r.name}" for r in rules)
            flag_cols = ", ".join(f"f.rule_{r.name}" for r in rules)
            # the new records that some rule fired on, with their text, for the reasons
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _fired AS
                    SELECT r.*, {flag_cols} FROM raw_scrapes r
                    JOIN _new_flags f ON f.record_id = r.record_id
                    WHERE {r_in_range} AND ({any_fired})"""
            )
            reasons = "\nUNION ALL\n".join(
                f"""SELECT record_id, example_id, batch, line_no, '{r.name}' AS rule,
                           {_reason_sql(r)} AS reason
                    FROM _fired AS filter_flags WHERE rule_{r.name}"""
                for r in rules
            )
            # reasons first: flags without reasons would never get them, reasons without
            # flags are dropped by the next run
            con.execute(f"INSERT INTO {RECORD_REJECTIONS} {reasons}")
        con.execute(f"INSERT INTO {RECORD_FLAGS} SELECT * FROM _new_flags")
    finally:
        for temp in ("_flag_todo", "_new_flags", "_fired"):
            con.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return n


def _reason_sql(rule: Rule) -> str:
    base = "'" + rule.reason.replace("'", "''") + "'"
    return f"{base} || ': ' || ({rule.detail})" if rule.detail else base


def rule_counts(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per-rule rejection counts (a record can count under several rules)."""
    return (
        con.sql(
            "SELECT rule, any_value(reason) AS example_reason, count(*) AS records "
            "FROM rejections GROUP BY rule ORDER BY records DESC"
        )
        .df()
        .to_dict("records")
    )


def batch_accounting(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Per batch: units read = kept + rejected + quarantined, and raw records = kept +
    rejected (``unaccounted_records``: the stage's invariants; kept counts the working
    table, held batches included)."""
    return con.sql(batch_accounting_sql())


def batch_accounting_sql() -> str:
    """The per-batch accounting query (also validated by the stage's expectations)."""
    return f"""
        SELECT b.batch, b.units_read,
               coalesce(k.kept, 0) AS kept,
               coalesce(j.rejected, 0) AS rejected,
               b.records_quarantined AS quarantined,
               b.units_read - coalesce(k.kept, 0) - coalesce(j.rejected, 0)
                   - b.records_quarantined AS unaccounted,
               coalesce(w.raw_records, 0) AS raw_records,
               coalesce(w.raw_records, 0) - coalesce(k.kept, 0) - coalesce(j.rejected, 0)
                   AS unaccounted_records,
               coalesce(j.rejected, 0) / nullif(b.records_loaded, 0) AS rejection_rate,
               b.records_quarantined / nullif(b.units_read, 0) AS quarantine_rate
        FROM ingest_batches b
        LEFT JOIN (SELECT batch, count(*) AS kept FROM {WORKING_TABLE} GROUP BY batch) k
            USING (batch)
        LEFT JOIN (SELECT batch, count(DISTINCT record_id) AS rejected
                   FROM rejections GROUP BY batch) j USING (batch)
        LEFT JOIN (SELECT batch, count(*) AS raw_records FROM raw_scrapes GROUP BY batch) w
            USING (batch)
        ORDER BY b.batch
        """


# The normalized prompt, shared with the review stage (train/validation split by prompt).
