"""What the dataset card tells about the exported rows, read from the warehouse in SQL.

Counts per split and per label (classification) or the length of prompts and responses
(instruction data); where the rows came from (batches with their accounting, sources);
what the rules rejected (``rejections``); the review decisions (``review_queue``,
``reviewed``) and who made them; the expert time (``verified.expert_seconds``). Every table
but ``verified`` is optional: what a warehouse lacks is left out of the card.
"""

from dataclasses import dataclass, field

import duckdb

from curation_assets.curation.export.dataset import EXCLUDED, SPLITS
from curation_assets.curation.warehouse import table_exists

_EXPORTED = "split IN (" + ", ".join(f"'{s}'" for s in SPLITS) + ")"


@dataclass(frozen=True)
class Provenance:
    """Plain rows (lists of dicts) for the card and the asset's metadata."""

    labelled: bool
    splits: list[dict]
    per_label: list[dict] = field(default_factory=list)  # classification only
    lengths: list[dict] = field(default_factory=list)  # instruction data only
    batches: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    rejections: list[dict] | None = None  # None: the warehouse has no rejections table
    queue_outcomes: list[dict] = field(default_factory=list)
    reviewed_decisions: list[dict] = field(default_factory=list)
    reviewers: list[dict] = field(default_factory=list)
    experts: list[dict] = field(default_factory=list)
    expert_time: dict = field(default_factory=dict)
    batch_hashes: dict[str, str | None] = field(default_factory=dict)


def read_provenance(con: duckdb.DuckDBPyConnection, labelled: bool) -> Provenance:
    """The card's facts about the published ``verified`` (``labelled``: responses are
    labels) and the tables around it."""
    rows = _Rows(con)
    optional = ("ingest_batches", "rejections", "review_queue", "reviewed")
    has = {t: table_exists(con, t) for t in optional}
    labels = "count(DISTINCT response) AS labels, " if labelled else ""
    splits = rows(
        f"""SELECT split, count(*) AS examples, {labels}sum(edited::INT) AS corrected_by_expert
            FROM verified GROUP BY split
            ORDER BY list_position(['train', 'validation', '{EXCLUDED}'], split), split"""
    )
    per_label = lengths = []
    if labelled:
        per_label = rows(
            f"""SELECT response AS label,
                       count(*) FILTER (WHERE split = 'train') AS train,
                       count(*) FILTER (WHERE split = 'validation') AS validation,
                       count(*) FILTER (WHERE {_EXPORTED}) AS total,
                       count(*) FILTER (WHERE {_EXPORTED} AND edited) AS corrected_by_expert,
                       count(*) FILTER (WHERE split = '{EXCLUDED}') AS excluded
                FROM verified GROUP BY response ORDER BY response"""
        )
    else:
        lengths = rows(
            f"""SELECT split, count(*) AS examples,
                       min(length(response)) AS response_chars_min,
                       median(length(response))::BIGINT AS response_chars_median,
                       round(avg(length(response)), 1) AS response_chars_mean,
                       max(length(response)) AS response_chars_max,
                       round(avg(length(prompt)), 1) AS prompt_chars_mean
                FROM verified WHERE {_EXPORTED} GROUP BY split ORDER BY split DESC"""
        )
    in_dataset = f"""SELECT batch, count(*) FILTER (WHERE {_EXPORTED}) AS in_dataset
                     FROM verified GROUP BY batch"""
    if has["ingest_batches"]:
        rejected = (
            "SELECT batch, count(DISTINCT record_id) AS rejected FROM rejections GROUP BY batch"
            if has["rejections"]
            else "SELECT NULL::VARCHAR AS batch, NULL::BIGINT AS rejected LIMIT 0"
        )
        batches = rows(
            f"""SELECT b.batch, b.units_read, b.records_loaded,
                       b.records_quarantined AS quarantined,
                       coalesce(r.rejected, 0) AS rejected_by_rules,
                       coalesce(v.in_dataset, 0) AS in_dataset
                FROM ingest_batches b LEFT JOIN ({rejected}) r USING (batch)
                LEFT JOIN ({in_dataset}) v USING (batch)
                ORDER BY b.batch"""
        )
        hashes = dict(
            con.execute(
                "SELECT v.batch, b.sha256 FROM (SELECT DISTINCT batch FROM verified) v "
                "LEFT JOIN ingest_batches b USING (batch) ORDER BY v.batch"
            ).fetchall()
        )
    else:
        batches = rows(f"{in_dataset} ORDER BY batch")
        hashes = dict.fromkeys(r["batch"] for r in batches)
    return Provenance(
        labelled=labelled,
        splits=splits,
        per_label=per_label,
        lengths=lengths,
        batches=batches,
        sources=rows(
            f"SELECT source, count(*) AS examples FROM verified WHERE {_EXPORTED} "
            "GROUP BY source ORDER BY examples DESC, source"
        ),
        rejections=rows(
            "SELECT rule, count(DISTINCT record_id) AS records FROM rejections "
            "GROUP BY rule ORDER BY records DESC, rule"
        )
        if has["rejections"]
        else None,
        queue_outcomes=rows(
            "SELECT queue, review_status, count(*) AS examples FROM review_queue "
            "GROUP BY ALL ORDER BY queue, examples DESC, review_status"
        )
        if has["review_queue"]
        else [],
        reviewed_decisions=rows(
            "SELECT from_queue, decided_by_role AS role, decision, count(*) AS examples "
            "FROM reviewed GROUP BY ALL ORDER BY ALL"
        )
        if has["reviewed"]
        else [],
        reviewers=rows(
            "SELECT decided_by AS person, decided_by_role AS role, count(*) AS deciding_decisions "
            "FROM reviewed GROUP BY ALL ORDER BY deciding_decisions DESC, person"
        )
        if has["reviewed"]
        else [],
        experts=rows(
            f"""SELECT verified_by AS expert, count(*) AS examples,
                       sum(edited::INT) AS corrected,
                       round(coalesce(sum(expert_seconds), 0) / 3600, 2) AS hours
                FROM verified WHERE {_EXPORTED} GROUP BY verified_by
                ORDER BY examples DESC, expert"""
        ),
        expert_time=rows(
            f"""SELECT count(*) AS examples, count(expert_seconds) AS timed,
                       round(coalesce(sum(expert_seconds), 0), 1) AS seconds,
                       round(avg(expert_seconds), 1) AS seconds_per_example
                FROM verified WHERE {_EXPORTED}"""
        )[0],
        batch_hashes=hashes,
    )


class _Rows:
    """A query's rows as plain dicts (DuckDB's Python values: NULL as None)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __call__(self, sql: str) -> list[dict]:
        result = self.con.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
