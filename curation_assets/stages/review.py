"""Stage 3, review: ``review_queue`` -> ``reviewed`` -> ``verified``.

Human decisions live in the decision store (SQLite, not the warehouse), shown in the
graph as the external asset ``review_decisions``; a sensor records a new version of it
whenever decisions arrive, and automation refreshes the review stages.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.conditions import ON_NEW_DATA
from curation_assets.config import Settings
from curation_assets.core import decisions, review, warehouse
from curation_assets.core.expectations import Validation, expect
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, SettingsParam

GROUP = "review"

review_decisions = dg.AssetSpec(
    "review_decisions",
    description=(
        "Append-only decisions (accept / reject / edit) by reviewers and experts, in the "
        "SQLite decision store (not the warehouse). Written by the review app or by "
        "`curation decisions import FILE`; observed by the `decisions_sensor`."
    ),
    group_name=GROUP,
    kinds={"sqlite"},
    owners=["team:curation"],
)


@dg.asset(
    deps=["filtered", "review_decisions"],
    description=(
        "What humans must look at, ordered by `priority` (1 first): a stratified coverage "
        "order over labels, with the reason each example is queued and its review status."
    ),
    group_name=GROUP,
    kinds={"duckdb", "table"},
    owners=["team:curation"],
    pool=DUCKDB_POOL,
    automation_condition=ON_NEW_DATA,
)
def review_queue(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsParam
) -> dg.MaterializeResult:
    store = decisions.load_all(settings.decision_store)
    with duckdb.get_connection() as con:
        review.build_review_queue(con, store)
        status = (
            con.sql(
                "SELECT review_status, count(*) AS examples FROM review_queue GROUP BY 1 ORDER BY 1"
            )
            .df()
            .to_dict("records")
        )
        head = warehouse.preview(
            con,
            "SELECT priority, example_id, prompt, response, queue_reason, review_status "
            "FROM review_queue WHERE review_status = 'pending' ORDER BY priority",
        )
        total = warehouse.count(con, "review_queue")
    pending = next((s["examples"] for s in status if s["review_status"] == "pending"), 0)
    context.log.info(f"review_queue: {total} examples, {pending} pending")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "pending": int(pending),
            "by_status": md_table(status),
            "next_up": md_table(head),
            "decisions_in_store": len(store),
        }
    )


@dg.asset(
    deps=["review_queue", "review_decisions"],
    description=(
        "Examples whose deciding decision accepts or edits them (an expert's latest "
        "decision wins over a reviewer's). Edits replace the response; the original stays."
    ),
    group_name=GROUP,
    kinds={"duckdb", "table"},
    owners=["team:curation"],
    pool=DUCKDB_POOL,
    automation_condition=ON_NEW_DATA,
)
def reviewed(duckdb: DuckDBResource, settings: SettingsParam) -> dg.MaterializeResult:
    store = decisions.load_all(settings.decision_store)
    with duckdb.get_connection() as con:
        review.build_reviewed(con, store)
        total = warehouse.count(con, "reviewed")
        edited = warehouse.count(con, "reviewed", "edited")
        by_role = (
            con.sql(
                "SELECT decided_by_role AS role, decision, count(*) AS examples FROM reviewed "
                "GROUP BY ALL ORDER BY ALL"
            )
            .df()
            .to_dict("records")
        )
        rejected = con.execute(
            "SELECT count(*) FROM review_queue WHERE review_status = 'rejected'"
        ).fetchall()[0][0]
        unknown = con.execute(  # decisions about examples not (or no longer) in the queue
            "SELECT count(DISTINCT example_id) FROM _decisions "
            "WHERE example_id NOT IN (SELECT example_id FROM review_queue)"
        ).fetchall()[0][0]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "edited": edited,
            "rejected_by_review": int(rejected),
            "by_role_and_decision": md_table(by_role),
            "decided_examples_not_in_queue": int(unknown),
        }
    )


@dg.asset(
    deps=["reviewed"],
    description=(
        "Examples an expert confirmed (accepted or corrected): the only data a fine-tune "
        "may use. `split` (train / validation) is fixed per example by a hash of its prompt."
    ),
    group_name=GROUP,
    kinds={"duckdb", "table"},
    owners=["team:curation"],
    pool=DUCKDB_POOL,
    automation_condition=ON_NEW_DATA,
)
def verified(duckdb: DuckDBResource, settings: SettingsParam) -> dg.MaterializeResult:
    store = decisions.load_all(settings.decision_store)
    with duckdb.get_connection() as con:
        review.build_verified(con, store, settings.validation_fraction)
        splits = (
            con.sql(
                "SELECT split, count(*) AS examples, count(DISTINCT response) AS labels "
                "FROM verified GROUP BY split ORDER BY split"
            )
            .df()
            .to_dict("records")
        )
        per_label = (
            con.sql(
                "SELECT response AS label, count(*) AS examples, sum(edited::INT) AS corrected "
                "FROM verified GROUP BY 1 ORDER BY 1"
            )
            .df()
            .to_dict("records")
        )
        total, corrected, seconds = con.execute(
            "SELECT count(*), sum(edited::INT), sum(expert_seconds) FROM verified"
        ).fetchall()[0]
        version = con.execute(
            "SELECT sha256(string_agg(example_id || ':' || response || ':' || split, ',' "
            "ORDER BY example_id)) FROM verified"
        ).fetchall()[0][0]
    total = int(total or 0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "corrected_by_expert": int(corrected or 0),
            "expert_seconds_per_verified_example": round((seconds or 0) / max(total, 1), 1),
            "splits": md_table(splits),
            "per_label": md_table(per_label),
            "data_version": version or "empty",
        },
        data_version=dg.DataVersion(version or "empty"),
    )


@dg.sensor(
    name="decisions_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Records a new version of `review_decisions` when decisions arrive in the store, "
        "so that automation refreshes review_queue, reviewed and verified."
    ),
)
def decisions_sensor(context: dg.SensorEvaluationContext, settings: SettingsParam):
    count, newest = decisions.high_water_mark(settings.decision_store)
    marker = f"{count}:{newest}"
    if count == 0:
        return dg.SkipReason(f"the decision store {settings.decision_store} is empty")
    if context.cursor == marker:
        return dg.SkipReason(f"no new decisions ({count} in the store)")
    context.update_cursor(marker)
    return dg.SensorResult(
        asset_events=[
            dg.AssetMaterialization(
                asset_key="review_decisions",
                metadata={
                    "decisions": count,
                    "newest_recorded_at": str(newest),
                    "store": dg.MetadataValue.path(str(settings.decision_store)),
                },
            )
        ]
    )


def review_queue_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "queue",
            "SELECT example_id, priority, queue_reason, prompt, response FROM review_queue",
            [
                expect("ExpectColumnValuesToBeUnique", column="example_id"),
                expect("ExpectColumnValuesToBeUnique", column="priority"),
                expect("ExpectColumnValuesToNotBeNull", column="priority"),
                expect("ExpectColumnValuesToNotBeNull", column="queue_reason"),
                expect("ExpectTableRowCountToBeBetween", min_value=1),
            ],
        ),
        Validation(
            "coverage",
            "SELECT (SELECT count(*) FROM review_queue) - (SELECT count(*) FROM filtered) "
            "AS missing_from_queue",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="missing_from_queue",
                    min_value=0,
                    max_value=0,
                )
            ],
        ),
    ]


def reviewed_expectations(settings: Settings) -> list[Validation]:
    rows = [
        expect("ExpectColumnValuesToBeUnique", column="example_id"),
        expect("ExpectColumnValuesToNotBeNull", column="decided_by"),
        expect("ExpectColumnValuesToBeInSet", column="decision", value_set=["accept", "edit"]),
        expect("ExpectColumnValueLengthsToBeBetween", column="response", min_value=1),
    ]
    if settings.labels and settings.task_type == "classification":
        rows.append(
            expect(
                "ExpectColumnValuesToBeInSet", column="response", value_set=list(settings.labels)
            )
        )
    return [Validation("rows", "SELECT * FROM reviewed", rows)]


def verified_expectations(settings: Settings) -> list[Validation]:
    rows = [
        expect("ExpectColumnValuesToNotBeNull", column="example_id"),
        expect("ExpectColumnValuesToBeUnique", column="example_id"),
        expect("ExpectColumnValueLengthsToBeBetween", column="prompt", min_value=1),
        expect("ExpectColumnValueLengthsToBeBetween", column="response", min_value=1),
        expect("ExpectColumnValuesToNotBeNull", column="verified_by"),
        expect("ExpectColumnValuesToBeInSet", column="split", value_set=["train", "validation"]),
        expect("ExpectTableRowCountToBeBetween", min_value=settings.min_verified_examples),
    ]
    if settings.labels and settings.task_type == "classification":
        rows.append(
            expect(
                "ExpectColumnValuesToBeInSet", column="response", value_set=list(settings.labels)
            )
        )
    return [
        Validation("rows", "SELECT * FROM verified", rows),
        Validation(
            "splits",
            f"""SELECT (SELECT count(*) FROM verified WHERE split = 'validation') AS validation,
                       (SELECT count(*) FROM verified WHERE split = 'train') AS train,
                       ({_OVERLAP_SQL}) AS overlapping_prompts""",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="validation",
                    min_value=settings.min_validation_examples,
                ),
                expect("ExpectColumnValuesToBeBetween", column="train", min_value=1),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="overlapping_prompts",
                    min_value=0,
                    max_value=0,
                ),
            ],
        ),
    ]


_OVERLAP_SQL = review.split_overlap_sql()

review_queue_check = gx_suite_check(
    "review_queue",
    review_queue_expectations,
    "Great Expectations suite: one queue row per filtered example, unique priorities and a "
    "reason for each.",
)
reviewed_check = gx_suite_check(
    "reviewed",
    reviewed_expectations,
    "Great Expectations suite: unique examples, every row attributed to a person, only "
    "accepting decisions, labels in the allowed set.",
)
verified_check = gx_suite_check(
    "verified",
    verified_expectations,
    "Great Expectations suite: enough verified examples to train, labels in the allowed "
    "set, both splits populated and no prompt shared between train and validation.",
)
