"""Fine-tune and evaluate a sequence classifier (prompt text -> response label) with transformers.

Plain Python, no Dagster: ``pipes_train`` runs it under Dagster Pipes, tests call it directly.
torch and transformers are imported inside the functions so that importing this module is cheap.
"""

import hashlib
import json
import math
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation_assets.curation.base_models import DEFAULT_HUB_MODEL, resolve_base_model
from curation_assets.curation.training.params import (
    TrainParams,
    device_and_precision,
    gpu_memory_metrics,
    trainer_arguments,
)

__all__ = ["TrainParams", "evaluate_classifier", "train_classifier"]

MANIFEST_NAME = "training_manifest.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
MetricsCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class _Example:
    example_id: str
    text: str
    label: str


def _examples(rows: Iterable[Mapping[str, Any]], split: str) -> list[_Example]:
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in ("example_id", "prompt", "response") if row.get(k) is None]
        if missing:
            raise ValueError(f"{split} row {i} lacks {missing}: {dict(row)!r:.200}")
        out.append(_Example(str(row["example_id"]), str(row["prompt"]), str(row["response"])))
    return out


def data_version(rows: Iterable[Mapping[str, Any]]) -> str:
    """sha256 over the sorted (example_id, label, prompt) triples: order-independent."""
    lines = sorted(
        json.dumps([e.example_id, e.label, e.text], ensure_ascii=False)
        for e in _examples(rows, "data")
    )
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def accuracy_and_macro_f1(expected: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    if not expected:
        return 0.0, 0.0
    accuracy = sum(e == p for e, p in zip(expected, predicted, strict=True)) / len(expected)
    macro_f1 = f1_score(list(expected), list(predicted), average="macro", zero_division=0)
    return float(accuracy), float(macro_f1)


def _predict(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, max_length: int
) -> list[tuple[str, float]]:
    """(label, probability) per text, batched, in input order."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    # Sort by length to keep padding low, then restore the input order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: dict[int, tuple[str, float]] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            logits = model(**batch).logits.float()
            probs, ids = torch.softmax(logits, dim=-1).max(dim=-1)
            for i, label_id, prob in zip(idx, ids.tolist(), probs.tolist(), strict=True):
                results[i] = (model.config.id2label[int(label_id)], float(prob))
    out = [results[i] for i in range(len(texts))]
    model.train(was_training)
    return out


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
    import transformers
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    params = params or TrainParams()
    device, bf16 = device_and_precision(params)  # fails clearly when a required GPU is missing
    params = replace(params, max_length=params.max_length_for("classification"))
    train = _examples(train_rows, "train")
    validation = _examples(validation_rows or [], "validation")
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
    if params.freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
    if params.lora:
        from curation_assets.curation.training.lora import add_lora

        model = add_lora(model, params, "classification")

    encoded = tokenizer([e.text for e in train], truncation=True, max_length=params.max_length)
    features = [
        {**{key: encoded[key][i] for key in encoded}, "labels": label2id[e.label]}
        for i, e in enumerate(train)
    ]
    steps = params.max_steps or math.ceil(math.ceil(len(train) / params.batch_size) * params.epochs)
    logging_steps = params.logging_steps or max(1, steps // 50)

    class _Forward(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if on_metrics is not None and logs:
                on_metrics({**logs, "step": state.global_step, "max_steps": state.max_steps})

    with tempfile.TemporaryDirectory(prefix="trainer-") as scratch:
        on_gpu = device.startswith("cuda")
        args = TrainingArguments(
            **trainer_arguments(params, scratch, logging_steps, on_gpu, bf16),
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
            callbacks=[_Forward()],
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

    loss_curve = [
        [int(entry["step"]), float(entry["loss"])]
        for entry in trainer.state.log_history
        if "loss" in entry and "step" in entry
    ]
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    metrics: dict[str, Any] = {
        "train_loss": float(result.training_loss),
        "final_loss": loss_curve[-1][1] if loss_curve else float(result.training_loss),
        "loss_curve": loss_curve,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "epochs": float(params.epochs),
        "steps": int(trainer.state.global_step),
        "train_seconds": round(train_seconds, 3),
        "examples_per_second": round(
            int(trainer.state.global_step) * params.batch_size / train_seconds, 2
        ),
        "tokens_per_second": round(tokens / train_seconds, 1),
        "train_tokens": tokens,
        "device": device,
        "precision": "bf16" if bf16 else "fp32",
        "data_version": version,
        "model_dir": str(output_dir),
        **gpu_memory_metrics(),
    }
    if validation:
        predicted = _predict(
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
        "metrics": metrics,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        "device": device,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (output_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    (output_dir / MODEL_CARD_NAME).write_text(_model_card(manifest))
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


def evaluate_classifier(
    model_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    batch_size: int = 64,
    max_mistakes: int = 25,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label accuracy, mistakes and predictions of a saved classifier.

    Rows whose label the model does not know count as wrong.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    max_length = int(manifest.get("params", {}).get("max_length", 128))
    examples = _examples(rows, "evaluation")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    if torch.cuda.is_available():
        model = model.to("cuda")
    known = set(model.config.label2id)
    predicted = _predict(model, tokenizer, [e.text for e in examples], batch_size, max_length)
    expected = [e.label for e in examples]
    accuracy, macro_f1 = accuracy_and_macro_f1(expected, [p for p, _ in predicted])

    per_label: dict[str, dict[str, Any]] = {}
    predictions = []
    mistakes = []
    for e, (label, prob) in zip(examples, predicted, strict=True):
        correct = label == e.label
        stats = per_label.setdefault(
            e.label, {"n": 0, "correct": 0, "accuracy": 0.0, "known": e.label in known}
        )
        stats["n"] += 1
        stats["correct"] += int(correct)
        predictions.append(
            {
                "example_id": e.example_id,
                "expected": e.label,
                "predicted": label,
                "confidence": round(prob, 4),
                "correct": correct,
            }
        )
        if not correct and len(mistakes) < max_mistakes:
            mistakes.append(
                {
                    "example_id": e.example_id,
                    "prompt": e.text if len(e.text) <= 200 else e.text[:199] + "…",
                    "expected": e.label,
                    "predicted": label,
                    "confidence": round(prob, 4),
                }
            )
    for stats in per_label.values():
        stats["accuracy"] = round(stats["correct"] / stats["n"], 4)
    return {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "n": len(examples),
        "correct": sum(p["correct"] for p in predictions),
        "unknown_label_rows": sum(e.label not in known for e in examples),
        "per_label": per_label,
        "mistakes": mistakes,
        "predictions": predictions,
        "model_labels": sorted(known),
    }
