"""LoRA adapters (peft) for both trainers: add them, and load a saved adapter back."""

from pathlib import Path
from typing import Any

from curation_assets.curation.training.params import TrainParams, normalize_task

ADAPTER_CONFIG = "adapter_config.json"


def add_lora(model: Any, params: TrainParams, task: str) -> Any:
    """Wrap ``model`` with LoRA adapters on every linear layer but the output head.

    For classification the new head is trained in full (``modules_to_save``), as it
    starts from random weights.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    task = normalize_task(task)
    config = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules="all-linear",
        task_type=TaskType.SEQ_CLS if task == "classification" else TaskType.CAUSAL_LM,
        bias="none",
    )
    return get_peft_model(model, config)


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
