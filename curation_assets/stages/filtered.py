"""Stage 2, filtered: named rules annotate every raw record; survivors form ``filtered``."""

import os
import secrets
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.conditions import ON_NEW_DATA
from curation_assets.config import Settings
from curation_assets.core import filter_stage, filtering, warehouse
from curation_assets.core.expectations import Validation, expect
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, SettingsParam

GROUP = "filtering"


def filter_config(settings: Settings) -> filter_stage.FilterConfig:
    """Every threshold of the stage, from settings (one obvious place to change them)."""
    eval_files = (*settings.decontamination_files, *getattr(settings, "eval_files", ()))
    return filter_stage.FilterConfig(
        task_type=settings.task_type,
        labels=settings.labels,
        min_prompt_chars=settings.min_prompt_chars,
        max_prompt_chars=settings.max_prompt_chars,
        min_response_chars=settings.min_response_chars,
        max_response_chars=settings.max_response_chars,
        languages=settings.languages,
        min_language_score=settings.min_language_score,
        language_document_chars=settings.language_document_chars,
        dedup_threshold=settings.near_duplicate_threshold or None,
        decontamination_ngram=settings.decontamination_ngram,
        pii_kinds=settings.pii_kinds,
        pii_key=_pii_key(settings),
        eval_files=tuple(Path(f) for f in dict.fromkeys(eval_files)),
    )


def rules(settings: Settings) -> list[filtering.Rule]:
    """The rule set with the thresholds from settings."""
    return filter_stage.rules(filter_config(settings))


