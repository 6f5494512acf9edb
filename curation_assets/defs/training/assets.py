"""Stage 4, training: ``fine_tuned_model`` (through Dagster Pipes; its evaluation is in
``defs/evaluation/model_evaluation.py``).

The fine-tune trains only on ``verified`` rows of the train split, and only when the
latest evaluation of every blocking check upstream passed (see ``gate``), so a run
launched for the fine-tune alone cannot train on data that failed its expectations.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.training import artifacts, registry
from curation_assets.curation.training.launch import TrainingLaunch
from curation_assets.curation.training.pipes_train import PermanentTrainingError
from curation_assets.defs.automation.conditions import ON_NEW_PASSING_DATA
from curation_assets.defs.resources import GPU_POOL, SettingsParam, TrainingClientResource
from curation_assets.defs.shared.checks import gx_suite_check, snapshot_dir
from curation_assets.defs.shared.gate import require_upstream_checks_passed
from curation_assets.defs.shared.metadata import (
    as_table,
    image,
    line_plot_png,
    rounded_floats,
    thinned,
)
from curation_assets.defs.shared.run_config import FineTuneConfig

#: The script's own check, reported through Pipes (severity WARN: it never blocks).
CONVERGENCE_CHECK = "training_converged"


def train_params(settings: Settings) -> dict:
    """The fine-tune's parameters from ``settings`` (validated by the script's TrainParams)."""
    return {
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "max_length": settings.max_length,
        "seed": settings.seed,
        "require_gpu": settings.require_gpu,
        "lora": settings.lora,
        "lora_r": settings.lora_r,
        "lora_alpha": 2 * settings.lora_r,
        "packing": settings.packing,
        "precision": settings.precision,
    }


def _loss_curve(curve, model_dir: Path) -> dict:
    """The training loss as a plot the UI links to and as a (thinned) table."""
    points = getattr(curve, "value", curve) or []
    points = [(float(step), float(loss)) for step, loss in points]
    if not points:
        return {}
    png = line_plot_png(points, "optimizer step", "training loss", "Training loss")
    return {
        "loss_plot": image(png, model_dir / "loss_curve.png"),
        "loss_by_step": as_table([{"step": int(s), "loss": loss} for s, loss in thinned(points)]),
    }


def engine_event_cursor(context: dg.AssetExecutionContext) -> int:
    """The storage id of the run's newest engine event so far: pass it to
    :func:`pipes_exception` so that a retry never reads an earlier attempt's report."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
    ).records
    return records[-1].storage_id if records else 0


def pipes_exception(context: dg.AssetExecutionContext, after: int = 0) -> Any:
    """The exception the external process of this step closed its Pipes session with, as
    Pipes reported it (an engine event's structured error: ``cls_name``, ``message``,
    ``stack``), among the events after storage id ``after``; None when the process never
    reported one (killed, a lost pod, a crash before the session opened)."""
    step_key = context.get_step_execution_context().step.key
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT
    ).records
    for record in reversed(records):
        if record.storage_id <= after:
            break
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        if event and event.step_key == step_key and data and data.error:
            return data.error
    return None


def _no_retry(message: str, **metadata: object) -> dg.Failure:
    return dg.Failure(description=message, metadata=dict(metadata), allow_retries=False)


def launch_training(
    context: dg.AssetExecutionContext,
    training_client: TrainingClientResource,
    launch: TrainingLaunch,
) -> tuple[Any, Any, Exception | None]:
    """Run ``launch`` with the training client and wait: ``(invocation, None, None)`` when
    it succeeded; ``(None, reported, error)`` when it failed, ``reported`` being the
    exception its Pipes session closed with (:func:`pipes_exception`, None when the process
    never reported one) and ``error`` what the client raised. A misconfigured client is
    refused with a failure that is not retried."""
    try:
        client = training_client.pipes_client()
        run_kwargs = training_client.run_kwargs(launch)
    except dg.DagsterInvariantViolationError as exc:  # a misconfigured target: no retry
        raise _no_retry(f"training_client: {exc}") from exc
    cursor = engine_event_cursor(context)
    try:
        return client.run(context=context, **run_kwargs), None, None
    except Exception as exc:
        # Pipes clients raise DagsterPipesExecutionError, which dagster does not export;
        # whatever was raised, this attempt's own Pipes report says whether a retry can help
        return None, pipes_exception(context, after=cursor), exc


