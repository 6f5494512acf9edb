"""Supervised fine-tuning of a causal LM on (prompt -> response) pairs, with transformers.

The loss covers the response tokens only (prompt labels are -100). With a chat template
the pair is rendered as a user turn and an assistant turn; without one, as
``### Instruction: ... ### Response:``. Batches group examples of similar length under a
token budget (``packing="bucket"``: at least 95% real tokens on realistic data, see
benchmarks/RESULTS_training.md), or flatten them into one padding-free row
(``packing="pack"``, for flash-attention on a GPU; correct but slower with sdpa on a CPU).
Full fine-tune or LoRA; bf16 on a GPU that supports it, fp32 on the CPU. Plain Python, no
Dagster; heavy imports inside functions.
"""

import json
import math
import platform
import random
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation_assets.curation.training.classifier import (
    MANIFEST_NAME,
    MODEL_CARD_NAME,
    MetricsCallback,
    _examples,
    data_version,
)
from curation_assets.curation.training.params import (
    TrainParams,
    device_and_precision,
    gpu_memory_metrics,
    trainer_arguments,
)

#: What ``base_model="auto"`` means for SFT (needs a reachable hub; no causal LM is packaged).
DEFAULT_SFT_HUB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: How a pair is rendered when the tokenizer has no chat template.
FALLBACK_PROMPT = "### Instruction:\n{prompt}\n\n### Response:\n"
IGNORE_INDEX = -100
#: Examples sorted by length together in "bucket" mode: this many batches' worth.
BUCKET_BATCHES = 128


def resolve_sft_base_model(name: str) -> str:
    """``"auto"`` -> the hub id of SmolLM2-135M-Instruct; a hub id or local folder as is."""
    return DEFAULT_SFT_HUB_MODEL if name.strip().lower() == "auto" else name


def load_tokenizer(model_path: str) -> Any:
    """The base model's tokenizer, with a pad token (its EOS when it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _ids(encoded: Any) -> list[int]:
    """``apply_chat_template`` returns a dict in transformers 5 and a list before."""
    ids = encoded["input_ids"] if isinstance(encoded, Mapping) else encoded
    return [int(i) for i in ids]


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of the prompt up to where the response starts (for training and generation)."""
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}]
        return _ids(
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        )
    return _ids(tokenizer(FALLBACK_PROMPT.format(prompt=prompt), add_special_tokens=True))


