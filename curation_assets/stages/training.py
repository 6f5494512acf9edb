"""Stage 4, training: ``fine_tuned_model`` (through Dagster Pipes) and ``model_evaluation``.

The fine-tune trains only on ``verified`` rows of the train split, and only when the
latest evaluation of every blocking check upstream passed (see ``gate``), so a run
launched for the fine-tune alone cannot train on data that failed its expectations.
"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.conditions import ON_NEW_PASSING_DATA
from curation_assets.config import Settings
from curation_assets.core import registry
from curation_assets.core.expectations import Validation, expect
from curation_assets.gate import require_upstream_checks_passed
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, GPU_POOL, SettingsParam

GROUP = "training"


@dg.asset(
    deps=["verified"],
    description=(
        "A transformers model fine-tuned on the train split of `verified` by a standalone "
        "script launched through Dagster Pipes. Saved with its manifest and model card "
        "under the models folder and registered in the warehouse (`models`)."
    ),
    group_name=GROUP,
    kinds={"transformers", "pytorch"},
    owners=["team:ml"],
    pool=GPU_POOL,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=15),
    automation_condition=ON_NEW_PASSING_DATA,
)
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    settings: SettingsParam,
    pipes_subprocess_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    require_upstream_checks_passed(context)
    if settings.task_type != "classification":
        raise dg.Failure(
            f"task_type {settings.task_type!r} has no trainer yet: only 'classification' "
            "is supported (causal-LM SFT is tracked in issue #5)",
            allow_retries=False,
        )
    model_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + context.run.run_id[:8]
    model_dir = settings.models / model_id
    data_dir = model_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.get_connection() as con:
        counts = registry.export_splits(con, data_dir)
    if counts["train"] == 0:
        raise dg.Failure("verified has no train rows: nothing to fine-tune", allow_retries=False)
    params = {
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "batch_size": settings.batch_size,
        "max_length": settings.max_length,
        "seed": settings.seed,
        "require_gpu": settings.require_gpu,
    }
    invocation = pipes_subprocess_client.run(
        command=[sys.executable, "-m", "curation_assets.training.pipes_train"],
        context=context,
        extras={
            "train_path": str(data_dir / "train.parquet"),
            "validation_path": str(data_dir / "validation.parquet"),
            "output_dir": str(model_dir),
            "base_model": settings.base_model,
            "params": params,
        },
    )
    result = invocation.get_materialize_result()
    manifest = json.loads((model_dir / "training_manifest.json").read_text())
    with duckdb.get_connection() as con:
        registry.register_model(con, model_id, model_dir, manifest, context.run.run_id)
    extra = {
        "model_id": model_id,
        "model_dir": dg.MetadataValue.path(str(model_dir)),
        "model_card": dg.MetadataValue.path(str(model_dir / "MODEL_CARD.md")),
        "data_version": manifest.get("data_version", ""),
        "train_examples": counts["train"],
        "validation_examples": counts["validation"],
    }
    return dg.MaterializeResult(
        metadata={**(result.metadata or {}), **extra},
        data_version=dg.DataVersion(manifest.get("data_version", model_id)),
    )


@dg.asset(
    deps=["fine_tuned_model"],
    description=(
        "Accuracy and macro-F1 of the latest fine-tuned model on the held-out validation "
        "split of `verified` (never seen in training), with per-label results and mistakes."
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
    from curation_assets.training.classifier import evaluate_classifier

    with duckdb.get_connection() as con:
        model = registry.latest_model(con)
    if model is None:
        raise dg.Failure("no fine-tuned model is registered yet: materialize fine_tuned_model")
    model_dir = Path(model["model_dir"])
    rows = registry.read_split(model_dir / "data" / "validation.parquet")
    report = evaluate_classifier(model_dir, rows)
    with duckdb.get_connection() as con:
        registry.record_evaluation(con, model["model_id"], "validation", report)
    context.log.info(
        f"model {model['model_id']}: accuracy {report['accuracy']:.3f} on {report['n']} "
        "held-out verified examples"
    )
    per_label = [
        {"label": label, **values} for label, values in sorted(report["per_label"].items())
    ]
    return dg.MaterializeResult(
        metadata={
            "model_id": model["model_id"],
            "accuracy": dg.MetadataValue.float(float(report["accuracy"])),
            "macro_f1": dg.MetadataValue.float(float(report["macro_f1"])),
            "validation_examples": int(report["n"]),
            "per_label": md_table(per_label),
            "mistakes": md_table(report.get("mistakes", [])[:15], empty="(none)"),
        }
    )


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


def model_evaluation_expectations(settings: Settings) -> list[Validation]:
    return [
        Validation(
            "latest_evaluation",
            """SELECT e.* FROM model_evaluations e
               WHERE e.model_id = (SELECT model_id FROM models ORDER BY created_at DESC LIMIT 1)
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
            ],
        )
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
    "examples with an accuracy in [0, 1].",
)
