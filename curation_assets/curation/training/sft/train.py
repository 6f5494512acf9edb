"""Causal-LM supervised fine-tuning (full or LoRA) with transformers' Trainer."""

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from curation_assets.curation.training import trainer_hooks
from curation_assets.curation.training.artifacts import write_artifacts
from curation_assets.curation.training.examples import data_version, read_examples
from curation_assets.curation.training.lora import prepare_for_training, trainable_parameters
from curation_assets.curation.training.params import (
    TrainParams,
    device_and_precision,
    trainer_arguments,
)
from curation_assets.curation.training.sft.card import model_card
from curation_assets.curation.training.sft.data import (
    BucketBatchSampler,
    TokenCountingCollator,
    encode_pair,
    load_tokenizer,
    resolve_sft_base_model,
)
from curation_assets.curation.training.sft.evaluate import evaluate_sft_model
from curation_assets.curation.training.trainer_hooks import MetricsCallback


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
    for e in read_examples(rows, split):
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
    from transformers import PrinterCallback, TrainingArguments, set_seed

    params = params or TrainParams()
    device, bf16 = device_and_precision(params)
    params = replace(params, max_length=params.max_length_for("sft"))
    on_gpu = device.startswith("cuda")
    mode = packing_mode(params, on_gpu)
    train_examples = read_examples(train_rows, "train")
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
    model = prepare_for_training(model, params, "sft")
    trainable, total = trainable_parameters(model)

    collator = TokenCountingCollator(int(tokenizer.pad_token_id), flatten=mode == "pack")
    sampler = (
        BucketBatchSampler([len(f["input_ids"]) for f in features], params.batch_size, params.seed)
        if mode == "bucket"
        else None
    )
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        args = TrainingArguments(
            **trainer_arguments(
                params, scratch, trainer_hooks.logging_steps(params, len(features)), on_gpu, bf16
            ),
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
            callbacks=[trainer_hooks.forward_metrics(on_metrics)],
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

    metrics: dict[str, Any] = {
        "task_type": "sft",
        **trainer_hooks.loss_metrics(trainer, result),
        "train_examples": len(features),
        "truncated_examples": truncated,
        "dropped_examples": dropped,
        "validation_examples": len(validation),
        **trainer_hooks.schedule_metrics(trainer, params, train_seconds),
        "train_tokens": collator.real_tokens,
        "processed_tokens": collator.processed_tokens,
        "response_tokens": collator.response_tokens,
        "padding_efficiency": round(collator.padding_efficiency, 4),
        "tokens_per_second": round(collator.real_tokens / train_seconds, 1),
        "examples_per_second": round(collator.examples / train_seconds, 2),
        "packing": mode,
        "trainable_parameters": trainable,
        "parameters": total,
        **trainer_hooks.run_metrics(device, bf16, version, output_dir),
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
    }
    write_artifacts(output_dir, manifest, metrics, device, model_card)
    return metrics
