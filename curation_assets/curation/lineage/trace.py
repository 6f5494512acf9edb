"""Row-level lineage: where every raw record went, from its file line to the models.

``build_example_lineage`` writes one row per raw unit (record or quarantined line);
``trace`` answers "what happened to this example?" for one id (an ``example_id`` or a
``record_id`` such as ``batch.jsonl:17``), decisions history included.
"""

from typing import Any

import duckdb
import pandas as pd

from curation_assets.curation.ingest.tables import ensure_tables
from curation_assets.curation.publish import HELD_TABLE, ensure_held_table
from curation_assets.curation.review.review_stage import register_decisions
from curation_assets.curation.training.registry import ensure_registry
from curation_assets.curation.warehouse import table_exists

_LINEAGE_SQL = """
CREATE OR REPLACE TABLE example_lineage AS
WITH rej AS (
    SELECT record_id, string_agg(rule, ', ' ORDER BY rule) AS rules,
           string_agg(reason, '; ' ORDER BY rule) AS reasons
    FROM rejections GROUP BY record_id
),
trained AS (
    SELECT example_id, string_agg(model_id || ' (' || split || ')', ', ' ORDER BY model_id)
               AS models
    FROM model_examples GROUP BY example_id
),
dec AS (
    SELECT example_id, count(*) AS decisions,
           arg_max(reviewer || ': ' || decision, decision_id) AS last_decision
    FROM _decisions GROUP BY example_id
)
SELECT r.record_id, r.example_id, r.batch, r.source_file, r.line_no,
       CASE WHEN rej.record_id IS NOT NULL THEN 'rejected'
            WHEN hf.batch IS NOT NULL THEN 'held'
            ELSE 'kept' END AS filter_status,
       rej.rules AS rejected_by, rej.reasons AS rejection_reasons,
       q.priority AS queue_priority, q.review_status,
       coalesce(dec.decisions, 0) AS decisions, dec.last_decision,
       v.example_id IS NOT NULL AS verified, v.split,
       trained.models AS trained_in,
       CASE WHEN rej.record_id IS NULL THEN hf.reason END AS held_reason
FROM raw_scrapes r
LEFT JOIN rej USING (record_id)
LEFT JOIN held_batches hf ON hf.stage = 'filtered' AND hf.batch = r.batch
LEFT JOIN review_queue q ON q.record_id = r.record_id
LEFT JOIN dec ON dec.example_id = r.example_id AND rej.record_id IS NULL
LEFT JOIN verified v ON v.example_id = r.example_id AND rej.record_id IS NULL
LEFT JOIN trained ON trained.example_id = r.example_id AND rej.record_id IS NULL
UNION ALL
SELECT batch || ':' || coalesce(line_no::VARCHAR, 'file'), NULL, batch, source_file, line_no,
       'quarantined', NULL, reason, NULL, NULL, 0, NULL, FALSE, NULL, NULL, NULL
FROM quarantine
UNION ALL  -- batches held back at ingest: their staged version, not published
SELECT s.record_id, s.example_id, s.batch, s.source_file, s.line_no, 'held', NULL, NULL,
       NULL, NULL, 0, NULL, FALSE, NULL, NULL, h.reason
FROM raw_scrapes__staged s JOIN held_batches h ON h.stage = 'raw_scrapes' AND h.batch = s.batch
UNION ALL
SELECT q.batch || ':' || coalesce(q.line_no::VARCHAR, 'file'), NULL, q.batch, q.source_file,
       q.line_no, 'quarantined', NULL, q.reason, NULL, NULL, 0, NULL, FALSE, NULL, NULL, h.reason
FROM quarantine__staged q JOIN held_batches h ON h.stage = 'raw_scrapes' AND h.batch = q.batch
"""

#: Units of the batches held back at ingest (their staged rows), for the accounting check.
HELD_UNITS_SQL = """
    (SELECT count(*) FROM raw_scrapes__staged
     WHERE batch IN (SELECT batch FROM held_batches WHERE stage = 'raw_scrapes'))
  + (SELECT count(*) FROM quarantine__staged
     WHERE batch IN (SELECT batch FROM held_batches WHERE stage = 'raw_scrapes'))"""

#: Stand-ins (temporary, empty) for tables a fresh warehouse may not have published yet.
_STAND_INS = {
    "raw_scrapes__staged": "SELECT * FROM raw_scrapes LIMIT 0",
    "quarantine__staged": "SELECT * FROM quarantine LIMIT 0",
    "review_queue": "SELECT NULL::VARCHAR AS record_id, NULL::BIGINT AS priority, "
    "NULL::VARCHAR AS review_status LIMIT 0",
    "verified": "SELECT NULL::VARCHAR AS example_id, NULL::VARCHAR AS split LIMIT 0",
}


