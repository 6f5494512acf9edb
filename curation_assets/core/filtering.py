"""The ``filtered`` stage: named rules that annotate raw records, all in one DuckDB pass.

Each rule is one small unit: a name, a reason a person can read, and a SQL condition that
is TRUE when the rule fires. Rules annotate rather than delete: every rule becomes a
boolean column, the keep/reject decision is derived from them, and a rejected record keeps
every reason that applied (one row per rule in ``rejections``).
"""

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


def run_filters(con: duckdb.DuckDBPyConnection, rules: list[Rule]) -> None:
    """Rebuild ``filtered``, ``rejections`` and ``filter_flags`` from ``raw_scrapes``.

    ``filter_flags`` holds one boolean column per rule for every raw record (the
    annotations); ``filtered`` the records no rule fired on; ``rejections`` one row per
    (record, rule that fired) with the rule's reason.
    """
    flag_columns = ",\n".join(f"coalesce({r.condition}, TRUE) AS rule_{r.name}" for r in rules)
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
               first_record_id, {flag_columns}
        FROM ordered
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
        + (unions if rules else "SELECT NULL::VARCHAR AS record_id LIMIT 0")
    )


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
