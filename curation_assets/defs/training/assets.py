"""Stage 4, training: ``fine_tuned_model`` (through Dagster Pipes) and ``model_evaluation``.

The fine-tune trains only on ``verified`` rows of the train split, and only when the
latest evaluation of every blocking check upstream passed (see ``gate``), so a run
launched for the fine-tune alone cannot train on data that failed its expectations.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.training import registry
from curation_assets.defs.automation.conditions import ON_NEW_PASSING_DATA
from curation_assets.defs.resources import DUCKDB_POOL, GPU_POOL, SettingsParam
from curation_assets.defs.shared.checks import gx_suite_check, snapshot_dir
from curation_assets.defs.shared.gate import require_upstream_checks_passed
from curation_assets.defs.shared.metadata import (
    as_table,
    image,
    line_plot_png,
    rounded,
    rounded_floats,
    thinned,
)

GROUP = "training"
#: The script's own check, reported through Pipes (severity WARN: it never blocks).
CONVERGENCE_CHECK = "training_converged"
#: Exit status of pipes_train for a failure that retrying cannot fix.
EXIT_PERMANENT = 2


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


def _no_retry(message: str, **metadata: object) -> dg.Failure:
    return dg.Failure(description=message, metadata=dict(metadata), allow_retries=False)


@dg.asset(
    deps=["verified"],
    description=(
        "A transformers model fine-tuned on the train split of `verified` by a standalone "
        "script launched through Dagster Pipes: a classifier (task_type classification) or "
        "an instruction-following causal LM (task_type instruction: SFT, loss on the "
        "response). Saved with its manifest and model card under the models folder and "
        "registered in the warehouse (`models`, `model_examples`)."
    ),
    group_name=GROUP,
    kinds={"transformers", "pytorch"},
    owners=["team:ml"],
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
    duckdb: DuckDBResource,
    settings: SettingsParam,
    training_client: dg.ResourceParam[dg.PipesClient],
):
    from curation_assets.curation.training.launch import training_launch
    from curation_assets.curation.training.params import TrainParams, normalize_task

    require_upstream_checks_passed(context)
    try:
        task = normalize_task(settings.task_type)
        params = TrainParams.from_dict(train_params(settings))
    except ValueError as exc:
        raise _no_retry(f"invalid fine-tune settings: {exc}") from exc
    local = isinstance(training_client, dg.PipesSubprocessClient)
    if settings.require_gpu and local:
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
    try:
        invocation = training_client.run(
            context=context, command=launch.command, extras=launch.extras, env=launch.env
        )
    except dg.DagsterPipesExecutionError as exc:
        error_file = model_dir / "TRAINING_ERROR.txt"
        reason = error_file.read_text().strip() if error_file.is_file() else str(exc)
        if f"failed with code {EXIT_PERMANENT}" in str(exc):
            message = f"the training script refused: {reason}"
            raise _no_retry(message, model_dir=str(model_dir)) from exc
        raise dg.Failure(f"training failed (will be retried): {reason}") from exc
    manifest = json.loads((model_dir / "training_manifest.json").read_text())
    with duckdb.get_connection() as con:
        registry.register_model(con, model_id, model_dir, manifest, context.run.run_id)
        for table in ("models", "model_examples"):  # readers (``curation trace``) see it
            publish.snapshot(con, snapshot_dir(settings), table)
    extra = {
        "model_id": model_id,
        "task_type": task,
        "model_dir": dg.MetadataValue.path(str(model_dir)),
        "model_card": dg.MetadataValue.path(str(model_dir / "MODEL_CARD.md")),
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


def _read_eval_file(path: Path, settings: Settings) -> list[dict]:
    """(example_id, prompt, response) rows of a user evaluation file, any ingest format."""
    from curation_assets.curation.ingest.intake import read_file
    from curation_assets.curation.records import example_id

    if not path.exists():
        raise dg.Failure(f"evaluation file {path} (CURATION_EVAL_FILES) does not exist")
    result = read_file(path, settings.column_mapping, settings.max_record_bytes)
    if result.records.empty:
        reasons = sorted(set(result.quarantine["reason"].astype(str)))[:3]
        raise dg.Failure(f"evaluation file {path} has no usable rows: {reasons}")
    return [
        {"example_id": example_id(p, r), "prompt": p, "response": r}
        for p, r in zip(result.records["prompt"], result.records["response"], strict=True)
    ]


def _evaluate(task: str, model_dir: Path, rows: list[dict]) -> dict:
    if task == "classification":
        from curation_assets.curation.training.classifier import evaluate_classifier

        return evaluate_classifier(model_dir, rows)
    from curation_assets.curation.training.sft import evaluate_sft

    return evaluate_sft(model_dir, rows)


@dg.asset(
    deps=["fine_tuned_model"],
    description=(
        "The latest fine-tuned model on the held-out validation split of `verified` (never "
        "seen in training) and on the optional evaluation files (`CURATION_EVAL_FILES`): "
        "accuracy and macro-F1 with per-label results for a classifier; exact match and "
        "response-token loss for SFT; rows whose prompt was trained on are counted."
    ),
    group_name=GROUP,
    kinds={"transformers", "duckdb"},
    owners=["team:ml"],
    pool=DUCKDB_POOL,
    automation_condition=dg.AutomationCondition.eager(),
)
def model_evaluation(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsParam
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        model = registry.latest_model(con)
    if model is None:
        raise dg.Failure("no fine-tuned model is registered yet: materialize fine_tuned_model")
    model_dir = Path(model["model_dir"])
    task = model.get("task_type") or "classification"
    sets = {"validation": registry.read_split(model_dir / "data" / "validation.parquet")}
    for name in settings.eval_files:
        path = Path(name)
        sets[f"eval:{path.name}"] = _read_eval_file(path, settings)
    reports, summary = {}, []
    for split, rows in sets.items():
        report = _evaluate(task, model_dir, rows)
        with duckdb.get_connection() as con:
            overlap = registry.train_overlap(con, model["model_id"], rows)
            registry.record_evaluation(
                con, model["model_id"], split, report, task, train_overlap=len(overlap)
            )
        reports[split] = report
        score = report.get("accuracy", report.get("exact_match"))
        summary.append(
            {
                "split": split,
                "examples": int(report["n"]),
                "accuracy" if task == "classification" else "exact_match": score,
                "macro_f1" if task == "classification" else "loss": report.get(
                    "macro_f1", report.get("loss")
                ),
                "rows_trained_on": len(overlap),
            }
        )
        if overlap:
            context.log.warning(
                f"{split}: {len(overlap)} of {len(rows)} rows have a prompt the model was "
                f"trained on (e.g. {overlap[:3]}): their score is not a held-out score"
            )
    main = reports["validation"]
    metadata: dict = {
        "model_id": model["model_id"],
        "task_type": task,
        "validation_examples": int(main["n"]),
        "evaluations": as_table(summary),
        "mistakes": as_table(main.get("mistakes", [])[:15], empty="(none)"),
    }
    if task == "classification":
        metadata["accuracy"] = dg.MetadataValue.float(rounded(main["accuracy"]))
        metadata["macro_f1"] = dg.MetadataValue.float(rounded(main["macro_f1"]))
        metadata["per_label"] = as_table(
            [{"label": k, **v} for k, v in sorted(main["per_label"].items())]
        )
        context.log.info(
            f"model {model['model_id']}: accuracy {main['accuracy']:.3f} on {main['n']} "
            "held-out verified examples"
        )
    else:
        metadata["exact_match"] = dg.MetadataValue.float(rounded(main["exact_match"] or 0.0))
        metadata["loss"] = dg.MetadataValue.float(rounded(main["loss"]))
    return dg.MaterializeResult(metadata=metadata)


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


_LATEST_MODEL_SQL = "SELECT model_id FROM models ORDER BY created_at DESC LIMIT 1"


def model_evaluation_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "latest_evaluation",
            f"""SELECT e.* FROM model_evaluations e
               WHERE e.model_id = ({_LATEST_MODEL_SQL}) AND e.split = 'validation'
               ORDER BY evaluated_at DESC LIMIT 1""",
            [
                expect("ExpectTableRowCountToEqual", value=1),
                expect(
                    "ExpectColumnValuesToBeBetween", column="accuracy", min_value=0, max_value=1
                ),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="examples",
                    min_value=settings.min_validation_examples,
                ),
                expect(  # the held-out split shares no prompt with what the model saw
                    "ExpectColumnValuesToBeBetween",
                    column="train_overlap",
                    min_value=0,
                    max_value=0,
                ),
            ],
        ),
        Validation(
            "evaluation_files_overlap",
            f"""SELECT e.split, coalesce(e.train_overlap, 0) AS train_overlap
               FROM model_evaluations e
               WHERE e.model_id = ({_LATEST_MODEL_SQL}) AND e.split LIKE 'eval:%'""",
            [
                expect(  # a user file that repeats training prompts: reported, not blocking
                    "ExpectColumnValuesToBeBetween",
                    column="train_overlap",
                    min_value=0,
                    max_value=0,
                    warn_only=True,
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
model_evaluation_check = gx_suite_check(
    "model_evaluation",
    model_evaluation_expectations,
    "Great Expectations suite: the latest model has an evaluation on enough held-out "
    "examples, none of them trained on, with an accuracy (exact match for SFT) in [0, 1]; "
    "evaluation files that repeat training prompts are a warning.",
)
