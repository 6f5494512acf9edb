"""Predictions and metrics of a sequence classifier: batched (label, probability)
predictions, accuracy and macro-F1, and the evaluation report of a saved classifier
(per-label accuracy, mistakes, predictions).

Plain Python, no Dagster; torch, transformers and scikit-learn are imported inside the
functions.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curation_assets.curation.training.artifacts import read_manifest
from curation_assets.curation.training.examples import read_examples


def accuracy_and_macro_f1(expected: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    if not expected:
        return 0.0, 0.0
    accuracy = sum(e == p for e, p in zip(expected, predicted, strict=True)) / len(expected)
    macro_f1 = f1_score(list(expected), list(predicted), average="macro", zero_division=0)
    return float(accuracy), float(macro_f1)


def predict(
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
    manifest = read_manifest(model_dir)
    max_length = int(manifest.get("params", {}).get("max_length", 128))
    examples = read_examples(rows, "evaluation")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    if torch.cuda.is_available():
        model = model.to("cuda")
    known = set(model.config.label2id)
    predicted = predict(model, tokenizer, [e.text for e in examples], batch_size, max_length)
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
