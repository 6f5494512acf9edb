"""The filter stage's expectation suites (Great Expectations): what ``filtered`` and
``rejections`` must satisfy before they are published, and the per-batch drop rates."""

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect, labels_in
from curation_assets.curation.filtering import rule_engine
from curation_assets.curation.warehouse import sql_literal

#: The expectation groups of each asset's suite (one Dagster check each): what they check.
GROUPS = {
    "filtered": {
        "rows": "Example ids present and unique, prompt and response long enough, labels in "
        "the allowed set, at least one row.",
        "rule_drop_rates": "Per published batch, no rule drops more of it than its bound.",
        "batch_accounting": "Per published batch: read = kept + rejected + quarantined, "
        "rejection and quarantine rates within their bounds.",
    },
    "rejections": {
        "rejection_rows": "Every rejection names a raw record, a known rule and a reason, "
        "once per (record, rule); no record both kept and rejected.",
        "record_accounting": "Per batch, held ones included: raw records = kept + rejected.",
    },
}


def filtered_expectations(settings: Settings, skip: list[str] = ()) -> list[Validation]:
    """What ``filtered`` must satisfy before anything reaches review (per-batch bounds
    over every batch but ``skip``: held ones, and ones accepted by an override)."""
    not_skipped = (
        "WHERE batch NOT IN (" + ", ".join(sql_literal(b) for b in skip) + ")" if skip else ""
    )
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
    row_rules += labels_in(settings.allowed_labels)
    return [
        Validation(
            "rows", "SELECT example_id, prompt, response FROM filtered", row_rules, ("example_id",)
        ),
        Validation(
            "rule_drop_rates",
            f"SELECT * FROM ({rates_sql(settings)}) {not_skipped}",
            [expect("ExpectNoRuleOverItsDropBound")],
            ("batch", "rule"),
        ),
        Validation(
            "batch_accounting",
            f"SELECT * FROM ({ACCOUNTING_SQL}) {not_skipped}",
            [
                expect("ExpectEveryUnitAccountedFor"),
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
            ("batch",),
        ),
    ]


ACCOUNTING_SQL = rule_engine.batch_accounting_sql()


def rejections_expectations(rule_names: list[str]) -> list[Validation]:
    """What ``rejections`` must satisfy (blocking: a failure means the stage lost, invented
    or double-counted records, whatever the batch)."""
    rows = f"""
        SELECT j.record_id, j.rule, j.reason,
               r.record_id IS NOT NULL AS in_raw_scrapes,
               j.record_id IN (SELECT record_id FROM {rule_engine.WORKING_TABLE}) AS also_kept
        FROM rejections j LEFT JOIN raw_scrapes r USING (record_id)"""
    return [
        Validation(
            "rejection_rows",
            rows,
            [
                expect("ExpectColumnValuesToNotBeNull", column="record_id"),
                expect("ExpectColumnValuesToNotBeNull", column="rule"),
                expect("ExpectColumnValuesToNotBeNull", column="reason"),
                expect("ExpectColumnValueLengthsToBeBetween", column="reason", min_value=1),
                expect("ExpectColumnValuesToBeInSet", column="rule", value_set=list(rule_names)),
                expect("ExpectCompoundColumnsToBeUnique", column_list=["record_id", "rule"]),
                expect("ExpectRejectionsToNameRawRecords"),
                expect("ExpectNoRecordBothKeptAndRejected"),
            ],
            ("record_id", "rule"),
        ),
        # every batch, held ones included (their kept rows stay in the working table)
        Validation(
            "record_accounting",
            f"SELECT batch, unaccounted_records FROM ({ACCOUNTING_SQL})",
            [expect("ExpectEveryRecordAccountedFor")],
            ("batch",),
        ),
    ]


def rates_sql(settings: Settings) -> str:
    """Per (batch, rule): the share of the batch's records the rule fired on, its bound."""
    overrides = " ".join(
        f"WHEN {sql_literal(name)} THEN {float(rate)}"
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
