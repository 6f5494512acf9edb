"""Stage 2, filtered: named rules annotate every raw record; survivors form ``filtered``."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.conditions import ON_NEW_DATA
from curation_assets.config import Settings
from curation_assets.core import filtering, warehouse
from curation_assets.core.expectations import Validation, expect
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, SettingsParam

GROUP = "filtering"


def rules(settings: Settings) -> list[filtering.Rule]:
    """The rule set, thresholds from settings (one obvious place to change them)."""
    return filtering.rules_for(
        min_prompt_chars=settings.min_prompt_chars,
        max_prompt_chars=settings.max_prompt_chars,
        min_response_chars=settings.min_response_chars,
        max_response_chars=settings.max_response_chars,
        labels=settings.labels if settings.task_type == "classification" else (),
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "filtered",
            deps=["raw_scrapes"],
            description=(
                "Raw records that no filter rule fired on: one row per distinct example "
                "(exact duplicates collapse to the first seen)."
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
    """Run every rule in one DuckDB pass over ``raw_scrapes``."""
    rule_set = rules(settings)
    with duckdb.get_connection() as con:
        warehouse.ensure_tables(con)
        filtering.run_filters(con, rule_set)
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
    context.log.info(f"filtered: {raw} raw records -> {kept} kept, {rejected_records} rejected")
    rule_table = [
        {
            "rule": r.name,
            "reason": r.reason,
            "records": next((c["records"] for c in per_rule if c["rule"] == r.name), 0),
        }
        for r in rule_set
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
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejections",
        metadata={
            "dagster/row_count": sum(c["records"] for c in per_rule),
            "rejected_records": int(rejected_records),
            "sample": md_table(sample),
            "per_rule_counts": dg.MetadataValue.json({c["rule"]: c["records"] for c in per_rule}),
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

filtered_check = gx_suite_check(
    "filtered",
    filtered_expectations,
    "Great Expectations suite: example ids present and unique, no empty prompt or response, "
    "labels in the allowed set, and per batch: read = kept + rejected + quarantined with "
    "rejection and quarantine rates within their bounds.",
)
