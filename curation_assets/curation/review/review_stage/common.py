"""What every review step shares: decisions as a DuckDB table, column helpers, queue names."""

from collections.abc import Sequence

import duckdb
import pandas as pd

DECISION_COLUMNS = {
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
SUSPECT_TABLE = "suspect_scores"
QUEUES = ("coverage", "suspect")
STATUSES = (
    "pending",
    "in_review",
    "needs_expert",
    "reviewed",
    "rejected",
    "verified",
    "expert_checked",
)


def register_decisions(
    con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, labels: Sequence[str] = ()
) -> None:
    """Expose the decision store's rows as the ``_decisions`` view, typed.

    ``valid`` is FALSE for an edit to a label outside ``labels`` (when given): such a
    decision stays in the history but never decides anything.
    """
    con.register("_decisions_raw", decisions[list(DECISION_COLUMNS)])
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in DECISION_COLUMNS.items())
    allowed = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
    valid = f"decision != 'edit' OR corrected_response IN ({allowed})" if labels else "TRUE"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _decisions AS SELECT *, ({valid}) AS valid "
        f"FROM (SELECT {casts} FROM _decisions_raw)"
    )


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
        [table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def json_list_sql(column: str, dtype: str) -> str:
    """SQL turning a flags-like column into JSON text (list of {rule, reason})."""
    if dtype in ("VARCHAR", "JSON"):  # JSON list as text; other text is one warning
        return f"""CASE WHEN nullif(trim({column}), '') IS NULL THEN '[]'
                        WHEN json_valid({column}) AND json_type({column}) = 'ARRAY'
                        THEN {column}::VARCHAR
                        ELSE to_json([{{'rule': 'warning', 'reason': {column}}}])::VARCHAR END"""
    if dtype.startswith("VARCHAR["):
        rules = f"list_transform({column}, lambda x: {{'rule': x, 'reason': x}})"
        return f"coalesce(to_json({rules})::VARCHAR, '[]')"
    return f"coalesce(to_json({column})::VARCHAR, '[]')"


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
