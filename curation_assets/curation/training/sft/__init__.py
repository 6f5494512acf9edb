"""Supervised fine-tuning of a causal LM on (prompt -> response) pairs, with TRL's ``SFTTrainer``.

The warehouse rows become a ``datasets.Dataset`` of tokenized pairs whose loss covers the
response tokens only (prompt labels are -100). With a chat template the pair is rendered
as a user turn and an assistant turn; without one, as ``### Instruction: ... ###
Response:``. Batches group examples of similar length under a token budget
(``packing="bucket"``: at least 95% real tokens on realistic data, see
benchmarks/RESULTS_training.md), or are flattened into one padding-free row by TRL's
collator (``packing="pack"``, for flash-attention on a GPU; correct but slower with sdpa
on a CPU). Full fine-tune or LoRA (a peft ``LoraConfig`` handed to ``SFTTrainer``); bf16
on a GPU that supports it, fp32 on the CPU. Plain Python, no Dagster; heavy imports
inside functions.

Modules: ``data`` (tokenizer, prompt templates, encoding into a ``datasets.Dataset``, the
length-bucketed sampler and the token-counting collator), ``train`` (the causal-LM
fine-tune, full or LoRA), ``evaluate`` (held-out loss, exact match, generation, loading
a saved model), ``card`` (the model card). This package exposes their public names
(``sft.train_sft``, ``sft.evaluate_sft``, ...).
"""

from curation_assets.curation.training.sft.data import (
    BUCKET_BATCHES,
    DEFAULT_SFT_HUB_MODEL,
    FALLBACK_PROMPT,
    IGNORE_INDEX,
    BucketBatchSampler,
    TokenCountingCollator,
    encode_pair,
    encode_rows,
    load_tokenizer,
    prompt_ids,
    resolve_sft_base_model,
)
from curation_assets.curation.training.sft.evaluate import (
    evaluate_sft,
    evaluate_sft_model,
    generate_answers,
    load_sft_model,
    normalize_answer,
)
from curation_assets.curation.training.sft.train import (
    load_causal_lm,
    make_trainer_class,
    packing_mode,
    train_sft,
)

__all__ = [
    "BUCKET_BATCHES",
    "BucketBatchSampler",
    "DEFAULT_SFT_HUB_MODEL",
    "FALLBACK_PROMPT",
    "IGNORE_INDEX",
    "TokenCountingCollator",
    "encode_pair",
    "encode_rows",
    "evaluate_sft",
    "evaluate_sft_model",
    "generate_answers",
    "load_causal_lm",
    "load_sft_model",
    "load_tokenizer",
    "make_trainer_class",
    "normalize_answer",
    "packing_mode",
    "prompt_ids",
    "resolve_sft_base_model",
    "train_sft",
]
