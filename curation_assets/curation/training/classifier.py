"""Fine-tune a sequence classifier (prompt text -> response label) with transformers, and
write its manifest and model card.

Plain Python, no Dagster: ``pipes_train`` runs it under Dagster Pipes, tests call it directly.
torch and transformers are imported inside the functions so that importing this module is cheap.
Predictions and evaluation live in ``classifier_evaluate``; this module re-exports them.
"""

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from curation_assets.curation.base_models import DEFAULT_HUB_MODEL, resolve_base_model
from curation_assets.curation.training import trainer_hooks
from curation_assets.curation.training.artifacts import (
    MANIFEST_NAME,
    MODEL_CARD_NAME,
    write_artifacts,
)
from curation_assets.curation.training.classifier_evaluate import (
    accuracy_and_macro_f1,
    evaluate_classifier,
    predict,
)
from curation_assets.curation.training.examples import data_version, read_examples
from curation_assets.curation.training.lora import prepare_for_training
from curation_assets.curation.training.params import (
    TrainParams,
    device_and_precision,
    trainer_arguments,
)
from curation_assets.curation.training.trainer_hooks import MetricsCallback

__all__ = [
    "DEFAULT_HUB_MODEL",
    "MANIFEST_NAME",
    "MODEL_CARD_NAME",
    "MetricsCallback",
    "TrainParams",
    "accuracy_and_macro_f1",
    "data_version",
    "evaluate_classifier",
    "resolve_base_model",
    "train_classifier",
]


def train_classifier(
    train_rows: Sequence[Mapping[str, Any]],
    validation_rows: Sequence[Mapping[str, Any]] | None,
    base_model: str,
    output_dir: str | Path,
    params: TrainParams | None = None,
    on_metrics: MetricsCallback | None = None,
) -> dict[str, Any]:
    """Fine-tune ``base_model`` as a classifier of ``prompt`` into ``response`` labels.

    Saves model, tokenizer, ``training_manifest.json`` and ``MODEL_CARD.md`` to ``output_dir``
    and returns the metrics. ``on_metrics`` receives every Trainer log dict (loss, lr, step...).
    """
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    params = params or TrainParams()
    device, bf16 = device_and_precision(params)  # fails clearly when a required GPU is missing
    params = replace(params, max_length=params.max_length_for("classification"))
    train = read_examples(train_rows, "train")
    validation = read_examples(validation_rows or [], "validation")
    if not train:
        raise ValueError("no training rows: nothing to fine-tune")
    labels = sorted({e.label for e in train})
    if len(labels) < 2:
        raise ValueError(f"a classifier needs at least 2 labels in train, got {labels}")
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    version = data_version(train_rows)
    model_path = resolve_base_model(base_model)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    set_seed(params.seed)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path,
        num_labels=len(labels),
        id2label=id2label,
        label2id=label2id,
        problem_type="single_label_classification",
        dtype=torch.float32,
    )
    if tokenizer.pad_token is None:  # decoder-style tokenizers
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        model.config.pad_token_id = tokenizer.pad_token_id
    model = prepare_for_training(model, params, "classification")

    # the hand-off to the Trainer: a datasets.Dataset of the tokenized rows and label ids
    encoded = tokenizer([e.text for e in train], truncation=True, max_length=params.max_length)
    features = Dataset.from_dict({**encoded, "labels": [label2id[e.label] for e in train]})
    with tempfile.TemporaryDirectory(prefix="trainer-") as scratch:
        on_gpu = device.startswith("cuda")
        args = TrainingArguments(
            **trainer_arguments(
                params, scratch, trainer_hooks.logging_steps(params, len(train)), on_gpu, bf16
            ),
            per_device_eval_batch_size=max(params.batch_size, 64),
            train_sampling_strategy="group_by_length",
            include_num_input_tokens_seen="non_padding",
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=features,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            callbacks=[trainer_hooks.forward_metrics(on_metrics)],
        )
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
        started = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - started
        model = trainer.model
        if params.lora:  # keep the adapter, and save the merged model for plain loading
            model.save_pretrained(str(output_dir / "adapter"))
            model = model.merge_and_unload()
            model.save_pretrained(str(output_dir))
        else:
            trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))

    tokens = int(trainer.state.num_input_tokens_seen or 0)
    metrics: dict[str, Any] = {
        **trainer_hooks.loss_metrics(trainer, result),
        "train_examples": len(train),
        "validation_examples": len(validation),
        **trainer_hooks.schedule_metrics(trainer, params, train_seconds),
        "examples_per_second": round(
            int(trainer.state.global_step) * params.batch_size / train_seconds, 2
        ),
        "tokens_per_second": round(tokens / train_seconds, 1),
        "train_tokens": tokens,
        **trainer_hooks.run_metrics(device, bf16, version, output_dir),
    }
    if validation:
        predicted = predict(
            model,
            tokenizer,
            [e.text for e in validation],
            batch_size=max(params.batch_size, 64),
            max_length=params.max_length,
        )
        accuracy, macro_f1 = accuracy_and_macro_f1(
            [e.label for e in validation], [p for p, _ in predicted]
        )
        metrics["validation_accuracy"] = round(accuracy, 4)
        metrics["validation_macro_f1"] = round(macro_f1, 4)

    manifest = {
        "task_type": "classification",
        "base_model": DEFAULT_HUB_MODEL if base_model.strip().lower() == "auto" else base_model,
        "base_model_requested": base_model,
        "base_model_path": model_path,
        "params": asdict(params),
        "seed": params.seed,
        "data_version": version,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "labels": labels,
        "label_counts": {label: sum(e.label == label for e in train) for label in labels},
    }
    write_artifacts(output_dir, manifest, metrics, device, _model_card)
    return metrics


