"""``model_evaluation``: the latest fine-tuned model scored on the held-out validation
split and the evaluation files, with its audit (logic: ``curation_assets.curation.training``)."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.training import registry
from curation_assets.defs.resources import DUCKDB_POOL, SettingsParam
from curation_assets.defs.shared.checks import gx_suite_check
from curation_assets.defs.shared.metadata import (
    as_table,
    rounded,
)


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
    kinds={"transformers", "duckdb"},
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


model_evaluation_check = gx_suite_check(
    "model_evaluation",
    model_evaluation_expectations,
    "Great Expectations suite: the latest model has an evaluation on enough held-out "
    "examples, none of them trained on, with an accuracy (exact match for SFT) in [0, 1]; "
    "evaluation files that repeat training prompts are a warning.",
)
