"""Train the same model with the same compute budget on every rung of the quality ladder.

Two trainers, chosen by ``trainer``:

- ``"head"`` (default; seconds on a CPU): the base encoder stays frozen; every text is
  embedded once (mean-pooled, L2-normalized, as sentence-transformers does for MiniLM) and a
  softmax head is trained on each rung with AdamW for exactly ``steps`` steps of ``batch_size``
  examples, so every rung gets the same model and the same compute.
- ``"finetune"``: a full fine-tune of the encoder (``train_classifier``) for exactly ``steps``
  optimizer steps per rung: the product's own trainer, minutes per rung on a CPU.

Every rung is scored on the same held-out rows. Labels a rung never saw count as wrong.
``run_ladder`` trains every rung in this process; ``quality_ladder`` runs the same pieces
(``plan_ladder``, ``score_rung``) in Dagster Pipes sessions (``ladder_sessions``).
Plain Python (torch imported inside functions), no Dagster.
"""

import io
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curation_assets.curation.base_models import resolve_base_model
from curation_assets.curation.training.classifier import accuracy_and_macro_f1
from curation_assets.curation.training.params import TrainParams

TRAINERS = ("head", "finetune")
#: The head trainer's learning rate: a linear layer on normalized embeddings learns fast.
HEAD_LEARNING_RATE = 0.02
HEAD_WEIGHT_DECAY = 0.01


def budget_steps(largest: int, batch_size: int, epochs: float) -> int:
    """Steps that give the largest rung ``epochs`` passes; every rung gets the same number."""
    return max(1, math.ceil(math.ceil(largest / batch_size) * epochs))


def embed_texts(
    model_path: str, texts: Sequence[str], max_length: int = 64, batch_size: int = 64
) -> Any:
    """Mean-pooled, L2-normalized embeddings of ``texts`` from a frozen encoder (float tensor):
    the suspect queue's ``SentenceEncoder``, so both score examples in the same space."""
    import torch

    from curation_assets.curation.review.suspects import SentenceEncoder

    return torch.from_numpy(SentenceEncoder(model_path, batch_size, max_length)(list(texts)))


