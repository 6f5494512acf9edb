"""``run_stage``: the stage's steps in order on one connection, timed (``StageReport``)."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from curation_assets.curation.filtering import dedup, rule_engine
from curation_assets.curation.filtering.filter_stage.annotation import (
    annotate_languages,
    annotate_mojibake,
)
from curation_assets.curation.filtering.filter_stage.config import FilterConfig, rules
from curation_assets.curation.filtering.filter_stage.contamination import decontaminate
from curation_assets.curation.filtering.filter_stage.redaction import redact


@dataclass
class StageReport:
    """What one run did: seconds per step and the new records each step processed."""

    seconds: dict[str, float] = field(default_factory=dict)
    new_records: dict[str, int] = field(default_factory=dict)

    def lap(self, step: str, start: float, records: int | None = None) -> float:
        now = time.perf_counter()
        self.seconds[step] = round(now - start, 3)
        if records is not None:
            self.new_records[step] = int(records)
        return now


def run_stage(
    con: duckdb.DuckDBPyConnection,
    cfg: FilterConfig,
    evaluation: pd.DataFrame | None = None,
    publish: bool = True,
) -> StageReport:
    """Run the stage on ``con``; ``evaluation`` (eval_id, text) adds evaluation texts to
    those read from ``cfg.eval_files`` and the validation split of ``verified``."""
    report = StageReport()
    t = time.perf_counter()
    rule_set = rules(cfg)
    n = annotate_mojibake(con)
    t = report.lap("mojibake", t, n)
    if cfg.languages:
        n = annotate_languages(con, cfg)
        t = report.lap("language", t, n)
    record_rules = [r for r in rule_set if r.scope == "record"]
    n = rule_engine.update_record_flags(con, record_rules)
    t = report.lap("record_rules", t, n)
    if cfg.dedup_threshold is not None:
        result = dedup.sync_records(
            con,
            dedup_source(record_rules),
            config=dedup.MinHashConfig(threshold=cfg.dedup_threshold),
            atomic=False,  # the caller's transaction (write, audit, publish) covers it
        )
        t = report.lap("near_dedup", t, result.new_records)
    n = decontaminate(con, cfg, evaluation)
    t = report.lap("decontamination", t, n)
    rule_engine.run_filters(con, rule_set, update_flags=False, publish=False)  # flags are fresh
    t = report.lap("corpus_rules_and_tables", t)
    n = redact(con, cfg)
    t = report.lap("pii", t, n)
    if publish:  # the filter stage's asset publishes after its audit instead
        rule_engine.publish_filtered(con)
        report.lap("publish", t)
    return report


def dedup_source(record_rules: Sequence[rule_engine.Rule]) -> str:
    """The first record (``rule_engine.FIRST_SEEN_ORDER``) of each example that no
    record-scope rule rejected: a function of the raw content alone."""
    fired = " OR ".join(f"f.rule_{r.name}" for r in record_rules) or "FALSE"
    # the window runs over narrow columns; the texts are joined to the ids it keeps
    return f"""
        SELECT r.record_id, r.example_id, r.prompt, r.response, r.batch, r.line_no
        FROM raw_scrapes r JOIN (
            SELECT r.record_id
            FROM raw_scrapes r
            WHERE r.record_id IN (
                SELECT f.record_id FROM {rule_engine.RECORD_FLAGS} f WHERE NOT ({fired}))
            QUALIFY row_number() OVER (
                PARTITION BY r.example_id ORDER BY {rule_engine.FIRST_SEEN_ORDER}) = 1
        ) e ON e.record_id = r.record_id"""
