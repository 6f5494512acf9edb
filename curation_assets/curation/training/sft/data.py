"""SFT data: the tokenizer and prompt template, the warehouse rows as a ``datasets.Dataset``
of prompt/response pairs encoded with the loss on the response only, token-budget length
buckets, and TRL's collator with token counts."""

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from curation_assets.curation.training.examples import read_examples

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


def encode_rows(
    tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_length: int, split: str
) -> tuple[Any, int, int]:
    """(``datasets.Dataset`` of ``example_id``, ``input_ids``, ``labels``; truncated count;
    dropped count) of the warehouse ``rows`` (``example_id``, ``prompt``, ``response``).

    The hand-off to TRL's ``SFTTrainer``, which takes a tokenized dataset's ``labels`` as
    they are: each pair is encoded by ``encode_pair`` (as evaluation and generation encode
    it), and pairs with no response token within ``max_length`` are dropped.
    """
    from datasets import Dataset

    features, truncated, dropped = [], 0, 0
    for e in read_examples(rows, split):
        encoded = encode_pair(tokenizer, e.text, e.label, max_length)
        if encoded is None:
            dropped += 1
            continue
        truncated += int(encoded.pop("truncated"))
        features.append({"example_id": e.example_id, **encoded})
    columns = ("example_id", "input_ids", "labels")
    return Dataset.from_dict({c: [f[c] for f in features] for c in columns}), truncated, dropped


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
    """TRL's ``DataCollatorForLanguageModeling`` that also counts the tokens it batches.

    Pads a batch to its longest example (labels -100 on the padding, an attention mask),
    or with ``flatten`` concatenates it into one padding-free row whose ``position_ids``
    restart at each example (TRL's ``padding_free``; the first token of each example is
    not a target). Counts examples, real tokens, processed tokens (real plus padding) and
    response tokens (labels not -100), which TRL does not report.
    """

    def __init__(self, pad_token_id: int, flatten: bool = False) -> None:
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        self.pad_token_id = pad_token_id
        self.flatten = flatten
        self._collate = DataCollatorForLanguageModeling(
            pad_token_id=pad_token_id, padding_free=flatten
        )
        self.examples = 0
        self.real_tokens = 0
        self.processed_tokens = 0
        self.response_tokens = 0

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        features = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features]
        batch = self._collate(features)
        self.examples += len(features)
        self.real_tokens += sum(len(f["input_ids"]) for f in features)
        self.processed_tokens += int(batch["input_ids"].numel())
        self.response_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
        return batch

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.processed_tokens if self.processed_tokens else 0.0
