"""What of a model trains, for both trainers: the embeddings (frozen or not) and LoRA
adapters (peft): their config (which TRL's ``SFTTrainer`` applies for SFT), add them,
count trainable parameters, tell a saved adapter."""

from pathlib import Path
from typing import Any

from curation_assets.curation.training.params import TrainParams, normalize_task

ADAPTER_CONFIG = "adapter_config.json"


def prepare_for_training(model: Any, params: TrainParams, task: str, wrap_lora: bool = True) -> Any:
    """``model`` as ``params`` trains it: word embeddings frozen (``freeze_embeddings``),
    wrapped with LoRA adapters (``lora``; not with ``wrap_lora=False``, where the trainer
    wraps it from ``lora_config``) or trained in full."""
    if params.freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
    if params.lora and wrap_lora:
        model = add_lora(model, params, task)
    return model


def add_lora(model: Any, params: TrainParams, task: str) -> Any:
    """Wrap ``model`` with the adapters of ``lora_config`` (the classifier; for SFT, TRL's
    ``SFTTrainer`` wraps the model itself from the same config)."""
    from peft import get_peft_model

    return get_peft_model(model, lora_config(params, task))


def lora_config(params: TrainParams, task: str) -> Any:
    """A peft ``LoraConfig``: adapters on every linear layer but the output head.

    For classification the new head is trained in full (``modules_to_save``), as it
    starts from random weights.
    """
    from peft import LoraConfig, TaskType

    task = normalize_task(task)
    return LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules="all-linear",
        task_type=TaskType.SEQ_CLS if task == "classification" else TaskType.CAUSAL_LM,
        bias="none",
    )


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
