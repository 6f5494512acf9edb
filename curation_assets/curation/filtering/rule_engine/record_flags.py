"""The cache of the record-scope rules: ``record_flags`` (one boolean column per rule, one
row per record) and ``record_rejections`` (their ``rejections`` rows, reason and detail
computed once, when the record's flags are), evaluated for new records only."""

import uuid

import duckdb

from curation_assets.curation.filtering.rule_engine.rule import (
    Rule,
    reason_sql,
    ruleset_fingerprint,
)
from curation_assets.curation.filtering.rule_engine.sync import (
    batch_range,
    count_rows,
    drop_stale,
    set_generation,
    table_exists,
)
from curation_assets.curation.filtering.tables import RECORD_FLAGS_RULESET, REJECTIONS

RECORD_FLAGS = "record_flags"  # cached flags of the record-scope rules, one row per record
#: Cached ``rejections`` rows of the record-scope rules (reason and detail computed once, when
#: the record's flags are), kept in step with ``record_flags``.
RECORD_REJECTIONS = "record_rejections"
_RULESET_TABLE = RECORD_FLAGS_RULESET.name
REJECTIONS_SCHEMA = REJECTIONS.ddl()


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
    RECORD_FLAGS_RULESET.create(con)
    stored = con.execute(f"SELECT fingerprint FROM {_RULESET_TABLE}").fetchall()
    cached = (
        incremental
        and stored == [(fingerprint,)]
        and table_exists(con, RECORD_FLAGS)
        and table_exists(con, RECORD_REJECTIONS)
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
        set_generation(con, RECORD_FLAGS, uuid.uuid4().hex)
    else:
        # forget records that left raw_scrapes or whose content (hence example_id) changed;
        # reasons without flags (an interrupted run) go too, and are computed again
        drop_stale(con, RECORD_FLAGS)
        con.execute(
            f"""DELETE FROM {RECORD_REJECTIONS} j WHERE NOT EXISTS (
                    SELECT 1 FROM {RECORD_FLAGS} f
                    WHERE f.record_id = j.record_id AND f.example_id = j.example_id)"""
        )
    pending = (
        f"SELECT record_id FROM raw_scrapes "
        f"WHERE record_id NOT IN (SELECT record_id FROM {RECORD_FLAGS})"
    )
    n = count_rows(con, pending)
    if n == 0:  # nothing new: the rule SELECT is never built or bound
        return 0
    in_range = batch_range(con, f"record_id IN ({pending})")
    wheres = list(dict.fromkeys(r.where for r in rules if r.where is not None))
    family_cols = "".join(f", coalesce(({w}), FALSE) AS _w{i}" for i, w in enumerate(wheres))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _flag_todo AS SELECT record_id{family_cols} "
        f"FROM raw_scrapes WHERE {in_range} AND record_id IN ({pending})"
    )
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _new_flags AS "
            + "\nUNION ALL\n".join(_flag_branches(con, rules, wheres, in_range))
        )
        if rules:
            _insert_reasons(con, rules, f"r.{in_range}")  # never FALSE here: n > 0
        con.execute(f"INSERT INTO {RECORD_FLAGS} SELECT * FROM _new_flags")
    finally:
        for temp in ("_flag_todo", "_new_flags", "_fired"):
            con.execute(f"DROP TABLE IF EXISTS temp.{temp}")
    return n


def _flag_branches(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], wheres: list[str], in_range: str
) -> list[str]:
    """One SELECT of the flags per combination of the ``where`` predicates that occurs among
    the records of ``_flag_todo`` (column ``_w<i>``: predicate ``i`` holds)."""
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
        restrict = " AND ".join(f"{'' if value else 'NOT '}_w{i}" for i, value in enumerate(combo))
        branches.append(
            f"SELECT record_id, example_id{cols} FROM raw_scrapes WHERE {in_range} AND "
            f"record_id IN (SELECT record_id FROM _flag_todo"
            f"{' WHERE ' + restrict if restrict else ''})"
        )
    return branches


def _insert_reasons(con: duckdb.DuckDBPyConnection, rules: list[Rule], r_in_range: str) -> None:
    """Append to ``record_rejections`` the reasons of the new flags (``_new_flags``)."""
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
                   {reason_sql(r)} AS reason
            FROM _fired AS filter_flags WHERE rule_{r.name}"""
        for r in rules
    )
    # reasons first: flags without reasons would never get them, reasons without
    # flags are dropped by the next run
    con.execute(f"INSERT INTO {RECORD_REJECTIONS} {reasons}")
