"""The review stages: ``review_queue`` -> ``reviewed`` -> ``verified``, in DuckDB SQL.

Decisions come from the separate decision store (``core.decisions``) as a data frame and
are joined here; the warehouse never holds a lock that a reviewer waits on.

Which decision counts: an expert's latest decision wins over any reviewer's; otherwise
the latest reviewer decision wins. ``accept`` and ``edit`` keep an example (an edit
replaces its response); ``reject`` drops it.
"""

import duckdb
import pandas as pd

from curation_assets.core.filtering import NORMALIZED_PROMPT_SQL

_DECISION_COLUMNS = {
    "decision_id": "BIGINT",
    "example_id": "VARCHAR",
    "reviewer": "VARCHAR",
    "role": "VARCHAR",
    "decision": "VARCHAR",
    "corrected_response": "VARCHAR",
    "note": "VARCHAR",
    "decided_at": "TIMESTAMPTZ",
    "seconds_spent": "DOUBLE",
}


def register_decisions(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame) -> None:
    """Expose the decision store's rows as the ``_decisions`` view, typed."""
    con.register("_decisions_raw", decisions[list(_DECISION_COLUMNS)])
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in _DECISION_COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TEMP VIEW _decisions AS SELECT {casts} FROM _decisions_raw")
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW _latest AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT d.*, count(*) OVER (PARTITION BY example_id) AS n_decisions,
                   row_number() OVER (
                       PARTITION BY example_id
                       ORDER BY (role = 'expert') DESC, decided_at DESC, decision_id DESC
                   ) AS rn
            FROM _decisions d
        ) WHERE rn = 1
        """
    )


def build_review_queue(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame) -> None:
    """Rebuild ``review_queue`` from ``filtered``.

    Priority is a stratified coverage order: examples are ranked within their label
    (by a stable hash, so the order does not depend on file order) and the queue
    interleaves labels, so the first N reviewed examples cover every label evenly.
    """
    register_decisions(con, decisions)
    con.execute(
        """
        CREATE OR REPLACE TABLE review_queue AS
        WITH ranked AS (
            SELECT f.*,
                   row_number() OVER (PARTITION BY f.response
                                      ORDER BY sha256(f.example_id)) AS stratum_rank,
                   count(*) OVER (PARTITION BY f.response) AS stratum_size
            FROM filtered f
        )
        SELECT r.example_id, r.record_id, r.batch, r.source, r.prompt, r.response,
               row_number() OVER (ORDER BY r.stratum_rank, r.response) AS priority,
               'coverage' AS queue,
               'coverage sample: label ' || r.response || ', ' || r.stratum_rank || ' of '
                   || r.stratum_size AS queue_reason,
               CASE WHEN l.example_id IS NULL THEN 'pending'
                    WHEN l.decision = 'reject' THEN 'rejected'
                    WHEN l.role = 'expert' THEN 'verified'
                    ELSE 'reviewed' END AS review_status,
               coalesce(l.n_decisions, 0) AS n_decisions
        FROM ranked r LEFT JOIN _latest l USING (example_id)
        ORDER BY priority
        """
    )


def build_reviewed(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame) -> None:
    """Rebuild ``reviewed``: queued examples whose deciding decision accepts or edits."""
    register_decisions(con, decisions)
    con.execute(
        """
        CREATE OR REPLACE TABLE reviewed AS
        SELECT q.example_id, q.record_id, q.batch, q.source, q.prompt,
               CASE WHEN l.decision = 'edit' THEN l.corrected_response ELSE q.response END
                   AS response,
               q.response AS original_response,
               l.decision = 'edit' AS edited,
               l.decision, l.reviewer AS decided_by, l.role AS decided_by_role,
               l.decided_at, l.decision_id, l.n_decisions
        FROM review_queue q JOIN _latest l USING (example_id)
        WHERE l.decision IN ('accept', 'edit')
        ORDER BY q.priority
        """
    )


def build_verified(
    con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, validation_fraction: float
) -> None:
    """Rebuild ``verified``: reviewed examples an expert confirmed, with a fixed split.

    The split is drawn from a hash of the normalized prompt, so an example keeps its
    split forever and two examples with the same prompt always share one.
    """
    register_decisions(con, decisions)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE verified AS
        WITH expert_time AS (
            SELECT example_id, sum(seconds_spent) AS expert_seconds
            FROM _decisions WHERE role = 'expert' GROUP BY example_id
        )
        SELECT r.example_id, r.prompt, r.response, r.original_response, r.edited,
               r.decided_by AS verified_by, r.decided_at AS verified_at, r.batch, r.source,
               coalesce(t.expert_seconds, 0) AS expert_seconds,
               CASE WHEN ('0x' || substr(sha256({NORMALIZED_PROMPT_SQL}), 1, 8))::UBIGINT
                         / 4294967296.0 < {float(validation_fraction)}
                    THEN 'validation' ELSE 'train' END AS split
        FROM reviewed r LEFT JOIN expert_time t USING (example_id)
        WHERE r.decided_by_role = 'expert'
        ORDER BY r.example_id
        """
    )


def split_overlap_sql(table: str = "verified") -> str:
    """Query: number of normalized prompts present in both train and validation."""
    return f"""SELECT count(*) FROM (
              SELECT {NORMALIZED_PROMPT_SQL} AS p FROM {table} GROUP BY p
              HAVING count(DISTINCT split) > 1)"""


def split_overlap(con: duckdb.DuckDBPyConnection, table: str = "verified") -> int:
    """Number of normalized prompts present in both the train and validation split."""
    row = con.execute(split_overlap_sql(table)).fetchall()[0]
    return int(row[0]) if row else 0
