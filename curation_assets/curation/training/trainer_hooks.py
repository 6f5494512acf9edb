"""What both fine-tunes plug into transformers' ``Trainer`` and read back from it the same
way: the metrics callback (every log dict, with the step), the logging interval, and the
metrics every run reports (losses and loss curve, schedule, device and data version).

transformers is imported inside the functions.
"""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation_assets.curation.training.params import TrainParams, gpu_memory_metrics

MetricsCallback = Callable[[dict[str, Any]], None]


def forward_metrics(on_metrics: MetricsCallback | None) -> Any:
    """A ``TrainerCallback`` handing every Trainer log dict (loss, lr...) to ``on_metrics``,
    with ``step`` and ``max_steps`` added."""
    from transformers import TrainerCallback

    class _Forward(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if on_metrics is not None and logs:
                on_metrics({**logs, "step": state.global_step, "max_steps": state.max_steps})

    return _Forward()


def logging_steps(params: TrainParams, n_examples: int) -> int:
    """Steps between two logged losses: ``params.logging_steps``, else about 50 a run."""
    steps = params.max_steps or math.ceil(math.ceil(n_examples / params.batch_size) * params.epochs)
    return params.logging_steps or max(1, steps // 50)


def loss_metrics(trainer: Any, result: Any) -> dict[str, Any]:
    """``train_loss`` (mean over training), ``final_loss`` (the last logged one) and the
    ``loss_curve`` ([step, loss] pairs) of a finished ``trainer.train()``."""
    loss_curve = [
        [int(entry["step"]), float(entry["loss"])]
        for entry in trainer.state.log_history
        if "loss" in entry and "step" in entry
    ]
    return {
        "train_loss": float(result.training_loss),
        "final_loss": loss_curve[-1][1] if loss_curve else float(result.training_loss),
        "loss_curve": loss_curve,
    }


def schedule_metrics(trainer: Any, params: TrainParams, train_seconds: float) -> dict[str, Any]:
    """``epochs``, ``steps`` and ``train_seconds`` of a finished run."""
    return {
        "epochs": float(params.epochs),
        "steps": int(trainer.state.global_step),
        "train_seconds": round(train_seconds, 3),
    }


def run_metrics(device: str, bf16: bool, version: str, output_dir: Path) -> dict[str, Any]:
    """Where the run trained (device, precision, GPU memory), on which data version, and
    the folder it saved to."""
    return {
        "device": device,
        "precision": "bf16" if bf16 else "fp32",
        "data_version": version,
        "model_dir": str(output_dir),
        **gpu_memory_metrics(),
    }
