"""Standalone fine-tuning script: launched by Dagster Pipes, or run by hand with flags.

Under Pipes (``DAGSTER_PIPES_CONTEXT`` is set) it reads the extras ``task_type``
(``classification`` or ``sft``), ``train_path``, ``validation_path``, ``output_dir``,
``base_model``, ``params`` (``TrainParams`` fields) and, optionally,
``report_convergence_check`` (only when the asset declares an ``AssetCheckSpec`` named
``training_converged``), and reports one materialization with the metrics. With the extra
``job`` (``"module:function"``) it runs that job instead, e.g. rungs of ``quality_ladder``
(``curation_assets.curation.evaluation.ladder_sessions``), which report their scores as
Pipes custom messages. By hand::

    python -m curation_assets.curation.training.pipes_train --train train.parquet \\
        --validation validation.parquet --output-dir models/m1 --base-model auto --epochs 4

prints the metrics as JSON on stdout (progress goes to stderr). Exit status 2 for an error
that a retry cannot fix (bad data or parameters, a required GPU missing), 1 for any other
failure. Imports nothing from ``dagster``: only ``dagster_pipes``, so it runs unchanged in
a GPU pod launched by ``PipesK8sClient`` (docs/remote_training.md).
"""

import argparse
import json
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

COLUMNS = ("example_id", "prompt", "response")
CHECK_NAME = "training_converged"
EXPECTED_ERRORS = (ValueError, RuntimeError, OSError)
#: Written to the output folder when training fails under Pipes: the reason, one line.
ERROR_FILE = "TRAINING_ERROR.txt"
#: Exit status of a failure that retrying cannot fix (the asset does not retry it).
EXIT_PERMANENT = 2


class PermanentTrainingError(ValueError):
    """A failure a retry cannot fix: invalid data or parameters, a missing file, a required
    GPU absent. Raised inside the Pipes session, its class name reaches the orchestrator in
    Pipes' own report (the session's "closed" message), which is how the asset tells it from
    a failure worth a retry."""


def permanent_errors() -> tuple[type[BaseException], ...]:
    """The exception types a retry cannot fix."""
    from curation_assets.curation.training.params import GPUUnavailableError

    return (ValueError, FileNotFoundError, GPUUnavailableError)


def read_rows(path: str | Path | None) -> list[dict[str, Any]]:
    """Rows (example_id, prompt, response) of a Parquet split; [] when ``path`` is None."""
    import pyarrow.parquet as pq

    if path is None or str(path) == "":
        return []
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such Parquet file: {path}")
    names = pq.read_schema(path).names
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path} lacks columns {missing} (has {names})")
    return pq.read_table(path, columns=list(COLUMNS)).to_pylist()


def _ensure_importable() -> None:
    """Run by path (``python .../pipes_train.py``): put the package's root on ``sys.path``."""
    if not __package__:
        root = str(Path(__file__).resolve().parents[3])  # the folder holding curation_assets
        if root not in sys.path:
            sys.path.insert(0, root)


