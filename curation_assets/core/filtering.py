"""The ``filtered`` stage: named rules that annotate raw records, all in one DuckDB pass.

Each rule is one small unit: a name, a reason a person can read, and a SQL condition that
is TRUE when the rule fires. Rules annotate rather than delete: every rule becomes a
boolean column, the keep/reject decision is derived from them, and a rejected record keeps
every reason that applied (one row per rule in ``rejections``).
"""

import hashlib
from dataclasses import dataclass

import duckdb

from curation_assets.core.records import NORMALIZE_SQL


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

    def __post_init__(self) -> None:
        if self.scope not in ("record", "corpus"):
            raise ValueError(f"rule {self.name}: scope must be 'record' or 'corpus'")


def rules_for(
    *,
    min_prompt_chars: int,
    max_prompt_chars: int,
    min_response_chars: int,
    max_response_chars: int,
    labels: tuple[str, ...] = (),
) -> list[Rule]:
    """The rule set with its thresholds (from ``Settings``)."""
    prompt_len = "length(trim(prompt))"
    response_len = "length(trim(response))"
    rules = [
        Rule(
            "prompt_too_short",
            f"prompt shorter than {min_prompt_chars} characters",
            f"{prompt_len} < {int(min_prompt_chars)}",
        ),
        Rule(
            "prompt_too_long",
            f"prompt longer than {max_prompt_chars} characters",
            f"{prompt_len} > {int(max_prompt_chars)}",
        ),
        Rule(
            "response_too_short",
            f"response shorter than {min_response_chars} characters",
            f"{response_len} < {int(min_response_chars)}",
        ),
        Rule(
            "response_too_long",
            f"response longer than {max_response_chars} characters",
            f"{response_len} > {int(max_response_chars)}",
        ),
        Rule(
            "exact_duplicate",
            "same normalized prompt and response as an earlier record (kept: the first seen)",
            "_dup_rank > 1",
            detail="'duplicate of ' || first_record_id",
            scope="corpus",
        ),
    ]
    if labels:
        quoted = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
        rules.append(
            Rule(
                "label_not_allowed",
                f"label is not one of the {len(labels)} allowed labels",
                f"response NOT IN ({quoted})",
                detail="'got ' || coalesce('\"' || response || '\"', 'NULL')",
            )
        )
    return rules


FILTERED_SCHEMA = """
    example_id VARCHAR PRIMARY KEY, record_id VARCHAR, batch VARCHAR, line_no BIGINT,
    source VARCHAR, prompt VARCHAR, response VARCHAR, prompt_chars INTEGER,
    response_chars INTEGER"""


RECORD_FLAGS = "record_flags"  # cached flags of the record-scope rules, one row per record
_RULESET_TABLE = "record_flags_ruleset"


