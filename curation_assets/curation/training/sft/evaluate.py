"""Evaluate an SFT model: held-out response loss, exact match of generated answers; load
a saved model (full or LoRA adapter)."""

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curation_assets.curation.training.artifacts import read_manifest
from curation_assets.curation.training.examples import read_examples
from curation_assets.curation.training.sft.data import (
    IGNORE_INDEX,
    TokenCountingCollator,
    encode_pair,
    load_tokenizer,
    prompt_ids,
)


def load_sft_model(model_dir: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) of a saved SFT model; a LoRA adapter is loaded onto its base."""
    from transformers import AutoModelForCausalLM

    from curation_assets.curation.training.lora import is_adapter

    model_dir = Path(model_dir)
    tokenizer = load_tokenizer(str(model_dir))
    if is_adapter(model_dir):
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(str(model_dir))
    else:
        model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    return model, tokenizer


def normalize_answer(text: str) -> str:
    """Case-folded, whitespace-collapsed text: what exact match compares."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def evaluate_sft_model(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    max_length: int,
    batch_size: int = 16,
    generate: bool = True,
    max_new_tokens: int = 128,
    max_mistakes: int = 25,
) -> dict[str, Any]:
    """Mean response-token loss and greedy exact match of ``model`` on ``rows``.

    The loss is token-weighted over response tokens (prompt tokens excluded, as in training).
    Exact match compares the generated answer and the reference after ``normalize_answer``.
    """
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    examples = read_examples(rows, "evaluation")
    encoded = [encode_pair(tokenizer, e.text, e.label, max_length) for e in examples]
    pad = int(tokenizer.pad_token_id)
    total_loss, total_tokens = 0.0, 0
    usable = [f for f in encoded if f is not None]
    usable.sort(key=lambda f: len(f["input_ids"]))
    collate = TokenCountingCollator(pad)
    with torch.inference_mode():
        for start in range(0, len(usable), batch_size):
            batch = {
                k: v.to(device) for k, v in collate(usable[start : start + batch_size]).items()
            }
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits.float()
            shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
            shift_labels = batch["labels"][:, 1:].reshape(-1)
            loss = torch.nn.functional.cross_entropy(
                shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="sum"
            )
            total_loss += float(loss)
            total_tokens += int((shift_labels != IGNORE_INDEX).sum())
    mean_loss = total_loss / total_tokens if total_tokens else float("nan")
    report: dict[str, Any] = {
        "n": len(examples),
        "loss": mean_loss,
        "perplexity": math.exp(mean_loss) if mean_loss < 50 else float("inf"),
        "response_tokens": total_tokens,
        "exact_match": None,
        "predictions": [],
        "mistakes": [],
    }
    if generate and examples:
        # an answer longer than the longest reference cannot match: stop soon after it
        longest = max((sum(x != IGNORE_INDEX for x in f["labels"]) for f in usable), default=8)
        answers = generate_answers(
            model,
            tokenizer,
            [e.text for e in examples],
            max_length,
            batch_size,
            min(max_new_tokens, longest + 8),
        )
        correct = 0
        for e, answer in zip(examples, answers, strict=True):
            ok = normalize_answer(answer) == normalize_answer(e.label)
            correct += int(ok)
            report["predictions"].append(
                {
                    "example_id": e.example_id,
                    "expected": e.label,
                    "generated": answer,
                    "correct": ok,
                }
            )
            if not ok and len(report["mistakes"]) < max_mistakes:
                report["mistakes"].append(
                    {
                        "example_id": e.example_id,
                        "prompt": e.text[:200],
                        "expected": e.label[:200],
                        "generated": answer[:200],
                    }
                )
        report["exact_match"] = correct / len(examples)
        report["correct"] = correct
    model.train(was_training)
    return report


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_length: int,
    batch_size: int = 16,
    max_new_tokens: int = 128,
) -> list[str]:
    """Greedy answers to ``prompts`` (left-padded batches), in input order."""
    import torch

    device = next(model.parameters()).device
    pad = int(tokenizer.pad_token_id)
    heads = [prompt_ids(tokenizer, p)[-max(8, max_length // 2) :] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(heads[i]))
    stop = [t for t in {tokenizer.eos_token_id, tokenizer.pad_token_id} if t is not None]
    answers: dict[int, str] = {}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(heads[i]) for i in idx)
            ids = torch.tensor([[pad] * (width - len(heads[i])) + heads[i] for i in idx])
            mask = torch.tensor([[0] * (width - len(heads[i])) + [1] * len(heads[i]) for i in idx])
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=stop,
            )
            for row, i in zip(out[:, width:].tolist(), idx, strict=True):
                answers[i] = tokenizer.decode(row, skip_special_tokens=True)
    return [answers[i] for i in range(len(prompts))]


def evaluate_sft(
    model_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    batch_size: int = 16,
    generate: bool = True,
) -> dict[str, Any]:
    """``evaluate_sft_model`` for a saved model folder (full model or LoRA adapter)."""
    import torch

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    max_length = int(manifest.get("params", {}).get("max_length") or 512)
    model, tokenizer = load_sft_model(model_dir)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return evaluate_sft_model(model, tokenizer, rows, max_length, batch_size, generate)
