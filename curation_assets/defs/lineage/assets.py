"""Row-level lineage as an asset: one row per raw record, from file line to models."""

from collections.abc import Iterator

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish, warehouse
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.lineage import trace
from curation_assets.curation.lineage.tables import EXAMPLE_LINEAGE
from curation_assets.defs.automation.conditions import ON_NEW_DATA
from curation_assets.defs.resources import DecisionStoreResource, SettingsParam
from curation_assets.defs.shared.checks import publish_audited
from curation_assets.defs.shared.datasets import published_dataset
from curation_assets.defs.shared.metadata import as_table

#: The expectation groups of ``example_lineage``'s suite (one Dagster check each).
GROUPS = {
    "every_raw_unit_accounted": "Every unit read from every file (held batches included) "
    "is traced exactly once.",
    "outcomes": "Every trace ends kept, rejected, quarantined or held.",
}


@dg.asset(
    deps=["quarantine", "rejections", "review_queue", "verified", "fine_tuned_model"],
    description=(
        "Where every raw record went: its file and line, kept / rejected (rules and "
        "reasons) / quarantined, review status and decisions, verified split, and the "
        "models trained on it. Query it, or run `curation trace EXAMPLE_ID`."
    ),
    # Not gated on its inputs' checks: lineage reports what happened, failures included.
    **published_dataset(
        EXAMPLE_LINEAGE,
        "Audit before publishing (Great Expectations): every unit read from every file "
        "is traced exactly once, as kept, rejected, quarantined or held back.",
        GROUPS,
        automation_condition=ON_NEW_DATA,
    ),
)
def example_lineage(
    duckdb: DuckDBResource, decision_store: DecisionStoreResource, settings: SettingsParam
) -> Iterator:
    store = decision_store.load_all()
    with duckdb.get_connection() as con, publish.transaction(con):
        trace.build_example_lineage(con, store)
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
        check, result = publish_audited(
            con, settings, "example_lineage", example_lineage_expectations(settings), GROUPS
        )
    if not result.published:
        yield from check
        return
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "outcomes": as_table(outcome),
            "sample": as_table(sample),
            "how_to_trace": dg.MetadataValue.md(
                "Follow one example: `curation trace <example_id or batch:line>`, or "
                "`SELECT * FROM example_lineage WHERE example_id = '...'` in the warehouse."
            ),
        }
    )
    yield from check


def example_lineage_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "every_raw_unit_accounted",
            f"""SELECT (SELECT coalesce(sum(units_read), 0) FROM ingest_batches)
                       + {trace.HELD_UNITS_SQL} AS units_read,
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
                    value_set=["kept", "rejected", "quarantined", "held"],
                )
            ],
        ),
    ]