def run_filters(
    con: duckdb.DuckDBPyConnection,
    rules: list[Rule],
    *,
    incremental: bool = True,
    update_flags: bool = True,
) -> int:
    """Rebuild ``filtered``, ``rejections`` and ``filter_flags`` from ``raw_scrapes``.

    ``filter_flags`` holds one boolean column per rule for every raw record (the
    annotations); ``filtered`` the records no rule fired on; ``rejections`` one row per
    (record, rule that fired) with the rule's reason.

    Record-scope rules are evaluated only for records not yet in ``record_flags`` (or whose
    content changed), so a new batch costs its own size; the cache is rebuilt when the
    rule set changes or ``incremental`` is off. Corpus-scope rules run over everything.
    Returns the number of records whose record-scope flags were computed. Pass
    ``update_flags=False`` when ``update_record_flags`` just ran for these rules.
    """
    local = [r for r in rules if r.scope == "record"]
    corpus = [r for r in rules if r.scope == "corpus"]
    computed = update_record_flags(con, local, incremental) if update_flags else 0
    local_cols = ", ".join(f"f.rule_{r.name}" for r in local)
    corpus_cols = ",\n".join(f"coalesce({r.condition}, TRUE) AS rule_{r.name}" for r in corpus)
    columns = ", ".join(c for c in (local_cols, corpus_cols) if c)
    any_fired = " OR ".join(f"rule_{r.name}" for r in rules) or "FALSE"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE filter_flags AS
        WITH ordered AS (
            SELECT r.*,
                   row_number() OVER (
                       PARTITION BY r.example_id
                       ORDER BY b.ingested_at, r.batch, r.line_no
                   ) AS _dup_rank,
                   first(r.record_id) OVER (
                       PARTITION BY r.example_id
                       ORDER BY b.ingested_at, r.batch, r.line_no
                   ) AS first_record_id
            FROM raw_scrapes r LEFT JOIN ingest_batches b USING (batch)
        )
        SELECT record_id, example_id, batch, line_no, source, prompt, response,
               first_record_id{", " + columns if columns else ""}
        FROM ordered JOIN (SELECT * EXCLUDE (example_id) FROM {RECORD_FLAGS}) f
             USING (record_id)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE filtered ({FILTERED_SCHEMA});
        INSERT INTO filtered
        SELECT example_id, record_id, batch, line_no, source, prompt, response,
               length(prompt), length(response)
        FROM filter_flags WHERE NOT ({any_fired})
        ORDER BY batch, line_no
        """
    )
    unions = "\nUNION ALL\n".join(
        f"""SELECT record_id, example_id, batch, line_no, '{r.name}' AS rule,
                   {_reason_sql(r)} AS reason
            FROM filter_flags WHERE rule_{r.name}"""
        for r in rules
    )
    con.execute(
        "CREATE OR REPLACE TABLE rejections AS "
        + (
            unions
            if rules
            else "SELECT NULL::VARCHAR AS record_id, NULL::VARCHAR AS example_id, "
            "NULL::VARCHAR AS batch, NULL::BIGINT AS line_no, NULL::VARCHAR AS rule, "
            "NULL::VARCHAR AS reason LIMIT 0"
        )
    )
    return computed


def ruleset_fingerprint(rules: list[Rule]) -> str:
    """A hash of the rules' names and conditions: cached flags are valid while it holds."""
    text = "\x1f".join(f"{r.name}\x1e{r.condition}" for r in rules)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def update_record_flags(
    con: duckdb.DuckDBPyConnection, rules: list[Rule], incremental: bool = True
) -> int:
    """Bring ``record_flags`` up to date for ``rules`` (record-scope): new records only,
    or all of them when the rule set changed. Returns the records evaluated."""
    fingerprint = ruleset_fingerprint(rules)
    con.execute(f"CREATE TABLE IF NOT EXISTS {_RULESET_TABLE} (fingerprint VARCHAR)")
    stored = con.execute(f"SELECT fingerprint FROM {_RULESET_TABLE}").fetchall()
    exists = bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [RECORD_FLAGS]
        ).fetchall()[0][0]
    )
    flag_cols = "".join(f", coalesce({r.condition}, TRUE) AS rule_{r.name}" for r in rules)
    if not (incremental and exists and stored == [(fingerprint,)]):
        con.execute(
            f"CREATE OR REPLACE TABLE {RECORD_FLAGS} AS "
            f"SELECT record_id, example_id{flag_cols} FROM raw_scrapes"
        )
        con.execute(f"DELETE FROM {_RULESET_TABLE}")
        con.execute(f"INSERT INTO {_RULESET_TABLE} VALUES (?)", [fingerprint])
        return int(con.execute(f"SELECT count(*) FROM {RECORD_FLAGS}").fetchall()[0][0])
    # forget records that left raw_scrapes or whose content (hence example_id) changed
    con.execute(
        f"""DELETE FROM {RECORD_FLAGS} f WHERE NOT EXISTS (
                SELECT 1 FROM raw_scrapes r
                WHERE r.record_id = f.record_id AND r.example_id = f.example_id)"""
    )
    before = int(con.execute(f"SELECT count(*) FROM {RECORD_FLAGS}").fetchall()[0][0])
    con.execute(
        f"""INSERT INTO {RECORD_FLAGS}
            SELECT record_id, example_id{flag_cols} FROM raw_scrapes
            WHERE record_id NOT IN (SELECT record_id FROM {RECORD_FLAGS})"""
    )
    after = int(con.execute(f"SELECT count(*) FROM {RECORD_FLAGS}").fetchall()[0][0])
    return after - before


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
    """Per batch: units read = kept + rejected + quarantined (the stage's invariant)."""
    return con.sql(batch_accounting_sql())


def batch_accounting_sql() -> str:
    """The per-batch accounting query (also validated by the stage's expectations)."""
    return """
        SELECT b.batch, b.units_read,
               coalesce(k.kept, 0) AS kept,
               coalesce(j.rejected, 0) AS rejected,
               b.records_quarantined AS quarantined,
               b.units_read - coalesce(k.kept, 0) - coalesce(j.rejected, 0)
                   - b.records_quarantined AS unaccounted,
               coalesce(j.rejected, 0) / nullif(b.records_loaded, 0) AS rejection_rate,
               b.records_quarantined / nullif(b.units_read, 0) AS quarantine_rate
        FROM ingest_batches b
        LEFT JOIN (SELECT batch, count(*) AS kept FROM filtered GROUP BY batch) k USING (batch)
        LEFT JOIN (SELECT batch, count(DISTINCT record_id) AS rejected
                   FROM rejections GROUP BY batch) j USING (batch)
        ORDER BY b.batch
        """


# The normalized prompt, shared with the review stage (train/validation split by prompt).
NORMALIZED_PROMPT_SQL = NORMALIZE_SQL.format(col="prompt")
