"""What the queues and the decisions show: suspect and review patterns by label."""

import duckdb
import pandas as pd

from curation_assets.curation.review import agreement
from curation_assets.curation.review.review_stage.common import SUSPECT_TABLE


def suspect_patterns(con: duckdb.DuckDBPyConnection, top: int = 10) -> dict[str, list[dict]]:
    """Systematic errors the suspect scores point at (metadata of ``review_queue``)."""
    pairs = con.sql(
        f"""SELECT s.given || ' -> ' || s.suggested AS confusion, count(*) AS suspects,
                   round(avg(s.score), 3) AS mean_score
            FROM {SUSPECT_TABLE} s JOIN review_queue q USING (example_id)
            WHERE q.queue = 'suspect' AND s.suggested IS NOT NULL AND s.suggested != s.given
            GROUP BY 1 ORDER BY suspects DESC, confusion LIMIT {int(top)}"""
    ).df()
    by = {}
    for name, column in (("per_source", "f.source"), ("per_label", "f.response")):
        by[name] = con.sql(
            f"""SELECT coalesce({column}, '-') AS {name[4:]}, count(*) AS examples,
                       count(q.example_id) AS in_suspect_queue,
                       round(count(q.example_id) / count(*), 3) AS suspect_rate,
                       round(avg(s.score), 3) AS mean_score
                FROM filtered f JOIN {SUSPECT_TABLE} s USING (example_id)
                LEFT JOIN review_queue q ON q.example_id = f.example_id AND q.queue = 'suspect'
                GROUP BY 1 ORDER BY suspect_rate DESC, 1 LIMIT {int(top)}"""
        ).df()
    return {"confusions": _rows(pairs), **{k: _rows(v) for k, v in by.items()}}


def review_patterns(con: duckdb.DuckDBPyConnection, top: int = 10) -> dict[str, list[dict]]:
    """Systematic errors found by decisions (metadata of ``reviewed``).

    Corrections (given -> corrected, from deciding edits), per-source fix and reject rates
    and per reviewer how often an expert overturned them.
    """
    corrections = con.sql(
        f"""SELECT original_response || ' -> ' || response AS correction, count(*) AS examples,
                   count(*) FILTER (WHERE from_queue = 'suspect') AS from_suspect_queue
            FROM reviewed WHERE edited GROUP BY 1 ORDER BY examples DESC, 1 LIMIT {int(top)}"""
    ).df()
    sources = con.sql(
        f"""SELECT coalesce(f.source, '-') AS source, count(*) AS decided,
                   count(*) FILTER (WHERE r.decision = 'edit'
                                    AND r.corrected_response IS DISTINCT FROM f.response)
                       AS fixed,
                   count(*) FILTER (WHERE r.decision = 'reject') AS rejected,
                   round((count(*) FILTER (WHERE r.decision != 'accept')) / count(*), 3)
                       AS error_rate
            FROM _resolution r JOIN filtered f USING (example_id)
            WHERE r.status IN ('expert', 'agreed')
            GROUP BY 1 ORDER BY error_rate DESC, 1 LIMIT {int(top)}"""
    ).df()
    reviewers = con.sql(
        f"""SELECT key AS reviewer, expert_checked, overturned,
                   round(overturned_rate, 3) AS overturned_rate, items AS shared_items,
                   round(kappa, 3) AS kappa
            FROM {agreement.AGREEMENT_TABLE} WHERE scope = 'reviewer'
            ORDER BY overturned_rate DESC NULLS LAST, 1"""
    ).df()
    return {
        "corrections": _rows(corrections),
        "per_source": _rows(sources),
        "per_reviewer": _rows(reviewers),
    }


def _rows(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
