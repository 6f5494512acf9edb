"""The review stages: ``review_queue`` -> ``reviewed`` -> ``verified``, in DuckDB SQL.

Two queues, two purposes (see the project notes on expert budgets):

* ``coverage``: a stratified sample of ``filtered`` (by label, source, length tertile and
  whether rule warnings fired). Within a label its shortest and longest example come
  first (edge cases), then every stratum in turn, in proportion to its size, each in a
  stable hash order; labels are interleaved, so the first N cover every label evenly.
  Experts confirm or fix it one by one, and only these decisions build ``verified``: a
  representative training set.
* ``suspect``: the examples most likely wrong (``curation.review.suspects``: confident learning on
  out-of-sample probabilities), excluding the coverage sample. Fixes made here clean the
  large set (they flow into ``reviewed``, marked ``from_queue = 'suspect'``) and show
  systematic errors; they reach ``verified`` only if ``verified_takes_suspect_fixes``.

Once an example in a queue has a decision it stays in that queue on later rebuilds, so new
data never pushes decided work out. Who decides (``curation.review.agreement``): an expert's latest
decision; else ``reviews_required`` reviewers whose latest votes agree; reviewers who
disagree send the example to an expert (``needs_expert``, first in its queue).

Decisions come from the separate decision store (``curation.review.decisions``) as a data frame and
are joined here; the warehouse never holds a lock that a reviewer waits on.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from curation_assets.curation.filtering import decontamination
from curation_assets.curation.records import NORMALIZED_PROMPT_SQL
from curation_assets.curation.review import agreement, suspect_model, suspects

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


def register_decisions(
    con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, labels: Sequence[str] = ()
) -> None:
    """Expose the decision store's rows as the ``_decisions`` view, typed.

    ``valid`` is FALSE for an edit to a label outside ``labels`` (when given): such a
    decision stays in the history but never decides anything.
    """
    con.register("_decisions_raw", decisions[list(_DECISION_COLUMNS)])
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in _DECISION_COLUMNS.items())
    allowed = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
    valid = f"decision != 'edit' OR corrected_response IN ({allowed})" if labels else "TRUE"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _decisions AS SELECT *, ({valid}) AS valid "
        f"FROM (SELECT {casts} FROM _decisions_raw)"
    )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
        [table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def _json_list_sql(column: str, dtype: str) -> str:
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


def annotate_filtered(con: duckdb.DuckDBPyConnection) -> None:
    """Temp table ``_annotated``: example_id with ``flags``, ``pii``, ``near_duplicates``.

    Tolerant of what the filter stage provides: rule warnings from a ``flags``,
    ``warnings`` or ``rule_warnings`` column of ``filtered``; PII from the
    ``pii_redactions`` table (kind and place in the shown text) or a ``pii`` column; near
    duplicates from a ``dedup_cluster``/``cluster_id`` column of ``filtered`` or from the
    ``near_duplicates`` table (records the dedup rule removed in favour of this one).
    Anything missing is an empty JSON list.
    """
    cols = _columns(con, "filtered")
    flags = next(
        (_json_list_sql(c, cols[c]) for c in ("flags", "warnings", "rule_warnings") if c in cols),
        "'[]'",
    )
    tables = _tables(con)
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
        pii = _json_list_sql("f.pii", cols["pii"])
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
        _columns(con, "near_duplicates")
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


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


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
    has_queue = "queue" in _columns(con, "review_queue")
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
    has_queue = "queue" in _columns(con, "review_queue")
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
    _exclude_near_validation(con, decontamination_ngram)


def _exclude_near_validation(con: duckdb.DuckDBPyConnection, ngram: int) -> None:
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


def split_overlap_sql(table: str = "verified") -> str:
    """Query: number of normalized prompts present in both train and validation."""
    return f"""SELECT count(*) FROM (
              SELECT {NORMALIZED_PROMPT_SQL} AS p FROM {table} GROUP BY p
              HAVING count(DISTINCT split) > 1)"""


def split_overlap(con: duckdb.DuckDBPyConnection, table: str = "verified") -> int:
    """Number of normalized prompts present in both the train and validation split."""
    row = con.execute(split_overlap_sql(table)).fetchall()[0]
    return int(row[0]) if row else 0
