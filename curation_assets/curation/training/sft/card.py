"""The model card (``MODEL_CARD.md``) of a fine-tuned SFT model, made from its manifest:
intended use, data (truncated and dropped examples, prompt template), training setup
(full fine-tune or LoRA adapter, batching) and metrics."""

from collections.abc import Mapping
from typing import Any

from curation_assets.curation.training.sft.data import FALLBACK_PROMPT


def model_card(manifest: Mapping[str, Any]) -> str:
    """The card's Markdown text for ``manifest`` (as ``write_artifacts`` completes it)."""
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