def train_head(
    features: Any, labels: Sequence[str], steps: int, batch_size: int, seed: int
) -> tuple[Any, list[str]]:
    """A softmax layer trained for exactly ``steps`` AdamW steps; (layer, its label order)."""
    import torch

    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    targets = torch.tensor([index[label] for label in labels])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], len(names))
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=HEAD_LEARNING_RATE, weight_decay=HEAD_WEIGHT_DECAY
    )
    order = torch.randperm(len(labels), generator=generator)
    position = 0
    for _ in range(steps):
        if position + batch_size > len(order):  # next epoch: reshuffle, keep batches full
            order = torch.randperm(len(labels), generator=generator)
            position = 0
        idx = order[position : position + batch_size]
        position += batch_size
        loss = torch.nn.functional.cross_entropy(head(features[idx]), targets[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return head, names


def _head_predict(head: Any, names: list[str], features: Any) -> list[str]:
    import torch

    with torch.inference_mode():
        return [names[i] for i in (head(features)).argmax(-1).tolist()]


def plan_ladder(
    rungs: Sequence[Mapping[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    trainer: str,
    steps: int,
    params: TrainParams,
) -> tuple[list[Mapping[str, Any]], int]:
    """The rungs that can be trained (at least 2 labels) and the steps each gets.

    ``steps`` 0: ``budget_steps`` of the largest trainable rung with ``params.epochs``.
    """
    if trainer not in TRAINERS:
        raise ValueError(f"unknown ladder trainer {trainer!r}; known: {TRAINERS}")
    if not validation:
        raise ValueError("the ladder needs held-out validation rows")
    usable = [r for r in rungs if len({row["response"] for row in r["rows"]}) >= 2]
    if not usable:
        raise ValueError("no rung has at least 2 labels to train on")
    largest = max(len(r["rows"]) for r in usable)
    return usable, steps or budget_steps(largest, params.batch_size, params.epochs)


def base_result(
    rung: Mapping[str, Any], steps: int, params: TrainParams, trainer: str
) -> dict[str, Any]:
    """A rung's result before training: its other keys (sizes, hours, notes) and the budget."""
    rows = rung["rows"]
    result = {k: v for k, v in rung.items() if k != "rows"}
    result.update(size=len(rows), labels=len({row["response"] for row in rows}))
    result.update(steps=steps, batch_size=params.batch_size, trainer=trainer)
    return result


def skipped_result(result: dict[str, Any], rung: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` of a rung that is not trained: no scores, and the reason in its note."""
    result.update(validation_accuracy=None, validation_macro_f1=None, seconds=0.0)
    result["status"] = "skipped"
    if not rung.get("rows") and rung.get("note"):
        result["note"] = rung["note"]  # skipped upstream, with the reason
    else:
        reason = "not trained: fewer than 2 labels"
        result["note"] = "; ".join(x for x in (rung.get("note"), reason) if x)
    return result


def head_texts(
    usable: Sequence[Mapping[str, Any]], validation: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Every prompt the head trainer embeds (the trainable rungs' and validation's), sorted:
    the same list, embedded in one pass, whichever rungs are trained from it."""
    return sorted(
        {str(row["prompt"]) for r in usable for row in r["rows"]}
        | {str(row["prompt"]) for row in validation}
    )


class HeadFeatures:
    """Embeddings of ``texts`` (one row each) looked up by prompt."""

    def __init__(self, texts: Sequence[str], matrix: Any) -> None:
        if len(texts) != matrix.shape[0]:
            raise ValueError(f"{matrix.shape[0]} embeddings for {len(texts)} texts")
        self.matrix = matrix
        self.index = {text: i for i, text in enumerate(texts)}

    def of(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        return self.matrix[[self.index[str(row["prompt"])] for row in rows]]


def score_rung(
    rows: Sequence[Mapping[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    base_model: str,
    trainer: str,
    steps: int,
    params: TrainParams,
    features: HeadFeatures | None = None,
    val_features: Any = None,
) -> dict[str, Any]:
    """Train one rung with the ladder's budget and score it on ``validation``:
    ``validation_accuracy``, ``validation_macro_f1`` (4 places) and ``seconds``."""
    started = time.perf_counter()
    if trainer == "head":
        if features is None:
            raise ValueError("the head trainer needs the texts' embeddings")
        head, names = train_head(
            features.of(rows),
            [str(row["response"]) for row in rows],
            steps,
            params.batch_size,
            params.seed,
        )
        if val_features is None:
            val_features = features.of(validation)
        predicted = _head_predict(head, names, val_features)
        expected = [str(row["response"]) for row in validation]
        accuracy, macro_f1 = accuracy_and_macro_f1(expected, predicted)
    else:
        accuracy, macro_f1 = _finetune_rung(list(rows), validation, base_model, steps, params)
    return {
        "validation_accuracy": round(accuracy, 4),
        "validation_macro_f1": round(macro_f1, 4),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_ladder(
    rungs: Sequence[Mapping[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    base_model: str,
    trainer: str = "head",
    steps: int = 0,
    params: TrainParams | None = None,
) -> list[dict[str, Any]]:
    """Train on each rung (dicts: name, rows, ...) and score on ``validation``, in this
    process (``quality_ladder`` runs the same through Pipes: ``ladder_sessions``).

    ``steps`` 0: ``budget_steps`` of the largest rung with ``params.epochs``. Returns one
    result per rung with the rung's other keys kept (sizes, hours, notes).
    """
    params = params or TrainParams()
    usable, steps = plan_ladder(rungs, validation, trainer, steps, params)
    features = val_features = None
    if trainer == "head":
        texts = head_texts(usable, validation)
        started = time.perf_counter()
        max_length = params.max_length_for("classification")
        matrix = embed_texts(resolve_base_model(base_model), texts, max_length)
        features = HeadFeatures(texts, matrix)
        embed_seconds = round(time.perf_counter() - started, 2)
        val_features = features.of(validation)

    results = []
    for rung in rungs:
        result = base_result(rung, steps, params, trainer)
        if rung not in usable:
            results.append(skipped_result(result, rung))
            continue
        result.update(
            score_rung(
                rung["rows"], validation, base_model, trainer, steps, params, features, val_features
            ),
            status="trained",
        )
        if trainer == "head":
            result["embed_seconds"] = embed_seconds
        results.append(result)
    return results


def _finetune_rung(
    rows: list[Mapping[str, Any]],
    validation: Sequence[Mapping[str, Any]],
    base_model: str,
    steps: int,
    params: TrainParams,
) -> tuple[float, float]:
    from dataclasses import replace

    from curation_assets.curation.training.classifier import train_classifier

    with tempfile.TemporaryDirectory(prefix="ladder-") as folder:
        metrics = train_classifier(
            rows, validation, base_model, Path(folder), replace(params, max_steps=steps)
        )
    return float(metrics["validation_accuracy"]), float(metrics["validation_macro_f1"])


def ladder_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """The ladder as a markdown table: dataset, size, review hours, validation accuracy."""
    lines = [
        "| dataset | what | examples | review hours (expert) | validation accuracy | macro-F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        acc = r.get("validation_accuracy")
        f1 = r.get("validation_macro_f1")
        hours = f"{r.get('human_hours', 0):.1f} ({r.get('expert_hours', 0):.1f})"
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(
            f"| {r['name']} | {r.get('description', '')}{note} | {r['size']} | {hours} | "
            f"{'' if acc is None else f'{acc:.3f}'} | {'' if f1 is None else f'{f1:.3f}'} |"
        )
    return "\n".join(lines)


def ladder_plot_png(results: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """Accuracy against examples (log x) and against review hours, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if r.get("validation_accuracy") is not None and r["size"] > 0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    for ax, key, label in (
        (axes[0], "size", "training examples (log scale)"),
        (axes[1], "human_hours", "human review hours (reviewers + experts)"),
    ):
        for r in done:
            x = float(r.get(key) or 0.0)
            ax.scatter(x, r["validation_accuracy"], s=40)
            ax.annotate(
                r["name"],
                (x, r["validation_accuracy"]),
                fontsize=8,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xlabel(label)
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log")
    fig.suptitle(title or "Quality ladder: same model, same compute, same held-out split")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
