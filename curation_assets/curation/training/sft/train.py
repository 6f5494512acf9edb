"""Causal-LM supervised fine-tuning (full or LoRA) with TRL's ``SFTTrainer``."""

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from curation_assets.curation.training import trainer_hooks
from curation_assets.curation.training.artifacts import write_artifacts
from curation_assets.curation.training.examples import data_version, read_examples
from curation_assets.curation.training.lora import (
    lora_config,
    prepare_for_training,
    trainable_parameters,
)
from curation_assets.curation.training.params import (
    TrainParams,
    device_and_precision,
    trainer_arguments,
)
from curation_assets.curation.training.sft.card import model_card
from curation_assets.curation.training.sft.data import (
    BucketBatchSampler,
    TokenCountingCollator,
    encode_rows,
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
    """TRL's ``SFTTrainer`` drawing training batches from a batch sampler (``batch_sampler``).

    The loss is TRL's fused LM head (log-probabilities of the target tokens only, in
    Triton tiles) on a CUDA or XPU device with Triton; elsewhere (the CPU) it is the
    model's own loss, as transformers' ``Trainer`` computes it: TRL's torch fallback
    scores every position with several vocabulary-wide temporaries and took 2x the time
    of a training step here (benchmarks/RESULTS_training.md). Both are the mean over the
    step's target tokens (``num_items_in_batch``).

    Also takes a list of tokenized features as ``train_dataset`` (it becomes a
    ``datasets.Dataset``) and, with a ``data_collator`` and no ``processing_class``, a
    pad-only stand-in tokenizer: TRL insists on one even when it tokenizes nothing. Sends
    no telemetry.
    """
    from torch.utils.data import DataLoader
    from transformers import Trainer
    from transformers.utils import is_triton_available
    from trl import SFTTrainer

    class BatchSamplerSFTTrainer(SFTTrainer):
        def __init__(self, *args: Any, batch_sampler: Any = None, **kwargs: Any) -> None:
            if isinstance(kwargs.get("train_dataset"), list):
                from datasets import Dataset

                kwargs["train_dataset"] = Dataset.from_list(kwargs["train_dataset"])
            if kwargs.get("processing_class") is None and kwargs.get("data_collator"):
                kwargs["processing_class"] = _pad_only_tokenizer()
            super().__init__(*args, **kwargs)
            self.batch_sampler = batch_sampler

        def _send_telemetry(self) -> None:
            """No usage ping to the Hugging Face Hub (TRL sends one per trainer it builds
            unless ``HF_HUB_DISABLE_TELEMETRY`` is set): a curation run reports nowhere."""

        def compute_loss(
            self,
            model: Any,
            inputs: Any,
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if is_triton_available() and self.args.device.type in ("cuda", "xpu"):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

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

    return BatchSamplerSFTTrainer


def _pad_only_tokenizer() -> Any:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = Tokenizer(models.WordLevel({"<pad>": 0}, unk_token="<pad>"))
    return PreTrainedTokenizerFast(tokenizer_object=vocab, pad_token="<pad>")


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
    from transformers import PrinterCallback, set_seed
    from trl import SFTConfig

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
    dataset, truncated, dropped = encode_rows(tokenizer, train_rows, params.max_length, "train")
    if not len(dataset):
        raise ValueError("no training example keeps a response token within max_length")
    model = load_causal_lm(model_path, bf16, mode)
    use_cache = model.config.use_cache  # the Trainer turns it off
    model = prepare_for_training(model, params, "sft", wrap_lora=False)  # SFTTrainer wraps

    # TRL's collator (padded, or one padding-free row in "pack" mode) with token counts
    collator = TokenCountingCollator(int(tokenizer.pad_token_id), flatten=mode == "pack")
    sampler = (
        BucketBatchSampler(
            [len(ids) for ids in dataset["input_ids"]], params.batch_size, params.seed
        )
        if mode == "bucket"
        else None
    )
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="sft-") as scratch:
        args = SFTConfig(
            **trainer_arguments(
                params, scratch, trainer_hooks.logging_steps(params, len(dataset)), on_gpu, bf16
            ),
            activation_checkpointing=False,  # TRL turns it on by default: 20-30% slower steps
            max_length=None,  # encode_rows truncated each pair (the prompt from the left)
        )
        trainer = make_trainer_class()(
            model=model,
            args=args,
            train_dataset=dataset.select_columns(["input_ids", "labels"]),
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=[trainer_hooks.forward_metrics(on_metrics)],
            peft_config=lora_config(params, "sft") if params.lora else None,
            batch_sampler=sampler,
        )
        trainer.remove_callback(PrinterCallback)
        trainable, total = trainable_parameters(trainer.model)
        started = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - started
        model = trainer.model
        model.config.use_cache = use_cache  # as the base model had it, for generation
        model.save_pretrained(str(output_dir))  # with LoRA: the adapter only
    tokenizer.save_pretrained(str(output_dir))

    metrics: dict[str, Any] = {
        "task_type": "sft",
        **trainer_hooks.loss_metrics(trainer, result),
        "train_examples": len(dataset),
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
        "train_examples": len(dataset),
        "validation_examples": len(validation),
    }
    write_artifacts(output_dir, manifest, metrics, device, model_card)
    return metrics
