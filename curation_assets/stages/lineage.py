"""Row-level lineage as an asset: one row per raw record, from file line to models."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.conditions import ON_NEW_DATA
from curation_assets.config import Settings
from curation_assets.core import decisions, lineage, warehouse
from curation_assets.core.expectations import Validation, expect
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, SettingsParam


@dg.asset(
    deps=["quarantine", "rejections", "review_queue", "verified", "fine_tuned_model"],
    description=(
        "Where every raw record went: its file and line, kept / rejected (rules and "
        "reasons) / quarantined, review status and decisions, verified split, and the "
        "models trained on it. Query it, or run `curation trace EXAMPLE_ID`."
    ),
    group_name="lineage",
    kinds={"duckdb", "table"},
    owners=["team:curation"],
    pool=DUCKDB_POOL,
    automation_condition=ON_NEW_DATA,
)
def example_lineage(duckdb: DuckDBResource, settings: SettingsParam) -> dg.MaterializeResult:
    store = decisions.load_all(settings.decision_store)
    with duckdb.get_connection() as con:
        lineage.build_example_lineage(con, store)
        outcome = (
            con.sql(
                "SELECT filter_status, count(*) AS records, sum(verified::INT) AS verified "
                "FROM example_lineage GROUP BY 1 ORDER BY 1"
            )
            .df()
            .to_dict("records")
        )
        sample = warehouse.preview(
            con,
            "SELECT record_id, example_id, filter_status, rejected_by, review_status, "
            "verified, split, trained_in FROM example_lineage "
            "ORDER BY verified DESC, filter_status, record_id",
        )
        total = warehouse.count(con, "example_lineage")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "outcomes": md_table(outcome),
            "sample": md_table(sample),
            "how_to_trace": dg.MetadataValue.md(
                "Follow one example: `curation trace <example_id or batch:line>`, or "
                "`SELECT * FROM example_lineage WHERE example_id = '...'` in the warehouse."
            ),
        }
    )


def example_lineage_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "every_raw_unit_accounted",
            """SELECT (SELECT sum(units_read) FROM ingest_batches) AS units_read,
                      (SELECT count(*) FROM example_lineage) AS traced""",
            [expect("ExpectColumnPairValuesToBeEqual", column_A="units_read", column_B="traced")],
        ),
        Validation(
            "outcomes",
            "SELECT filter_status FROM example_lineage",
            [
                expect(
                    "ExpectColumnValuesToBeInSet",
                    column="filter_status",
                    value_set=["kept", "rejected", "quarantined"],
                )
            ],
        ),
    ]


example_lineage_check = gx_suite_check(
    "example_lineage",
    example_lineage_expectations,
    "Great Expectations suite: every unit read from every file is traced exactly once, as "
    "kept, rejected or quarantined.",
    blocking=False,
)