def _model_card(manifest: Mapping[str, Any]) -> str:
    m = manifest["metrics"]
    p = manifest["params"]
    validation = (
        f"- Validation accuracy: {m['validation_accuracy']:.4f}\n"
        f"- Validation macro-F1: {m['validation_macro_f1']:.4f}\n"
        if "validation_accuracy" in m
        else "- Validation: none (no validation rows were given)\n"
    )
    label_lines = "\n".join(
        f"| `{label}` | {count} |" for label, count in manifest["label_counts"].items()
    )
    return f"""# Model card: text classifier fine-tuned from `{manifest["base_model"]}`

## Intended use
Routes a text (the `prompt` of a verified example) to one of the {len(manifest["labels"])} labels
below. Trained only on expert-verified examples of the train split; it knows no other label and
always answers one of these, so route low-confidence predictions to a human. Not for decisions
about people, and not for text unlike the training data (language, domain, length).

## Data
- Data version (sha256 of sorted example_id, label, prompt): `{manifest["data_version"]}`
- Train examples: {manifest["train_examples"]}
- Validation examples: {manifest["validation_examples"]} (held out, never trained on)

| Label | Train examples |
|---|---|
{label_lines}

## Training
- Base model: `{manifest["base_model"]}` (loaded from `{manifest["base_model_path"]}`)
- Epochs {p["epochs"]}, learning rate {p["learning_rate"]}, batch size {p["batch_size"]},
  max length {p["max_length"]} tokens, weight decay {p["weight_decay"]},
  warmup ratio {p["warmup_ratio"]}, seed {p["seed"]},
  word embeddings {"frozen" if p["freeze_embeddings"] else "trained"},
  {_method(p)}
- Device: {manifest["device"]} ({m["precision"]}); {m["train_seconds"]:.1f} s,
  {m["examples_per_second"]:.1f} examples/s, {m["tokens_per_second"]:.0f} tokens/s
- torch {manifest["versions"]["torch"]}, transformers {manifest["versions"]["transformers"]}

## Metrics
- Train loss (mean over training): {m["train_loss"]:.4f}; last logged loss: {m["final_loss"]:.4f}
{validation}"""


def _method(p: Mapping[str, Any]) -> str:
    if p.get("lora"):
        return (
            f"LoRA adapters (r {p['lora_r']}, alpha {p['lora_alpha']}, dropout "
            f"{p['lora_dropout']}), saved in `adapter/` and merged into the saved weights"
        )
    return "full fine-tune (every weight trained)"
