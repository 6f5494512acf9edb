"""The quality ladder: does curation pay? The same model, trained with the same compute on
raw, filtered, reviewed and verified data and on three baselines of the verified size
(random, longest, suspect queue after review), scored on the same held-out verified split.

The table and a plot are the asset's metadata (visible in the UI) and the warehouse table
``quality_ladder``. Nothing downstream depends on it: it never blocks the fine-tune.
"""

from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.training import registry
from curation_assets.defs.resources import GPU_POOL, DecisionStoreResource, SettingsParam
from curation_assets.defs.shared.checks import gx_suite_check
from curation_assets.defs.shared.metadata import as_table, image, rounded


@dg.asset(
    deps=["raw_scrapes", "filtered", "review_queue", "reviewed", "verified"],
    description=(
        "Validation accuracy of one model trained with one compute budget on each stage's "
        "data (raw, filtered, reviewed, verified) and on random-N, longest-N and "
        "suspect-queue-N baselines, all on the held-out verified split; table and plot."
    ),
    kinds={"pytorch", "duckdb"},
    pool=GPU_POOL,
)
def quality_ladder(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
) -> dg.MaterializeResult:
    from curation_assets.curation.evaluation.ladder_rungs import build_rungs, validation_rows
    from curation_assets.curation.evaluation.ladder_training import ladder_plot_png, run_ladder
    from curation_assets.curation.training.params import TrainParams, normalize_task
    from curation_assets.defs.training.assets import train_params

    if normalize_task(settings.task_type) != "classification":
        note = (
            "quality_ladder scores a classifier's validation accuracy; for task_type "
            f"{settings.task_type!r} it is not implemented yet (nothing was trained)"
        )
        context.log.warning(note)
        return dg.MaterializeResult(metadata={"note": note, "dagster/row_count": 0})
    decided = decision_store.load_all()
    with duckdb.get_connection() as con:
        try:
            rungs = build_rungs(con, decided, seed=settings.seed)
        except ValueError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        validation = validation_rows(con)
    if not validation:
        raise dg.Failure("verified has no validation rows to score the ladder on")
    params = TrainParams.from_dict(train_params(settings))
    results = run_ladder(
        [
            {
                "name": r.name,
                "description": r.description,
                "rows": r.rows,
                "human_hours": round(r.human_seconds / 3600, 3),
                "expert_hours": round(r.expert_seconds / 3600, 3),
                "removed_validation_rows": r.removed_validation_rows,
                "note": r.note,
            }
            for r in rungs
        ],
        validation,
        settings.base_model,
        trainer=settings.ladder_trainer,
        steps=settings.ladder_steps,
        params=params,
    )
    created = datetime.now(UTC).replace(tzinfo=None)
    table = [
        {
            "dataset": r["name"],
            "description": r["description"],
            "examples": int(r["size"]),
            "labels": int(r["labels"]),
            "human_hours": float(r["human_hours"]),
            "expert_hours": float(r["expert_hours"]),
            "validation_accuracy": r["validation_accuracy"],
            "validation_macro_f1": r["validation_macro_f1"],
            "validation_examples": len(validation),
            "removed_validation_rows": int(r["removed_validation_rows"]),
            "trainer": r["trainer"],
            "steps": int(r["steps"]),
            "batch_size": int(r["batch_size"]),
            "seconds": float(r["seconds"]),
            "note": r["note"],
            "base_model": settings.base_model,
            "run_id": context.run.run_id,
            "created_at": created,
        }
        for r in results
    ]
    with duckdb.get_connection() as con:
        registry.write_ladder(con, table)
    for r in results:
        accuracy = r["validation_accuracy"]
        context.log.info(
            f"ladder {r['name']}: {r['size']} examples -> "
            + ("skipped" if accuracy is None else f"accuracy {accuracy:.3f}")
        )
    first = results[0]
    rungs = [
        {
            "dataset": r["name"],
            "what": r.get("description", "") + (f" ({r['note']})" if r.get("note") else ""),
            "examples": int(r["size"]),
            "review_hours": float(r.get("human_hours") or 0.0),
            "expert_hours": float(r.get("expert_hours") or 0.0),
            "validation_accuracy": r.get("validation_accuracy"),
            "macro_f1": r.get("validation_macro_f1"),
        }
        for r in results
    ]
    plot_path = settings.data_dir / "reports" / "quality_ladder.png"
    return dg.MaterializeResult(
        metadata={
            "ladder": as_table(rungs),
            "plot": image(ladder_plot_png(results), plot_path),
            "validation_examples": len(validation),
            "trainer": first["trainer"],
            "steps_per_rung": int(first["steps"]),
            "batch_size": int(first["batch_size"]),
            "accuracy_by_dataset": dg.MetadataValue.json(
                {r["name"]: rounded(r["validation_accuracy"]) for r in results}
            ),
            "dagster/row_count": len(results),
        }
    )


def quality_ladder_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "ladder",
            f"SELECT * FROM {registry.LADDER_TABLE}",
            [
                expect("ExpectTableRowCountToBeBetween", min_value=4),
                expect("ExpectColumnValuesToBeUnique", column="dataset"),
                expect(
                    "ExpectColumnValuesToBeInSet",
                    column="dataset",
                    value_set=[
                        "raw",
                        "filtered",
                        "reviewed",
                        "verified",
                        "random_n",
                        "longest_n",
                        "suspect_n",
                    ],
                ),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="validation_accuracy",
                    min_value=0,
                    max_value=1,
                ),
                expect("ExpectColumnValuesToBeBetween", column="examples", min_value=0),
            ],
        ),
        Validation(
            "stages_present",
            f"""SELECT count(*) FILTER (WHERE dataset IN ('raw', 'filtered', 'verified')
                                        AND validation_accuracy IS NOT NULL) AS scored_stages
                FROM {registry.LADDER_TABLE}""",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="scored_stages",
                    min_value=3,
                    max_value=3,
                )
            ],
        ),
    ]


quality_ladder_check = gx_suite_check(
    "quality_ladder",
    quality_ladder_expectations,
    "Great Expectations suite: one row per rung, the raw, filtered and verified rungs "
    "scored, accuracies in [0, 1]. Not blocking: nothing depends on the ladder.",
    blocking=False,
)
