"""``reviewed`` and ``verified``: what decisions accepted, what experts verified, expert time."""

from collections.abc import Sequence

import duckdb
import pandas as pd

from curation_assets.curation.filtering import decontamination
from curation_assets.curation.records import NORMALIZED_PROMPT_SQL
from curation_assets.curation.review import agreement
from curation_assets.curation.review.review_stage.common import register_decisions, table_columns


def build_reviewed(
    con: duckdb.DuckDBPyConnection,
    decisions: pd.DataFrame,
    reviews_required: int = 1,
    labels: Sequence[str] = (),
) -> pd.DataFrame:
    """Rebuild ``reviewed`` and ``review_agreement``; returns the agreement statistics.

    ``reviewed``: filtered examples whose deciding decision keeps them (an expert's, or
    ``reviews_required`` agreeing reviewers'), edits applied (the original is kept), with
    ``from_queue`` (coverage / suspect / unqueued: decided outside the queues).
    """
    register_decisions(con, decisions, labels)
    agreement.register_votes(con)
    agreement.register_resolution(con, reviews_required)
    has_queue = "queue" in table_columns(con, "review_queue")
    queue = "q.queue" if has_queue else "NULL"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE reviewed AS
        WITH counts AS (
            SELECT example_id, count(*) AS n_decisions FROM _decisions GROUP BY example_id
        )
        SELECT f.example_id, f.record_id, f.batch, f.source, f.prompt,
               CASE WHEN r.decision = 'edit' THEN r.corrected_response ELSE f.response END
                   AS response,
               f.response AS original_response,
               r.decision = 'edit' AND r.corrected_response IS DISTINCT FROM f.response
                   AS edited,
               r.decision, r.reviewer AS decided_by, r.role AS decided_by_role,
               r.decided_at, r.decision_id, k.n_decisions, r.n_reviewers,
               r.status AS resolution, coalesce({queue}, 'unqueued') AS from_queue
        FROM _resolution r
        JOIN filtered f USING (example_id)
        JOIN counts k USING (example_id)
        LEFT JOIN review_queue q USING (example_id)
        WHERE r.status IN ('expert', 'agreed') AND r.decision IN ('accept', 'edit')
        ORDER BY from_queue, f.example_id
        """
    )
    votes, expert = agreement.agreement_frames(con)
    stats = agreement.agreement_stats(votes, expert)
    agreement.store_agreement(con, stats)
    return stats


def build_verified(
    con: duckdb.DuckDBPyConnection,
    decisions: pd.DataFrame,
    validation_fraction: float,
    take_suspect_fixes: bool = False,
    decontamination_ngram: int = 8,
) -> None:
    """Rebuild ``verified``: expert-decided examples of the coverage sample, fixed split.

    With ``take_suspect_fixes`` expert decisions from the suspect queue count too.
    ``expert_seconds``: all expert time spent on the example. The split is drawn from a
    hash of the normalized prompt, so an example keeps its split forever and two examples
    with the same prompt always share one. A train example that shares word n-grams with a
    validation example gets split ``excluded`` (kept, never trained on), with the
    validation example in ``near_validation``: the reported accuracy is never inflated,
    even on the first run, before the filtered stage can decontaminate against it.
    """
    register_decisions(con, decisions)
    queues = "('coverage', 'suspect')" if take_suspect_fixes else "('coverage')"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE verified AS
        WITH expert_time AS (
            SELECT example_id, sum(seconds_spent) AS expert_seconds
            FROM _decisions WHERE role = 'expert' GROUP BY example_id
        )
        SELECT r.example_id, r.prompt, r.response, r.original_response, r.edited,
               r.decided_by AS verified_by, r.decided_at AS verified_at, r.batch, r.source,
               r.from_queue, coalesce(t.expert_seconds, 0) AS expert_seconds,
               CASE WHEN ('0x' || substr(sha256({NORMALIZED_PROMPT_SQL}), 1, 8))::UBIGINT
                         / 4294967296.0 < {float(validation_fraction)}
                    THEN 'validation' ELSE 'train' END AS split
        FROM reviewed r LEFT JOIN expert_time t USING (example_id)
        WHERE r.decided_by_role = 'expert' AND r.from_queue IN {queues}
        ORDER BY r.example_id
        """
    )
    exclude_near_validation(con, decontamination_ngram)


def exclude_near_validation(con: duckdb.DuckDBPyConnection, ngram: int) -> None:
    """Move train rows that overlap a validation row (word n-grams) to split ``excluded``."""
    con.execute("ALTER TABLE verified ADD COLUMN near_validation VARCHAR")
    validation = con.sql(
        "SELECT example_id AS eval_id, prompt || ' ' || response AS text "
        "FROM verified WHERE split = 'validation'"
    ).df()
    if not len(validation):
        return
    found = decontamination.find_contamination(
        con,
        validation,
        "SELECT example_id AS record_id, prompt, response FROM verified WHERE split = 'train'",
        config=decontamination.DecontaminationConfig(ngram=ngram),
    )
    if not len(found):
        return
    first = found.sort_values(["record_id", "eval_id"]).drop_duplicates("record_id")
    con.register("_near_validation", first[["record_id", "eval_id"]])
    try:
        con.execute(
            """UPDATE verified SET split = 'excluded', near_validation = n.eval_id
               FROM _near_validation n WHERE verified.example_id = n.record_id"""
        )
    finally:
        con.unregister("_near_validation")


def expert_time(con: duckdb.DuckDBPyConnection, take_suspect_fixes: bool = False) -> dict:
    """Expert-time accounting (needs ``_decisions``, ``review_queue`` and ``verified``).

    ``expert_decisions_per_hour`` = 3600 * decisions / their seconds (decisions with a
    time only); ``expert_seconds_per_verified_example`` = expert seconds spent on the
    queue(s) that feed ``verified`` (rejections included: they cost time too) / rows.
    """
    queues = "('coverage', 'suspect')" if take_suspect_fixes else "('coverage')"
    n, timed, seconds, feeding = con.execute(
        f"""SELECT count(*), count(seconds_spent), coalesce(sum(seconds_spent), 0),
                   coalesce(sum(seconds_spent) FILTER (WHERE example_id IN (
                       SELECT example_id FROM review_queue WHERE queue IN {queues})), 0)
            FROM _decisions WHERE role = 'expert'"""
    ).fetchall()[0]
    rows = con.execute("SELECT count(*) FROM verified").fetchall()[0][0]
    return {
        "expert_decisions": int(n),
        "expert_seconds": round(float(seconds), 1),
        "expert_seconds_per_decision": round(seconds / timed, 1) if timed else None,
        "expert_decisions_per_hour": round(3600 * timed / seconds, 1) if seconds else None,
        "expert_seconds_per_verified_example": round(feeding / rows, 1) if rows else None,
    }


def split_overlap_sql(table: str = "verified") -> str:
    """Query: number of normalized prompts present in both train and validation."""
    return f"""SELECT count(*) FROM (
              SELECT {NORMALIZED_PROMPT_SQL} AS p FROM {table} GROUP BY p
              HAVING count(DISTINCT split) > 1)"""


def split_overlap(con: duckdb.DuckDBPyConnection, table: str = "verified") -> int:
    """Number of normalized prompts present in both the train and validation split."""
    row = con.execute(split_overlap_sql(table)).fetchall()[0]
    return int(row[0]) if row else 0