@dg.asset(
    deps=["verified"],
    description=(
        "A transformers model fine-tuned on the train split of `verified` by a standalone "
        "script launched through Dagster Pipes: a classifier (task_type classification) or "
        "an instruction-following causal LM (task_type instruction: SFT, loss on the "
        "response). Saved with its manifest and model card under the models folder and "
        "registered in the warehouse (`models`, `model_examples`)."
    ),
    kinds={"transformers", "pytorch"},
    pool=GPU_POOL,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=15),
    automation_condition=ON_NEW_PASSING_DATA,
    check_specs=[
        dg.AssetCheckSpec(
            CONVERGENCE_CHECK,
            asset="fine_tuned_model",
            description="Reported by the training script: the loss is finite and went down.",
        )
    ],
)
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: FineTuneConfig,
    duckdb: DuckDBResource,
    settings: SettingsParam,
    training_client: TrainingClientResource,
):
    from curation_assets.curation.training.launch import training_launch
    from curation_assets.curation.training.params import TrainParams, normalize_task

    require_upstream_checks_passed(context)
    settings = config.applied_to(settings)
    try:
        task = normalize_task(settings.task_type)
        params = TrainParams.from_dict(train_params(settings))
    except ValueError as exc:
        raise _no_retry(f"invalid fine-tune settings: {exc}") from exc
    if settings.require_gpu and training_client.local:
        from curation_assets.curation.training.params import require_gpu_message

        problem = require_gpu_message()
        if problem:
            raise _no_retry(f"Refusing to train fine_tuned_model: {problem}")
    model_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + context.run.run_id[:8]
    model_dir = settings.models / model_id
    data_dir = model_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.get_connection() as con:
        counts = registry.export_splits(con, data_dir)
    if counts["train"] == 0:
        raise _no_retry("verified has no train rows: nothing to fine-tune")
    launch = training_launch(
        task,
        data_dir / "train.parquet",
        data_dir / "validation.parquet",
        model_dir,
        settings.base_model,
        params,
        report_convergence_check=True,
    )
    invocation, reported, exc = launch_training(context, training_client, launch)
    if invocation is None:
        reason = f"{reported.cls_name}: {reported.message}".strip() if reported else str(exc)
        if reported and reported.cls_name == PermanentTrainingError.__name__:
            message = f"the training script refused: {reported.message.strip()}"
            raise _no_retry(message, model_dir=str(model_dir)) from exc
        raise dg.Failure(f"training failed (will be retried): {reason}") from exc
    manifest = json.loads((model_dir / artifacts.MANIFEST_NAME).read_text())  # must exist
    with duckdb.get_connection() as con:
        registry.register_model(con, model_id, model_dir, manifest, context.run.run_id)
        for table in ("models", "model_examples"):  # readers (``curation trace``) see it
            publish.snapshot(con, snapshot_dir(settings), table)
    extra = {
        **config.metadata(),
        "model_id": model_id,
        "task_type": task,
        "model_dir": dg.MetadataValue.path(str(model_dir)),
        "model_card": dg.MetadataValue.path(str(model_dir / artifacts.MODEL_CARD_NAME)),
        "data_version": manifest.get("data_version", ""),
        "train_examples": counts["train"],
        "validation_examples": counts["validation"],
        "seed": params.seed,
        "config": dg.MetadataValue.json(manifest.get("params", {})),
    }
    results = list(invocation.get_results())
    checks = [r for r in results if isinstance(r, dg.AssetCheckResult)]
    materialized = [r for r in results if isinstance(r, dg.MaterializeResult)]
    reported = rounded_floats(dict(materialized[0].metadata or {}) if materialized else {})
    extra.update(_loss_curve(reported.get("loss_curve"), model_dir))
    yield dg.MaterializeResult(
        metadata={**reported, **extra},
        data_version=dg.DataVersion(manifest.get("data_version", model_id)),
    )
    yield from checks


def fine_tuned_model_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "latest_model",
            "SELECT * FROM models ORDER BY created_at DESC LIMIT 1",
            [
                expect("ExpectTableRowCountToEqual", value=1),
                expect("ExpectColumnValuesToBeBetween", column="train_examples", min_value=1),
                expect("ExpectColumnValuesToNotBeNull", column="data_version"),
                expect(
                    "ExpectColumnValuesToBeBetween", column="train_loss", min_value=0, max_value=1e6
                ),
            ],
        ),
        Validation(
            "train_validation_overlap",
            f"SELECT ({registry.TRAIN_VALIDATION_OVERLAP_SQL}) AS overlapping_examples",
            [
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="overlapping_examples",
                    min_value=0,
                    max_value=0,
                )
            ],
        ),
    ]


fine_tuned_model_check = gx_suite_check(
    "fine_tuned_model",
    fine_tuned_model_expectations,
    "Great Expectations suite: the model is registered with its data version, trained on "
    "enough examples with a finite loss, and no training example is in its validation set.",
)
