"""``review_queue``: the coverage sample and the suspect queue over ``filtered``."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.curation.review import agreement, suspect_model, suspects
from curation_assets.curation.review.review_stage.common import (
    SUSPECT_TABLE,
    json_list_sql,
    register_decisions,
    table_columns,
    table_names,
)


@dataclass(frozen=True)
class QueueConfig:
    """How the queues are built (from ``Settings``; defaults suit tests)."""

    coverage_sample_size: int = 500
    suspect_queue_size: int = 500
    reviews_required: int = 1
    verified_takes_suspect_fixes: bool = False
    labelled: bool = True  # classification: the response is a label
    suspect_encoder: str = "none"  # see ``suspects.encoder_for``
    seed: int = 0
    suspect_fit_rows: int = 20_000  # training sample of the suspect models (all labels)
    suspect_fit_rows_per_label: int = 400
    suspect_refit: bool = False  # refit the suspect models even if nothing calls for it
    cache_dir: Path | None = None  # distilled static encoders (None: the user cache)

    def refresh(self) -> suspects.RefreshConfig:
        """The suspect-score settings of this queue configuration."""
        return suspects.RefreshConfig(
            labelled=self.labelled,
            encoder=self.suspect_encoder,
            cache_dir=self.cache_dir,
            fit=suspect_model.FitConfig(
                max_rows=self.suspect_fit_rows,
                max_per_label=self.suspect_fit_rows_per_label,
                seed=self.seed,
            ),
            refit=self.suspect_refit,
        )


def annotate_filtered(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``_annotated``: example_id with ``flags``, ``pii``, ``near_duplicates``.

    Tolerant of what the filter stage provides: rule warnings from a ``flags``,
    ``warnings`` or ``rule_warnings`` column of ``filtered``; PII from the
    ``pii_redactions`` table (kind and place in the shown text) or a ``pii`` column; near
    duplicates from a ``dedup_cluster``/``cluster_id`` column of ``filtered`` or from the
    ``near_duplicates`` table (records the dedup rule removed in favour of this one).
    Anything missing is an empty JSON list.
    """
    cols = table_columns(con, "filtered")
    flags = next(
        (json_list_sql(c, cols[c]) for c in ("flags", "warnings", "rule_warnings") if c in cols),
        "'[]'",
    )
    tables = table_names(con)
    pii = "'[]'"
    joins = []
    if "pii_redactions" in tables:
        joins.append(
            """LEFT JOIN (SELECT record_id, to_json(list({'field': "column", 'kind': kind,
                   'start': out_start, 'end': out_end} ORDER BY "column", out_start))::VARCHAR
                   AS pii_json FROM pii_redactions GROUP BY record_id) p USING (record_id)"""
        )
        pii = "coalesce(p.pii_json, '[]')"
    elif "pii" in cols:
        pii = json_list_sql("f.pii", cols["pii"])
    near = "'[]'"
    cluster = next((c for c in ("dedup_cluster", "cluster_id") if c in cols), None)
    if cluster:
        joins.append(
            f"""LEFT JOIN (SELECT a.example_id, to_json(list({{'example_id': b.example_id,
                   'prompt': b.prompt}} ORDER BY b.example_id))::VARCHAR AS near_json
                   FROM filtered a JOIN filtered b ON a.{cluster} = b.{cluster}
                   AND a.example_id != b.example_id GROUP BY a.example_id) n USING (example_id)"""
        )
        near = "coalesce(n.near_json, '[]')"
    elif "near_duplicates" in tables and {"record_id", "representative_record_id"} <= set(
        table_columns(con, "near_duplicates")
    ):
        joins.append(
            """LEFT JOIN (SELECT d.representative_record_id AS record_id,
                   to_json(list({'example_id': r.example_id, 'prompt': r.prompt}
                   ORDER BY r.record_id))::VARCHAR AS near_json
                   FROM near_duplicates d JOIN raw_scrapes r USING (record_id)
                   GROUP BY 1) n USING (record_id)"""
        )
        near = "coalesce(n.near_json, '[]')"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _annotated AS
            SELECT *, coalesce(json_array_length(flags), 0) AS n_flags FROM (
                SELECT f.example_id, {flags} AS flags, {pii} AS pii,
                       {near} AS near_duplicates
                FROM filtered f {" ".join(joins)})"""
    )


def score_suspects(
    con: duckdb.DuckDBPyConnection,
    config: QueueConfig,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Bring ``suspect_scores`` up to date (one row per filtered example; 1 = surely wrong).

    Needs ``_annotated``. Only examples without a score from the current model are scored
    (``suspects.refresh_scores``). Returns what was done.
    """
    return suspects.refresh_scores(con, config.refresh(), log)


