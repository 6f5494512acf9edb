"""The model registry in the warehouse: which model was trained on which examples.

``models`` holds one row per fine-tuned model, ``model_examples`` the examples (and
split) each model saw, so lineage runs from every example to every model trained on
it; ``model_evaluations`` holds the evaluation reports. The three are declared in
``tables.yaml`` beside this module (``tables.py``).
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from curation_assets.curation.records import NORMALIZE_SQL, NORMALIZED_PROMPT_SQL
from curation_assets.curation.training.tables import MODEL_EVALUATIONS, MODEL_EXAMPLES, MODELS
from curation_assets.curation.warehouse import sql_literal

#: Declared columns added after the first release (older warehouses get them on first use).
_ADDED_COLUMNS = {
    MODELS: ("task_type", "seed", "config"),
    MODEL_EVALUATIONS: ("task_type", "loss", "train_overlap"),
}
#: The quality ladder's results: one row per rung, written from a frame (``write_ladder``).
LADDER_TABLE = "quality_ladder"

#: Examples (by normalized prompt) in both the train and validation set of the latest model.
TRAIN_VALIDATION_OVERLAP_SQL = """
    SELECT count(*) FROM (
        SELECT prompt_key FROM model_examples
        WHERE model_id = (SELECT model_id FROM models ORDER BY created_at DESC LIMIT 1)
        GROUP BY prompt_key HAVING count(DISTINCT split) > 1)"""


def ensure_registry(con: duckdb.DuckDBPyConnection) -> None:
    """Create the registry tables from their declarations; add the later columns to tables
    made before them (their declared types, at the end, where the declaration has them)."""
    for table in (MODELS, MODEL_EXAMPLES, MODEL_EVALUATIONS):
        table.create(con)
    for table, added in _ADDED_COLUMNS.items():
        for column in table.columns:
            if column.name in added:
                con.execute(
                    f"ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS {column.name} {column.type}"
                )


def _insert(con: duckdb.DuckDBPyConnection, table: str, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values()))


def export_splits(con: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, int]:
    """Write the verified train/validation splits as Parquet for the training script."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "validation"):
        path = folder / f"{split}.parquet"
        con.execute(
            f"""COPY (SELECT example_id, prompt, response,
                             sha256({NORMALIZED_PROMPT_SQL}) AS prompt_key
                      FROM verified WHERE split = '{split}' ORDER BY example_id)
                TO {sql_literal(path)} (FORMAT parquet)"""
        )
        counts[split] = int(
            con.execute(f"SELECT count(*) FROM {sql_literal(path)}").fetchall()[0][0]
        )
    return counts


def read_split(path: Path) -> list[dict[str, Any]]:
    """Rows of an exported split (example_id, prompt, response)."""
    frame = pd.read_parquet(path, columns=["example_id", "prompt", "response"])
    return frame.to_dict("records")


def register_model(
    con: duckdb.DuckDBPyConnection,
    model_id: str,
    model_dir: Path,
    manifest: dict[str, Any],
    run_id: str,
) -> None:
    """Record a trained model and the exact examples of each split it was given."""
    ensure_registry(con)
    metrics = manifest.get("metrics", {})
    config = {
        k: manifest.get(k)
        for k in ("params", "base_model_requested", "base_model_path", "packing", "versions")
    }
    _insert(
        con,
        "models",
        {
            "model_id": model_id,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "model_dir": str(model_dir),
            "base_model": manifest.get("base_model"),
            "data_version": manifest.get("data_version"),
            "train_examples": manifest.get("train_examples"),
            "validation_examples": manifest.get("validation_examples"),
            "train_loss": metrics.get("train_loss"),
            "metrics": json.dumps(metrics, default=str),
            "run_id": run_id,
            "task_type": manifest.get("task_type", "classification"),
            "seed": manifest.get("seed"),
            "config": json.dumps(config, default=str),
        },
    )
    for split in ("train", "validation"):
        path = model_dir / "data" / f"{split}.parquet"
        con.execute(
            f"INSERT INTO model_examples SELECT ?, example_id, ?, prompt_key "
            f"FROM {sql_literal(path)}",
            [model_id, split],
        )


def latest_model(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    ensure_registry(con)
    frame = con.sql("SELECT * FROM models ORDER BY created_at DESC LIMIT 1").df()
    return None if frame.empty else frame.iloc[0].to_dict()


def record_evaluation(
    con: duckdb.DuckDBPyConnection,
    model_id: str,
    split: str,
    report: dict[str, Any],
    task_type: str = "classification",
    train_overlap: int | None = None,
) -> None:
    """One evaluation of ``model_id`` on ``split``.

    For SFT, ``accuracy`` holds the exact match and ``macro_f1`` is NULL; ``loss`` is the
    mean response-token loss. ``train_overlap``: evaluated rows whose prompt was trained on.
    """
    ensure_registry(con)

    def number(key: str) -> float | None:
        value = report.get(key)
        return None if value is None else float(value)

    _insert(
        con,
        "model_evaluations",
        {
            "model_id": model_id,
            "evaluated_at": datetime.now(UTC).replace(tzinfo=None),
            "split": split,
            "examples": int(report["n"]),
            "accuracy": number("accuracy" if "accuracy" in report else "exact_match"),
            "macro_f1": number("macro_f1"),
            "report": json.dumps(
                {k: v for k, v in report.items() if k != "predictions"}, default=str
            ),
            "task_type": task_type,
            "loss": number("loss"),
            "train_overlap": train_overlap,
        },
    )


def model_train_rows(con: duckdb.DuckDBPyConnection, model_id: str) -> pd.DataFrame:
    """The prompt keys a model was trained on (``model_examples``, split train)."""
    ensure_registry(con)
    return con.execute(
        "SELECT example_id, prompt_key FROM model_examples WHERE model_id = ? AND split = 'train'",
        [model_id],
    ).df()


def train_overlap(
    con: duckdb.DuckDBPyConnection, model_id: str, rows: list[dict[str, Any]]
) -> list[str]:
    """example_ids of ``rows`` whose normalized prompt ``model_id`` was trained on."""
    ensure_registry(con)
    if not rows:
        return []
    frame = pd.DataFrame(rows)[["example_id", "prompt"]].astype(str)
    con.register("_eval_rows", frame)
    key = NORMALIZE_SQL.format(col="e.prompt")
    try:
        found = con.execute(
            f"""SELECT DISTINCT e.example_id FROM _eval_rows e
                JOIN model_examples m ON m.prompt_key = sha256({key})
                WHERE m.model_id = ? AND m.split = 'train' ORDER BY 1""",
            [model_id],
        ).fetchall()
    finally:
        con.unregister("_eval_rows")
    return [row[0] for row in found]


def write_ladder(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Replace the ``quality_ladder`` table with one row per rung."""
    frame = pd.DataFrame(rows)
    con.register("_ladder_rows", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {LADDER_TABLE} AS SELECT * FROM _ladder_rows")
    finally:
        con.unregister("_ladder_rows")
