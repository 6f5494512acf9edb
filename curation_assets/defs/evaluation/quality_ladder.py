"""The quality ladder: does curation pay? The same model, trained with the same compute on
raw, filtered, reviewed and verified data and on three baselines of the verified size
(random, longest, suspect queue after review), scored on the same held-out verified split.

The rungs are trained by Dagster Pipes sessions of the fine-tune's own script, run by the
same ``training_client`` (a subprocess, or a GPU pod): the head trainer's rungs share one
session (it embeds every text once), fine-tuned rungs get one each; after a failed shared
session every rung runs alone, so the rung that fails is the one whose session Pipes
reports failed (``curation.evaluation.ladder_sessions``). A failed rung is a row with the
error Pipes reported and fails the check ``rungs_trained``; the other rungs keep their
scores. If the embedding or every rung fails, the asset fails.

The table and a plot are the asset's metadata (visible in the UI) and the warehouse table
``quality_ladder``. Nothing downstream depends on it: it never blocks the fine-tune.
"""

import shutil
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.training import registry
from curation_assets.defs.resources import (
    GPU_POOL,
    DecisionStoreResource,
    SettingsParam,
    TrainingClientResource,
)
from curation_assets.defs.shared.checks import gx_suite_check
from curation_assets.defs.shared.metadata import as_table, image, rounded

#: The asset's own check: every trainable rung was trained (a failed Pipes session fails it).
RUNGS_CHECK = "rungs_trained"


def session_runner(context: dg.AssetExecutionContext, training_client: TrainingClientResource):
    """The ladder's ``RunSession``: one Pipes launch, its custom messages or its failure as
    Pipes reported it."""
    from curation_assets.curation.evaluation.ladder_sessions import ReportedError, SessionOutcome
    from curation_assets.defs.training.assets import launch_training

    def run(launch) -> SessionOutcome:
        invocation, reported, exc = launch_training(context, training_client, launch)
        if invocation is not None:
            return SessionOutcome(list(invocation.get_custom_messages()))
        error = ReportedError(reported.cls_name, reported.message or "") if reported else None
        return SessionOutcome(failed=True, error=error, detail=str(exc))

    return run


@dg.asset(
    deps=["raw_scrapes", "filtered", "review_queue", "reviewed", "verified"],
    description=(
        "Validation accuracy of one model trained with one compute budget on each stage's "
        "data (raw, filtered, reviewed, verified) and on random-N, longest-N and "
        "suspect-queue-N baselines, all on the held-out verified split; table and plot. "
        "Each rung is a Pipes session of the fine-tune's training script."
    ),
    kinds={"pytorch", "duckdb"},
    pool=GPU_POOL,
    check_specs=[
        dg.AssetCheckSpec(
            RUNGS_CHECK,
            asset="quality_ladder",
            description="Every rung with at least 2 labels was trained: a rung whose Pipes "
            "session failed is named, with the error class and message Pipes reported.",
        )
    ],
)
def quality_ladder(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
    training_client: TrainingClientResource,
) -> dg.MaterializeResult:
    from curation_assets.curation.evaluation.ladder_rungs import build_rungs, validation_rows
    from curation_assets.curation.evaluation.ladder_sessions import LadderError, prepare_ladder
    from curation_assets.curation.evaluation.ladder_training import ladder_plot_png
    from curation_assets.curation.training.params import TrainParams, normalize_task
    from curation_assets.defs.training.assets import train_params

    if normalize_task(settings.task_type) != "classification":
        note = (
            "quality_ladder scores a classifier's validation accuracy; for task_type "
            f"{settings.task_type!r} it is not implemented yet (nothing was trained)"
        )
        context.log.warning(note)
        return dg.MaterializeResult(
            metadata={"note": note, "dagster/row_count": 0},
            check_results=[dg.AssetCheckResult(check_name=RUNGS_CHECK, passed=True)],
        )
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
    folder = settings.data_dir / "ladder" / context.run.run_id  # where a pod sees it too
    try:
        plan = prepare_ladder(
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
            folder,
            trainer=settings.ladder_trainer,
            steps=settings.ladder_steps,
            params=params,
        )
        plan.drive(session_runner(context, training_client), context.log.info)
    except ValueError as exc:  # nothing to train on, an unknown trainer: no retry helps
        raise dg.Failure(str(exc), allow_retries=False) from exc
    except LadderError as exc:
        raise dg.Failure(str(exc), allow_retries=not exc.permanent) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results = plan.results
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
            "status": r["status"],
            "error": r["error"],
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
        outcome = r["status"] if accuracy is None else f"accuracy {accuracy:.3f}"
        context.log.info(f"ladder {r['name']}: {r['size']} examples -> {outcome}")
    failed = {r["name"]: r["error"] for r in plan.with_status("failed")}
    if failed:
        context.log.error(f"ladder rungs failed (the others are kept): {failed}")
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
            "status": r["status"],
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
            "failed_rungs": dg.MetadataValue.json(failed),
            "pipes_sessions": plan.sessions,
            "dagster/row_count": len(results),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=RUNGS_CHECK,
                passed=not failed,
                metadata={
                    "failed_rungs": dg.MetadataValue.json(failed),
                    "trained": len(plan.with_status("trained")),
                },
                description=(
                    "every trainable rung trained"
                    if not failed
                    else f"{len(failed)} rung(s) failed: " + ", ".join(failed)
                ),
            )
        ],
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