def converged(loss_curve: Sequence[Sequence[float]]) -> bool:
    """True when the loss is finite and the last points average below the first logged loss."""
    losses = [float(loss) for _, loss in loss_curve]
    if len(losses) < 2 or not all(math.isfinite(x) for x in losses):
        return False
    tail = losses[-max(1, len(losses) // 5) :]
    return sum(tail) / len(tail) < losses[0]


def _train(
    train_path: str | Path,
    validation_path: str | Path | None,
    output_dir: str | Path,
    base_model: str,
    params: dict[str, Any],
    log: Callable[[str], None],
    task_type: str = "classification",
) -> dict[str, Any]:
    _ensure_importable()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from curation_assets.curation.training.classifier import train_classifier
    from curation_assets.curation.training.params import TrainParams, normalize_task
    from curation_assets.curation.training.sft import train_sft

    task = normalize_task(task_type)
    train_params = TrainParams.from_dict(params)
    train_rows = read_rows(train_path)
    validation_rows = read_rows(validation_path)
    log(
        f"fine-tuning {base_model!r} ({task}) on {len(train_rows)} train rows "
        f"({len(validation_rows)} validation) into {output_dir}; params {train_params}"
    )

    def on_metrics(logs: dict[str, Any]) -> None:
        if "loss" in logs:
            log(
                f"step {logs['step']}/{logs['max_steps']} epoch {logs.get('epoch', 0):.2f}: "
                f"loss {logs['loss']:.4f} lr {logs.get('learning_rate', 0):.2e}"
            )

    import transformers

    transformers.utils.logging.disable_progress_bar()
    trainer = train_classifier if task == "classification" else train_sft
    metrics = trainer(train_rows, validation_rows, base_model, output_dir, train_params, on_metrics)
    metrics["task_type"] = task
    metrics["converged"] = converged(metrics["loss_curve"])
    summary = (
        f"trained in {metrics['train_seconds']:.1f} s on {metrics['device']}: "
        f"train loss {metrics['train_loss']:.4f}, {metrics['tokens_per_second']:.0f} tokens/s"
    )
    for key in ("validation_accuracy", "validation_loss", "validation_exact_match"):
        if key in metrics:
            summary += f", {key.replace('_', ' ')} {metrics[key]:.3f}"
    log(summary)
    return metrics


def pipes_metadata(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metrics as explicitly typed Dagster Pipes metadata values."""
    kinds = {
        "train_loss": "float",
        "final_loss": "float",
        "validation_accuracy": "float",
        "validation_macro_f1": "float",
        "validation_loss": "float",
        "validation_exact_match": "float",
        "padding_efficiency": "float",
        "gpu_peak_memory_gib": "float",
        "gpu_reserved_memory_gib": "float",
        "gpu_total_memory_gib": "float",
        "processed_tokens": "int",
        "response_tokens": "int",
        "truncated_examples": "int",
        "trainable_parameters": "int",
        "task_type": "text",
        "packing": "text",
        "epochs": "float",
        "train_seconds": "float",
        "examples_per_second": "float",
        "tokens_per_second": "float",
        "train_examples": "int",
        "validation_examples": "int",
        "steps": "int",
        "train_tokens": "int",
        "converged": "bool",
        "device": "text",
        "precision": "text",
        "data_version": "text",
        "model_dir": "path",
        "loss_curve": "json",
    }
    casts: dict[str, Callable[[Any], Any]] = {"float": float, "int": int, "bool": bool}
    return {
        key: {"raw_value": casts.get(kind, lambda v: v)(metrics[key]), "type": kind}
        for key, kind in kinds.items()
        if key in metrics
    }


#: The extra that names a job other than the fine-tune: ``"module:function"`` of this
#: package, called with (extras, log, report) inside the Pipes session, which reports its
#: results as Pipes custom messages (the quality ladder's rungs:
#: ``curation_assets.curation.evaluation.ladder_sessions``). The caller names it, so this
#: script imports no other stage.
JOB_EXTRA = "job"


def _job(name: str) -> Callable[..., Any]:
    """The function a ``job`` extra names (refused, permanently, unless it is this package's)."""
    import importlib

    module, _, function = str(name).partition(":")
    if not module.startswith("curation_assets.") or not function:
        raise PermanentTrainingError(f"job must be 'curation_assets.<module>:<function>': {name!r}")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise PermanentTrainingError(f"no such job {name!r}: {exc}") from exc


def _guarded(pipes: Any, output_dir: str, work: Callable[[], Any]) -> Any:
    """``work()``; a failure leaves its reason in ``output_dir`` and closes the session with
    ``PermanentTrainingError`` when a retry cannot fix it (Pipes reports its class)."""
    try:
        return work()
    except Exception as exc:  # leave the reason where a person can read it
        reason = f"{type(exc).__name__}: {exc}"
        error_file = Path(output_dir) / ERROR_FILE
        error_file.parent.mkdir(parents=True, exist_ok=True)
        error_file.write_text(reason + "\n")
        pipes.log.error(f"training failed: {reason}")
        if isinstance(exc, permanent_errors()):
            raise PermanentTrainingError(reason) from exc
        raise


def run_pipes() -> int:
    """Train with the extras of the Dagster Pipes context and report the materialization
    (or run the ``job`` the extras name, which reports custom messages)."""
    from dagster_pipes import open_dagster_pipes

    with open_dagster_pipes() as pipes:
        job = pipes.extras.get(JOB_EXTRA)
        required = ("output_dir",) if job else ("train_path", "output_dir")
        missing = [k for k in required if not pipes.extras.get(k)]
        if missing:
            raise PermanentTrainingError(f"Pipes extras lack {missing}; got {sorted(pipes.extras)}")
        if job:
            run = _job(job)
            _guarded(
                pipes,
                pipes.extras["output_dir"],
                lambda: run(pipes.extras, pipes.log.info, pipes.report_custom_message),
            )
            return 0
        metrics = _guarded(
            pipes,
            pipes.extras["output_dir"],
            lambda: _train(
                pipes.extras["train_path"],
                pipes.extras.get("validation_path"),
                pipes.extras["output_dir"],
                pipes.extras.get("base_model") or "auto",
                pipes.extras.get("params") or {},
                pipes.log.info,
                pipes.extras.get("task_type") or "classification",
            ),
        )
        pipes.report_asset_materialization(
            metadata=pipes_metadata(metrics), data_version=metrics["data_version"]
        )
        if pipes.extras.get("report_convergence_check"):
            curve = metrics["loss_curve"]
            pipes.report_asset_check(
                check_name=CHECK_NAME,
                passed=bool(metrics["converged"]),
                severity="WARN",  # a flat loss deserves a look, not a blocked pipeline
                metadata={
                    "first_loss": {"raw_value": float(curve[0][1]), "type": "float"},
                    "final_loss": {"raw_value": float(metrics["final_loss"]), "type": "float"},
                },
            )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m curation_assets.curation.training.pipes_train",
        description=(
            "Fine-tune a text classifier or an instruction-following causal LM on Parquet "
            "splits (example_id, prompt, response)."
        ),
    )
    parser.add_argument(
        "--task", default="classification", help="classification (default) or sft (instruction)"
    )
    parser.add_argument("--train", required=True, help="train split (Parquet)")
    parser.add_argument("--validation", help="validation split (Parquet), optional")
    parser.add_argument("--output-dir", required=True, help="folder for model, manifest, card")
    parser.add_argument(
        "--base-model",
        default="auto",
        help="hub id, local folder, or 'auto' (all-MiniLM-L6-v2; SmolLM2-135M-Instruct for sft)",
    )
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--max-length", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--warmup-ratio", type=float)
    parser.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--require-gpu", action="store_true", default=None)
    parser.add_argument("--max-steps", type=int, help="exact optimizer steps (0: from epochs)")
    parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--lora-r", type=int)
    parser.add_argument("--lora-alpha", type=int)
    parser.add_argument("--packing", choices=["auto", "bucket", "pack", "none"])
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"])
    return parser


PARAM_FLAGS = (
    "epochs",
    "learning_rate",
    "batch_size",
    "max_length",
    "seed",
    "weight_decay",
    "warmup_ratio",
    "freeze_embeddings",
    "require_gpu",
    "max_steps",
    "lora",
    "lora_r",
    "lora_alpha",
    "packing",
    "precision",
)


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Train from command-line flags and print the metrics as JSON on stdout."""
    args = _parser().parse_args(argv)
    params = {k: getattr(args, k) for k in PARAM_FLAGS if getattr(args, k) is not None}
    metrics = _train(
        args.train,
        args.validation,
        args.output_dir,
        args.base_model,
        params,
        lambda message: print(message, file=sys.stderr, flush=True),
        args.task,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Pipes mode when Dagster launched the process, CLI mode otherwise.

    Exit status 0 on success, ``EXIT_PERMANENT`` (2) for a failure a retry cannot fix,
    1 for any other (possibly transient) failure.
    """
    _ensure_importable()
    permanent = permanent_errors()
    from dagster_pipes import PipesEnvVarParamsLoader

    under_pipes = argv is None and PipesEnvVarParamsLoader().is_dagster_pipes_process()
    try:
        return run_pipes() if under_pipes else run_cli(argv)
    except permanent as exc:
        print(f"pipes_train: error: {exc}", file=sys.stderr)
        return EXIT_PERMANENT
    except EXPECTED_ERRORS as exc:  # e.g. a lost mount or a CUDA fault: worth a retry
        print(f"pipes_train: error: {exc}", file=sys.stderr)
    except Exception as exc:
        traceback.print_exc()
        print(f"pipes_train: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