def encode_pair(
    tokenizer: Any, prompt: str, response: str, max_length: int
) -> dict[str, Any] | None:
    """``input_ids`` and ``labels`` (-100 on the prompt) of one pair, at most ``max_length``.

    A long prompt is cut from the left (the end of the prompt and the turn marker stay),
    keeping at least half the budget for the response; a long response is cut at the end.
    None when no response token fits.
    """
    head = prompt_ids(tokenizer, prompt)
    tail: list[int] | None = None
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        full = _ids(tokenizer.apply_chat_template(messages, tokenize=True))
        if full[: len(head)] == head and len(full) > len(head):
            tail = full[len(head) :]  # the template's own end-of-turn tokens included
    if tail is None:
        tail = _ids(tokenizer(response, add_special_tokens=False))
        if tokenizer.eos_token_id is not None:
            tail.append(int(tokenizer.eos_token_id))
    truncated = len(head) + len(tail) > max_length
    if truncated:
        keep_head = min(len(head), max(max_length - len(tail), max_length // 2))
        head = head[len(head) - keep_head :]
        tail = tail[: max_length - len(head)]
    if not tail:
        return None
    return {
        "input_ids": head + tail,
        "labels": [IGNORE_INDEX] * len(head) + tail,
        "truncated": truncated,
    }


class BucketBatchSampler:
    """Batches of examples of similar length and similar token counts, reshuffled every epoch.

    Token-budget batching (fairseq's ``max_tokens``) with the budget solved for: an epoch
    has exactly ``ceil(len(lengths) / batch_size)`` batches, as a plain sampler's (so the
    Trainer's step count and learning-rate schedule do not change), and each example once.
    Each epoch shuffles the examples (seeded by ``seed`` and the epoch), sorts windows of
    ``BUCKET_BATCHES`` batches' worth by length, and cuts every sorted window greedily into
    batches whose padded size (examples x longest example) stays within one token budget:
    the smallest budget that needs no more than that many batches (a binary search; batches
    with the most examples are halved if fewer come out). Long examples thus go in small
    batches and short ones in large batches, ``batch_size`` examples on average and about
    the same number of tokens each; then the batches are shuffled. The loss of a step is
    the mean over its response tokens (the model's loss with ``num_items_in_batch``), so
    the size of a step does not grow with its number of examples.

    With fewer examples than one window the batches hold nearly the same examples every
    epoch (only examples of equal length change places), in a new order.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        if not lengths or batch_size < 1:
            raise ValueError("BucketBatchSampler needs at least one example and batch_size >= 1")
        self.lengths = [max(1, int(n)) for n in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.num_batches = math.ceil(len(self.lengths) / batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _cut(self, window: Sequence[int], budget: int) -> list[list[int]]:
        """Greedy cut of a window sorted longest first: the fewest batches within ``budget``."""
        out: list[list[int]] = []
        batch: list[int] = []
        width = 0
        for i in window:
            if batch and max(width, self.lengths[i]) * (len(batch) + 1) > budget:
                out.append(batch)
                batch, width = [], 0
            batch.append(i)
            width = max(width, self.lengths[i])
        if batch:
            out.append(batch)
        return out

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        span = self.batch_size * BUCKET_BATCHES
        windows = [
            sorted(order[start : start + span], key=lambda i: -self.lengths[i])
            for start in range(0, len(order), span)
        ]
        # batch_size examples of the longest length always fit in ``high``: at most
        # num_batches batches there; fewer batches need a larger budget (monotone)
        low, high = max(self.lengths), max(self.lengths) * self.batch_size
        while low < high:
            middle = (low + high) // 2
            if sum(len(self._cut(w, middle)) for w in windows) <= self.num_batches:
                high = middle
            else:
                low = middle + 1
        out = [batch for w in windows for batch in self._cut(w, low)]
        while len(out) < self.num_batches:  # halve the batch of most examples
            largest = max(range(len(out)), key=lambda j: len(out[j]))
            batch = out.pop(largest)
            out += [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
        rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.batches(self.epoch)
        self.epoch += 1  # the Trainer does not always call set_epoch on a custom sampler
        return iter(batches)


class TokenCountingCollator:
    """Pads a batch to its longest example (or flattens it) and counts real/processed tokens."""

    def __init__(self, pad_token_id: int, flatten: bool = False) -> None:
        self.pad_token_id = pad_token_id
        self.flatten = flatten
        self.examples = 0
        self.real_tokens = 0
        self.processed_tokens = 0
        self.response_tokens = 0

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        lengths = [len(f["input_ids"]) for f in features]
        self.examples += len(features)
        self.real_tokens += sum(lengths)
        self.response_tokens += sum(
            sum(1 for x in f["labels"] if x != IGNORE_INDEX) for f in features
        )
        if self.flatten:  # one row; positions restart per example, so attention stays inside
            ids = [t for f in features for t in f["input_ids"]]
            labels = []
            for f in features:  # the first token of each example predicts nothing
                labels += [IGNORE_INDEX, *f["labels"][1:]]
            positions = [p for n in lengths for p in range(n)]
            self.processed_tokens += len(ids)
            return {
                "input_ids": torch.tensor([ids]),
                "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions]),
            }
        width = max(lengths)
        self.processed_tokens += width * len(features)
        ids, labels, mask = [], [], []
        for f, n in zip(features, lengths, strict=True):
            ids.append([*f["input_ids"], *[self.pad_token_id] * (width - n)])
            labels.append([*f["labels"], *[IGNORE_INDEX] * (width - n)])
            mask.append([1] * n + [0] * (width - n))
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.processed_tokens if self.processed_tokens else 0.0


def packing_mode(params: TrainParams, on_gpu: bool) -> str:
    """The batching actually used: ``auto`` packs on a GPU with flash-attention, else buckets."""
    if params.packing != "auto":
        return params.packing
    if on_gpu:
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "bucket"
        return "pack"
    return "bucket"


def load_causal_lm(model_path: str, bf16: bool, packing: str) -> Any:
    """The base causal LM (hub id or local folder), fp32 weights (bf16 autocast on a GPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if packing == "pack" and torch.cuda.is_available():
        try:
            import flash_attn  # noqa: F401

            kwargs.update(attn_implementation="flash_attention_2", dtype=torch.bfloat16)
        except ImportError:
            pass  # sdpa: the mask built from position_ids keeps examples apart (no KV cache)
    return AutoModelForCausalLM.from_pretrained(model_path, **kwargs)


def make_trainer_class() -> type:
    """A ``transformers.Trainer`` that draws training batches from a batch sampler."""
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class SFTTrainer(Trainer):
        def __init__(self, *args: Any, batch_sampler: Any = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.batch_sampler = batch_sampler

        def get_train_dataloader(self) -> Any:
            if self.batch_sampler is None:
                return super().get_train_dataloader()
            loader = DataLoader(
                self.train_dataset,
                batch_sampler=self.batch_sampler,
                collate_fn=self.data_collator,
                num_workers=0,
            )
            return self.accelerator.prepare(loader)

    return SFTTrainer


def encode_rows(
    tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_length: int, split: str
) -> tuple[list[dict[str, Any]], int, int]:
    """(features, truncated count, dropped count) of ``rows``."""
    features, truncated, dropped = [], 0, 0
    for e in _examples(rows, split):
        encoded = encode_pair(tokenizer, e.text, e.label, max_length)
        if encoded is None:
            dropped += 1
            continue
        truncated += int(encoded.pop("truncated"))
        features.append(encoded)
    return features, truncated, dropped


def train_sft(
    train_rows: Sequence[Mapping[str, Any]],
    validation_rows: Sequence[Mapping[str, Any]] | None,
    base_model: str,
    output_dir: str | Path,
    params: TrainParams | None = None,
    on_metrics: MetricsCallback | None = None,
    evaluate_generation: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``base_model`` to answer each ``prompt`` with its ``response``.

    Saves the model (or, with LoRA, the adapter), tokenizer, ``training_manifest.json``
    and ``MODEL_CARD.md`` to ``output_dir`` and returns the metrics (loss curve, tokens/s,
    padding efficiency, validation loss and exact match).
    """
    import torch
    import transformers
    from transformers import PrinterCallback, TrainerCallback, TrainingArguments, set_seed

    params = params or TrainParams()
    device, bf16 = device_and_precision(params)
    params = replace(params, max_length=params.max_length_for("sft"))
    on_gpu = device.startswith("cuda")
    mode = packing_mode(params, on_gpu)
    train_examples = _examples(train_rows, "train")
    validation = list(validation_rows or [])
    if not train_examples:
        raise ValueError("no training rows: nothing to fine-tune")
    version = data_version(train_rows)
    model_path = resolve_sft_base_model(base_model)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    set_seed(params.seed)
    tokenizer = load_tokenizer(model_path)
    features, truncated, dropped = encode_rows(tokenizer, train_rows, params.max_length, "train")
    if not features:
        raise ValueError("no training example keeps a response token within max_length")
    model = load_causal_lm(model_path, bf16, mode)
    config, use_cache = model.config, model.config.use_cache  # the Trainer turns it off
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if params.freeze_embeddings:
        model.get_input_embeddings().requires_grad_(False)
    if params.lora:
        from curation_assets.curation.training.lora import add_lora

        model = add_lora(model, params, "sft")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    collator = TokenCountingCollator(int(tokenizer.pad_token_id), flatten=mode == "pack")
    sampler = (
        BucketBatchSampler([len(f["input_ids"]) for f in features], params.batch_size, params.seed)
        if mode == "bucket"
        else None
    )
    steps = params.max_steps or math.ceil(
        math.ceil(len(features) / params.batch_size) * params.epochs
    )
    logging_steps = params.logging_steps or max(1, steps // 50)

    class _Forward(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if on_metrics is not None and logs:
                on_metrics({**logs, "step": state.global_step, "max_steps": state.max_steps})

    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        args = TrainingArguments(
            **trainer_arguments(params, scratch, logging_steps, on_gpu, bf16),
            remove_unused_columns=False,
            # no KV cache: with one, transformers skips the per-example mask it builds from
            # position_ids (sdpa, eager) and flattened examples would attend to each other
            use_cache=False,
        )
        trainer = make_trainer_class()(
            model=model,
            args=args,
            train_dataset=features,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[_Forward()],
            batch_sampler=sampler,
        )
        trainer.remove_callback(PrinterCallback)
        started = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - started
        model = trainer.model
        config.use_cache = use_cache  # as the base model had it, for generation
        model.save_pretrained(str(output_dir))  # with LoRA: the adapter only
    tokenizer.save_pretrained(str(output_dir))

    loss_curve = [
        [int(entry["step"]), float(entry["loss"])]
        for entry in trainer.state.log_history
        if "loss" in entry and "step" in entry
    ]
    metrics: dict[str, Any] = {
        "task_type": "sft",
        "train_loss": float(result.training_loss),
        "final_loss": loss_curve[-1][1] if loss_curve else float(result.training_loss),
        "loss_curve": loss_curve,
        "train_examples": len(features),
        "truncated_examples": truncated,
        "dropped_examples": dropped,
        "validation_examples": len(validation),
        "epochs": float(params.epochs),
        "steps": int(trainer.state.global_step),
        "train_seconds": round(train_seconds, 3),
        "train_tokens": collator.real_tokens,
        "processed_tokens": collator.processed_tokens,
        "response_tokens": collator.response_tokens,
        "padding_efficiency": round(collator.padding_efficiency, 4),
        "tokens_per_second": round(collator.real_tokens / train_seconds, 1),
        "examples_per_second": round(collator.examples / train_seconds, 2),
        "packing": mode,
        "trainable_parameters": trainable,
        "parameters": total,
        "device": device,
        "precision": "bf16" if bf16 else "fp32",
        "data_version": version,
        "model_dir": str(output_dir),
        **gpu_memory_metrics(),
    }
    if validation:
        report = evaluate_sft_model(
            model,
            tokenizer,
            validation,
            params.max_length,
            batch_size=max(params.batch_size, 16),
            generate=evaluate_generation,
        )
        metrics["validation_loss"] = round(report["loss"], 4)
        if report.get("exact_match") is not None:
            metrics["validation_exact_match"] = round(report["exact_match"], 4)

    manifest = {
        "task_type": "sft",
        "base_model": model_path,
        "base_model_requested": base_model,
        "base_model_path": model_path,
        "adapter": bool(params.lora),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "params": asdict(params),
        "packing": mode,
        "seed": params.seed,
        "data_version": version,
        "train_examples": len(features),
        "validation_examples": len(validation),
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
    examples = _examples(rows, "evaluation")
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
    manifest_path = model_dir / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    max_length = int(manifest.get("params", {}).get("max_length") or 512)
    model, tokenizer = load_sft_model(model_dir)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return evaluate_sft_model(model, tokenizer, rows, max_length, batch_size, generate)


def _model_card(manifest: Mapping[str, Any]) -> str:
    m = manifest["metrics"]
    p = manifest["params"]
    method = (
        f"LoRA adapters (r {p['lora_r']}, alpha {p['lora_alpha']}, dropout {p['lora_dropout']});"
        " this folder holds the adapter, loaded onto the base model by "
        "`curation_assets.curation.training.sft.load_sft_model`"
        if manifest["adapter"]
        else "full fine-tune (every weight trained)"
    )
    validation = (
        f"- Validation loss (response tokens): {m['validation_loss']:.4f}\n"
        + (
            f"- Validation exact match: {m['validation_exact_match']:.4f}\n"
            if "validation_exact_match" in m
            else ""
        )
        if "validation_loss" in m
        else "- Validation: none (no validation rows were given)\n"
    )
    template = "its chat template" if manifest["chat_template"] else "`" + FALLBACK_PROMPT[:16]
    if not manifest["chat_template"]:
        template += "...` (the tokenizer has no chat template)"
    return f"""# Model card: instruction model fine-tuned from `{manifest["base_model"]}`

## Intended use
Answers prompts like those of its expert-verified training data, in their style. It was
trained on few examples: check its answers before relying on them, and do not use it for
decisions about people or for text unlike the training data.

## Data
- Data version (sha256 of sorted example_id, response, prompt): `{manifest["data_version"]}`
- Train examples: {manifest["train_examples"]} ({m["truncated_examples"]} truncated to
  {p["max_length"]} tokens, {m["dropped_examples"]} dropped)
- Validation examples: {manifest["validation_examples"]} (held out, never trained on)
- Prompts rendered with {template}; loss on response tokens only

## Training
- Base model: `{manifest["base_model"]}`; {method}
- Epochs {p["epochs"]}, learning rate {p["learning_rate"]}, batch size {p["batch_size"]},
  weight decay {p["weight_decay"]}, warmup ratio {p["warmup_ratio"]}, seed {p["seed"]},
  batching `{manifest["packing"]}` (padding efficiency {m["padding_efficiency"]:.3f})
- Device: {manifest["device"]} ({m["precision"]}); {m["train_seconds"]:.1f} s,
  {m["tokens_per_second"]:.0f} real tokens/s, {m["steps"]} steps
- torch {manifest["versions"]["torch"]}, transformers {manifest["versions"]["transformers"]}

## Metrics
- Train loss (mean over training): {m["train_loss"]:.4f}; last logged loss: {m["final_loss"]:.4f}
{validation}"""


__all__ = [
    "BucketBatchSampler",
    "TokenCountingCollator",
    "encode_pair",
    "evaluate_sft",
    "load_sft_model",
    "train_sft",
]