def build_example_lineage(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame) -> None:
    """Rebuild ``example_lineage``: one row per raw record or quarantined line."""
    ensure_tables(con)
    ensure_registry(con)
    ensure_held_table(con)
    if not table_exists(con, "rejections"):
        raise RuntimeError("table rejections is missing: materialize filtered first")
    for name, sql in _STAND_INS.items():
        if not table_exists(con, name):  # e.g. verified before its first passing audit
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    register_decisions(con, decisions)
    con.execute(_LINEAGE_SQL)


def trace(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, key: str) -> dict[str, Any]:
    """Everything known about one example id or record id, stage by stage."""
    sections: dict[str, Any] = {}

    def rows(sql: str, params: list) -> list[dict]:
        return _records(con.execute(sql, params).df())

    raw = rows(
        "SELECT record_id, example_id, batch, source_file, line_no, source, prompt, response, "
        "ingested_at FROM raw_scrapes WHERE example_id = ? OR record_id = ? ORDER BY record_id",
        [key, key],
    )
    example_ids = sorted({r["example_id"] for r in raw}) or [key]
    sections["raw_scrapes"] = raw
    sections["quarantine"] = rows(
        "SELECT batch, source_file, line_no, reason FROM quarantine "
        "WHERE batch || ':' || line_no = ?",
        [key],
    )
    ids = example_ids
    placeholders = ", ".join("?" for _ in ids)
    for name, sql in {
        "rejections": f"SELECT record_id, rule, reason FROM rejections "
        f"WHERE example_id IN ({placeholders}) ORDER BY record_id, rule",
        "filtered": f"SELECT record_id, example_id FROM filtered "
        f"WHERE example_id IN ({placeholders})",
        "review_queue": f"SELECT example_id, priority, queue, queue_reason, review_status "
        f"FROM review_queue WHERE example_id IN ({placeholders})",
        "reviewed": f"SELECT example_id, response, original_response, edited, decided_by, "
        f"decided_by_role FROM reviewed WHERE example_id IN ({placeholders})",
        "verified": f"SELECT example_id, response, verified_by, split FROM verified "
        f"WHERE example_id IN ({placeholders})",
        "models": f"SELECT m.model_id, m.created_at, me.split FROM model_examples me "
        f"JOIN models m USING (model_id) WHERE me.example_id IN ({placeholders}) "
        f"ORDER BY m.created_at",
    }.items():
        table = "model_examples" if name == "models" else name
        sections[name] = rows(sql, ids) if table_exists(con, table) else []
    batches = sorted({r["batch"] for r in raw} | {key.rsplit(":", 1)[0]})
    sections["held"] = (
        rows(
            f"SELECT stage, batch, reason, staged_table, held_at FROM {HELD_TABLE} "
            f"WHERE batch IN ({', '.join('?' for _ in batches)}) ORDER BY stage",
            batches,
        )
        if table_exists(con, HELD_TABLE)
        else []
    )
    history = decisions[decisions["example_id"].isin(ids)] if len(decisions) else decisions
    sections["decisions"] = _records(history)
    asked = key if any(r["record_id"] == key for r in raw) else None
    sections["summary"] = _summary(sections, asked)
    return sections


def _summary(s: dict[str, Any], record_id: str | None = None) -> str:
    """The one-line verdict: about the record ``record_id`` when one was asked for (a
    duplicate is rejected even though its content survives in another record), else
    about the example."""
    if s["held"] and not s["filtered"]:
        hold = s["held"][0]
        return f"held back at {hold['stage']} (not published): {hold['reason']}"
    if s["quarantine"] and not s["raw_scrapes"]:
        return f"quarantined at ingest: {s['quarantine'][0]['reason']}"
    if not s["raw_scrapes"]:
        return "unknown id: not in raw_scrapes or quarantine"
    own = [r for r in s["rejections"] if record_id is not None and r["record_id"] == record_id]
    if own:
        reasons = "; ".join(f"{r['rule']} ({r['reason']})" for r in own)
        verdict = f"rejected by filters: {reasons}"
        if s["filtered"]:
            kept = s["filtered"][0]["record_id"]
            verdict += f"; the kept copy {kept} is {_summary(s)}"
        return verdict
    if not s["filtered"]:
        reasons = "; ".join(f"{r['rule']} ({r['reason']})" for r in s["rejections"])
        return f"rejected by filters: {reasons}"
    if s["models"]:
        return f"verified and used to train {len(s['models'])} model(s)"
    if s["verified"]:
        return f"verified ({s['verified'][0]['split']} split), not yet in a trained model"
    if s["reviewed"]:
        return "accepted in review, awaiting expert verification"
    status = s["review_queue"][0]["review_status"] if s["review_queue"] else "not queued"
    return f"kept by filters; review status: {status}"


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