def _pii_key(settings: Settings) -> bytes:
    """The key of the PII value hashes: ``CURATION_PII_KEY``, else a random key kept (0600)
    next to the warehouse, so masked values cannot be recovered by hashing guesses."""
    if os.environ.get("CURATION_PII_KEY"):
        return os.environ["CURATION_PII_KEY"].encode()
    path = settings.data_dir / ".pii_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "filtered",
            deps=["raw_scrapes"],
            description=(
                "Raw records that no filter rule fired on, one row per distinct example, "
                "PII masked (spans in `pii_redactions`). Rules: lengths, labels, exact and "
                "near duplicates (MinHash LSH, incremental across batches), pair rules "
                "(instruction data) or Gopher/C4/FineWeb rules (web documents), language, "
                "decontamination against evaluation data."
            ),
            group_name=GROUP,
            kinds={"duckdb", "table"},
            owners=["team:curation"],
            automation_condition=ON_NEW_DATA,
        ),
        dg.AssetSpec(
            "rejections",
            deps=["raw_scrapes"],
            description="One row per (raw record, rule that fired), with the rule's reason.",
            group_name=GROUP,
            kinds={"duckdb", "table"},
            owners=["team:curation"],
        ),
    ],
    pool=DUCKDB_POOL,
)
def filter_raw_scrapes(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsParam
):
    """Annotate new records, deduplicate them against everything kept, run every rule."""
    cfg = filter_config(settings)
    rule_set = filter_stage.rules(cfg)
    with duckdb.get_connection() as con:
        warehouse.ensure_tables(con)
        report = filter_stage.run_stage(con, cfg)
        per_rule = filtering.rule_counts(con)
        accounting = filtering.batch_accounting(con).df().to_dict("records")
        kept = warehouse.count(con, "filtered")
        rejected_records = con.execute(
            "SELECT count(DISTINCT record_id) FROM rejections"
        ).fetchall()[0][0]
        raw = warehouse.count(con, "raw_scrapes")
        quarantined = warehouse.count(con, "quarantine")
        sample = warehouse.preview(
            con, "SELECT record_id, example_id, rule, reason FROM rejections ORDER BY record_id"
        )
        pii = filter_stage.pii_summary(con)
        worst = warehouse.preview(
            con,
            "SELECT batch, rule, rejected, records, drop_rate, bound "
            f"FROM ({_rates_sql(settings)}) ORDER BY drop_rate DESC",
        )
    context.log.info(f"filtered: {raw} raw records -> {kept} kept, {rejected_records} rejected")
    counts = {c["rule"]: c["records"] for c in per_rule}
    rule_table = [
        {"rule": r.name, "scope": r.scope, "reason": r.reason, "records": counts.get(r.name, 0)}
        for r in rule_set
    ]
    steps = [
        {"step": k, "seconds": v, "new_records": report.new_records.get(k, "")}
        for k, v in report.seconds.items()
    ]
    yield dg.MaterializeResult(
        asset_key="filtered",
        metadata={
            "dagster/row_count": kept,
            "raw_records": raw,
            "kept": kept,
            "rejected": int(rejected_records),
            "quarantined": quarantined,
            "counts_add_up": raw == kept + rejected_records,
            "per_rule": md_table(rule_table),
            "per_batch": md_table(accounting),
            "highest_rule_drop_rates": md_table(worst),
            "pii_masked": md_table(pii) if pii else "no PII found",
            "steps": md_table(steps),
            "stage_seconds": round(sum(report.seconds.values()), 2),
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejections",
        metadata={
            "dagster/row_count": sum(c["records"] for c in per_rule),
            "rejected_records": int(rejected_records),
            "sample": md_table(sample),
            "per_rule_counts": dg.MetadataValue.json(counts),
        },
    )


def filtered_expectations(settings: Settings) -> list[Validation]:
    """What ``filtered`` must satisfy before anything reaches review."""
    row_rules = [
        expect("ExpectColumnValuesToNotBeNull", column="example_id"),
        expect("ExpectColumnValuesToBeUnique", column="example_id"),
        expect(
            "ExpectColumnValueLengthsToBeBetween",
            column="prompt",
            min_value=settings.min_prompt_chars,
            max_value=None,
        ),
        expect(
            "ExpectColumnValueLengthsToBeBetween",
            column="response",
            min_value=max(settings.min_response_chars, 1),
        ),
        expect("ExpectTableRowCountToBeBetween", min_value=1),
    ]
    if settings.labels and settings.task_type == "classification":
        row_rules.append(
            expect(
                "ExpectColumnValuesToBeInSet", column="response", value_set=list(settings.labels)
            )
        )
    return [
        Validation("rows", "SELECT example_id, prompt, response FROM filtered", row_rules),
        Validation(
            "rule_drop_rates",
            _rates_sql(settings),
            [expect("ExpectColumnValuesToBeInSet", column="over_bound", value_set=[False])],
        ),
        Validation(
            "batch_accounting",
            "SELECT * FROM (" + _ACCOUNTING_SQL + ")",
            [
                expect(
                    "ExpectColumnValuesToBeBetween", column="unaccounted", min_value=0, max_value=0
                ),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="rejection_rate",
                    min_value=0,
                    max_value=settings.max_rejection_rate,
                ),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="quarantine_rate",
                    min_value=0,
                    max_value=settings.max_quarantine_rate,
                ),
            ],
        ),
    ]


_ACCOUNTING_SQL = filtering.batch_accounting_sql()


def _rates_sql(settings: Settings) -> str:
    """Per (batch, rule): the share of the batch's records the rule fired on, its bound."""
    overrides = " ".join(
        f"WHEN {_quote(name)} THEN {float(rate)}"
        for name, rate in settings.rule_drop_rate_bounds.items()
    )
    bound = (
        f"CASE j.rule {overrides} ELSE {float(settings.max_rule_drop_rate)} END"
        if overrides
        else str(float(settings.max_rule_drop_rate))
    )
    return f"""
        SELECT j.batch, j.rule, j.rejected, b.records_loaded AS records,
               round(j.rejected / nullif(b.records_loaded, 0), 4) AS drop_rate,
               {bound} AS bound,
               coalesce(j.rejected / nullif(b.records_loaded, 0) > {bound}, FALSE)
                   AS over_bound
        FROM (SELECT batch, rule, count(DISTINCT record_id) AS rejected
              FROM rejections GROUP BY ALL) j
        JOIN ingest_batches b USING (batch)"""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


filtered_check = gx_suite_check(
    "filtered",
    filtered_expectations,
    "Great Expectations suite: example ids present and unique, no empty prompt or response, "
    "labels in the allowed set; per batch: read = kept + rejected + quarantined, rejection "
    "and quarantine rates within their bounds, and no single rule dropping more of a batch "
    "than its bound (a rule that suddenly drops 60% stops the graph).",
)
