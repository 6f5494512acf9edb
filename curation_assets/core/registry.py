"""The model registry in the warehouse: which model was trained on which examples.

``models`` holds one row per fine-tuned model, ``model_examples`` the examples (and
split) each model saw, so lineage runs from every example to every model trained on
it; ``model_evaluations`` holds the evaluation reports.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from curation_assets.core.filtering import NORMALIZED_PROMPT_SQL

_SCHEMAS = {
    "models": """model_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, model_dir VARCHAR,
        base_model VARCHAR, data_version VARCHAR, train_examples BIGINT,
        validation_examples BIGINT, train_loss DOUBLE, metrics VARCHAR, run_id VARCHAR""",
    "model_examples": "model_id VARCHAR, example_id VARCHAR, split VARCHAR, prompt_key VARCHAR",
    "model_evaluations": """model_id VARCHAR, evaluated_at TIMESTAMP, split VARCHAR,
        examples BIGINT, accuracy DOUBLE, macro_f1 DOUBLE, report VARCHAR""",
}

#: Examples (by normalized prompt) in both the train and validation set of the latest model.
TRAIN_VALIDATION_OVERLAP_SQL = """
    SELECT count(*) FROM (
        SELECT prompt_key FROM model_examples
        WHERE model_id = (SELECT model_id FROM models ORDER BY created_at DESC LIMIT 1)
        GROUP BY prompt_key HAVING count(DISTINCT split) > 1)"""


def ensure_registry(con: duckdb.DuckDBPyConnection) -> None:
    for name, schema in _SCHEMAS.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({schema})")


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
                TO '{_sql_path(path)}' (FORMAT parquet)"""
        )
        counts[split] = int(
            con.execute(f"SELECT count(*) FROM '{_sql_path(path)}'").fetchall()[0][0]
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
    con.execute(
        "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            model_id,
            datetime.now(UTC).replace(tzinfo=None),
            str(model_dir),
            manifest.get("base_model"),
            manifest.get("data_version"),
            manifest.get("train_examples"),
            manifest.get("validation_examples"),
            metrics.get("train_loss"),
            json.dumps(metrics, default=str),
            run_id,
        ],
    )
    for split in ("train", "validation"):
        path = model_dir / "data" / f"{split}.parquet"
        con.execute(
            f"INSERT INTO model_examples SELECT ?, example_id, ?, prompt_key "
            f"FROM '{_sql_path(path)}'",
            [model_id, split],
        )


def latest_model(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    ensure_registry(con)
    frame = con.sql("SELECT * FROM models ORDER BY created_at DESC LIMIT 1").df()
    return None if frame.empty else frame.iloc[0].to_dict()


def record_evaluation(
    con: duckdb.DuckDBPyConnection, model_id: str, split: str, report: dict[str, Any]
) -> None:
    ensure_registry(con)
    con.execute(
        "INSERT INTO model_evaluations VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            model_id,
            datetime.now(UTC).replace(tzinfo=None),
            split,
            int(report["n"]),
            float(report["accuracy"]),
            float(report["macro_f1"]),
            json.dumps({k: v for k, v in report.items() if k != "predictions"}, default=str),
        ],
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