def _previous_assignments(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``_locked``: decided examples keep the queue they were decided in."""
    has_queue = "queue" in table_columns(con, "review_queue")
    source = (
        "SELECT example_id, queue FROM review_queue WHERE example_id IN "
        "(SELECT example_id FROM _decisions) AND example_id IN (SELECT example_id FROM filtered)"
        if has_queue
        else "SELECT NULL::VARCHAR AS example_id, NULL::VARCHAR AS queue LIMIT 0"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _locked AS {source}")


def build_review_queue(
    con: duckdb.DuckDBPyConnection,
    decisions: pd.DataFrame,
    config: QueueConfig | None = None,
    labels: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> dict:
    """Rebuild ``review_queue`` (both queues) from ``filtered``; refresh ``suspect_scores``.

    Returns what ``score_suspects`` did, with the seconds of each sub-step.
    """
    import time

    config = config or QueueConfig()
    started = time.perf_counter()
    register_decisions(con, decisions, labels)
    annotate_filtered(con)
    annotated = time.perf_counter()
    info = score_suspects(con, config, log)
    scored = time.perf_counter()
    _previous_assignments(con)
    agreement.register_votes(con)
    agreement.register_resolution(con, config.reviews_required)
    label_key = "f.response" if config.labelled else "''"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _coverage_order AS
        WITH base AS (
            SELECT f.example_id, {label_key} AS label_key, coalesce(f.source, '') AS source,
                   length(f.prompt) AS plen, a.n_flags > 0 AS flagged,
                   sha256(f.example_id) AS h,
                   ntile(3) OVER (ORDER BY length(f.prompt) + length(f.response),
                                  sha256(f.example_id)) AS len_bucket
            FROM filtered f JOIN _annotated a USING (example_id)
        ),
        strata AS (
            SELECT *, label_key || '|' || source || '|' || len_bucket || '|' || flagged
                          AS stratum,
                   row_number() OVER (PARTITION BY label_key ORDER BY plen, h) AS short_rank,
                   row_number() OVER (PARTITION BY label_key ORDER BY plen DESC, h)
                          AS long_rank,
                   row_number() OVER (PARTITION BY label_key, source, len_bucket, flagged
                                      ORDER BY h) AS stratum_rank,
                   count(*) OVER (PARTITION BY label_key, source, len_bucket, flagged)
                          AS stratum_size
            FROM base
        ),
        in_label AS (
            SELECT *, row_number() OVER (
                       PARTITION BY label_key
                       ORDER BY CASE WHEN short_rank = 1 THEN 0 WHEN long_rank = 1 THEN 1
                                     ELSE 2 END,
                                (stratum_rank - 1) / stratum_size, sha256(stratum))
                       AS label_rank
            FROM strata
        )
        SELECT example_id, stratum, stratum_rank, stratum_size, label_rank,
               short_rank = 1 AS shortest, long_rank = 1 AS longest,
               flagged, len_bucket,
               row_number() OVER (ORDER BY label_rank, sha256(label_key)) AS coverage_order
        FROM in_label
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _membership AS
        WITH locked_cov AS (SELECT example_id FROM _locked WHERE queue = 'coverage'),
        fill_cov AS (
            SELECT example_id FROM _coverage_order
            WHERE example_id NOT IN (SELECT example_id FROM _locked)
            ORDER BY coverage_order
            LIMIT greatest({int(config.coverage_sample_size)}
                           - (SELECT count(*) FROM locked_cov), 0)
        ),
        coverage AS (SELECT * FROM locked_cov UNION ALL SELECT * FROM fill_cov),
        locked_sus AS (SELECT example_id FROM _locked WHERE queue = 'suspect'),
        fill_sus AS (
            SELECT example_id FROM {SUSPECT_TABLE}
            WHERE example_id NOT IN (SELECT example_id FROM _locked)
              AND example_id NOT IN (SELECT example_id FROM coverage)
            ORDER BY score DESC, sha256(example_id)
            LIMIT greatest({int(config.suspect_queue_size)}
                           - (SELECT count(*) FROM locked_sus), 0)
        )
        SELECT example_id, 'coverage' AS queue FROM coverage
        UNION ALL
        SELECT example_id, 'suspect' FROM (SELECT * FROM locked_sus UNION ALL
                                           SELECT * FROM fill_sus)
        """
    )
    take_suspect = "TRUE" if config.verified_takes_suspect_fixes else "FALSE"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE review_queue AS
        WITH counts AS (
            SELECT example_id, count(*) AS n_decisions FROM _decisions GROUP BY example_id
        ),
        queued AS (
            SELECT f.example_id, f.record_id, f.batch, f.source, f.prompt, f.response, m.queue,
                   s.score, s.suggested AS suggested_response, s.reason AS suspect_reason,
                   c.stratum, c.stratum_rank, c.stratum_size, c.shortest, c.longest, c.flagged,
                   c.len_bucket, c.coverage_order, r.status, r.decision, r.votes,
                   coalesce(r.n_reviewers, 0) AS n_reviewers,
                   coalesce(k.n_decisions, 0) AS n_decisions,
                   a.flags, a.pii, a.near_duplicates,
                   CASE WHEN r.status IS NULL THEN 'pending'
                        WHEN r.status IN ('in_review', 'needs_expert') THEN r.status
                        WHEN r.decision = 'reject' THEN 'rejected'
                        WHEN r.status = 'agreed' THEN 'reviewed'
                        WHEN m.queue = 'coverage' OR {take_suspect} THEN 'verified'
                        ELSE 'expert_checked' END AS review_status
            FROM _membership m
            JOIN filtered f USING (example_id)
            JOIN _annotated a USING (example_id)
            JOIN {SUSPECT_TABLE} s USING (example_id)
            JOIN _coverage_order c USING (example_id)
            LEFT JOIN _resolution r USING (example_id)
            LEFT JOIN counts k USING (example_id)
        )
        SELECT example_id, record_id, batch, source, prompt, response, queue,
               row_number() OVER (
                   PARTITION BY queue
                   ORDER BY CASE review_status WHEN 'needs_expert' THEN 0
                                 WHEN 'in_review' THEN 1 WHEN 'pending' THEN 1
                                 WHEN 'reviewed' THEN 2 ELSE 3 END,
                            CASE WHEN queue = 'coverage' THEN coverage_order END,
                            score DESC, sha256(example_id)) AS priority,
               CASE WHEN review_status = 'needs_expert'
                    THEN 'reviewers disagree (' || votes || '); ' ELSE '' END
               || CASE WHEN queue = 'suspect' THEN suspect_reason
                       ELSE 'coverage: ' || stratum_rank || ' of ' || stratum_size
                            || ' in stratum '
                            || {"'label ' || response || ', '" if config.labelled else "''"}
                            || 'source ' || coalesce(source, '-') || ', '
                            || ['short', 'medium', 'long'][len_bucket]
                            || CASE WHEN flagged THEN ', rule warnings' ELSE '' END
                            || CASE WHEN shortest THEN '; shortest of its label'
                                    WHEN longest THEN '; longest of its label' ELSE '' END
                            || CASE WHEN score >= 0.5 THEN '; also ' || suspect_reason
                                    ELSE '' END
                  END AS queue_reason,
               round(score, 4) AS score, suggested_response, review_status, n_decisions,
               n_reviewers, {max(int(config.reviews_required), 1)} AS reviews_required,
               flags, pii, near_duplicates
        FROM queued
        ORDER BY queue, priority
        """
    )
    info["step_seconds"] = {
        "annotate": round(annotated - started, 2),
        "suspect_scores": round(scored - annotated, 2),
        "queues": round(time.perf_counter() - scored, 2),
    }
    return info


def queue_for_app(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The rows ``decisions.publish_queue`` takes (what the review app shows)."""
    return con.sql(
        "SELECT example_id, queue, priority::INTEGER AS priority, queue_reason, score, prompt, "
        "response, source, batch, flags, pii, near_duplicates, "
        "reviews_required::INTEGER AS reviews_required FROM review_queue ORDER BY queue, priority"
    ).df()
