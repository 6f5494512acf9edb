"""Training efficiency on this machine: the product's SFT path against a plain Trainer.

Same data, same tokenization (prompt labels -100), same randomly initialised small causal LM,
same batch size, learning rate, epochs and precision (fp32 on a CPU; bf16 where supported);
the only difference is how batches are formed:

- plain: ``transformers.Trainer`` with default settings, a random sampler and padding to the
  longest example in each batch (``DataCollatorForSeq2Seq``), no packing;
- product: ``curation.training.sft.train_sft`` (TRL's ``SFTTrainer`` on the tokenized
  ``datasets.Dataset``, length-bucketed batches under a token budget, ``packing``
  ``bucket``; ``--modes bucket,pack`` adds padding-free rows);
- TRL alone (``--trl-modes``): ``trl.SFTTrainer`` on a conversational prompt/completion
  dataset that TRL tokenizes itself (``completion_only_loss``): ``default`` (random
  batches padded to the longest) and ``bfd`` (``packing=True``, best-fit-decreasing rows of
  ``--max-length`` tokens, padding-free; as many rows a step as hold the tokens of
  ``--batch-size`` mean examples, so a step sees about the same tokens).

Reported: padding efficiency (real tokens / tokens processed), real tokens per second of
``trainer.train()`` and per CPU-second of this process (the product's CPU seconds also hold
its model loading, tokenization and saving, about a second), the cores other processes kept
busy meanwhile, and the load average before and after (the cores may be shared: the CPU
figures move less with the load than the wall-clock ones).
Data: instruction/response pairs read from ``--data`` (JSONL files with
``instruction``/``input``/``output``, e.g. the alpaca-libre and self-instruct files of the
shared data folder, read-only); the tokenizer is trained on them locally (byte-level BPE with
a ChatML template). Nothing is downloaded.

    .venv/bin/python benchmarks/bench_training_efficiency.py --examples 1024 --json out.json
"""

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402

DEFAULT_DATA = [
    *(str(common.ALPACA_RAW / f"alpaca_libre_tasks_v{v}.jsonl") for v in (1, 2, 3)),
    str(common.SELF_INSTRUCT),
]
#: The Markdown table printed after the JSON summary.
TABLE = common.Table(
    [
        "path",
        "padding efficiency",
        "real tokens/s",
        "vs plain",
        "tokens/CPU-s",
        "vs plain (CPU)",
        "seconds",
        "other cores busy",
        "train loss",
    ],
    "| {path} | {padding_efficiency:.3f} | {real_tokens_per_second:.0f} | "
    "{tokens_per_second_vs_plain:.2f}x | {real_tokens_per_cpu_second:.0f} | "
    "{tokens_per_cpu_second_vs_plain:.2f}x | {seconds:.1f} | {other_cores:.1f} | {train_loss} |",
    align="lrrrrrrrr",
)


def load_pairs(paths: list[str], limit: int, seed: int) -> list[dict[str, str]]:
    """(example_id, prompt, response) rows from instruction JSONL files, shuffled, ``limit``."""
    rows = []
    for path in map(Path, paths):
        for i, item in common.jsonl(path):
            if not isinstance(item, dict):
                continue
            instruction = str(item.get("instruction") or "").strip()
            extra = str(item.get("input") or item.get("instances", [{}])[0].get("input", ""))
            output = item.get("output")
            if output is None and item.get("instances"):
                output = item["instances"][0].get("output")
            output = str(output or "").strip()
            if not instruction or not output:
                continue
            prompt = instruction + ("\n\n" + extra.strip() if extra.strip() else "")
            rows.append({"example_id": f"{path.stem}:{i}", "prompt": prompt, "response": output})
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def build_base(folder: Path, rows: list[dict[str, str]], args: argparse.Namespace) -> Path:
    """A Qwen2-style causal LM from a config (random init) and a locally trained tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from curation_assets_tests.tiny_models import train_byte_level_tokenizer

    texts = [r["prompt"] + "\n" + r["response"] for r in rows]
    tokenizer = train_byte_level_tokenizer(texts, vocab_size=args.vocab, chat=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.hidden // 64,
        num_key_value_heads=max(1, args.hidden // 128),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(str(folder))
    return folder


def run_plain(base: Path, rows: list[dict[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    """A default ``Trainer``: random batches padded to their longest example."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, set_seed

    from curation_assets.curation.training.sft import encode_rows, load_tokenizer

    set_seed(args.seed)
    tokenizer = load_tokenizer(str(base))
    features, _, _ = encode_rows(tokenizer, rows, args.max_length, "train")
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    collate = common.PaddingCollator(tokenizer)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(
            model=model,
            args=common.training_arguments(
                scratch,
                args.batch_size,
                num_train_epochs=args.epochs,
                learning_rate=args.learning_rate,
                seed=args.seed,
            ),
            train_dataset=features,
            data_collator=collate,
        )
        with common.Timer(machine=True) as timer:
            result = trainer.train()
    real, seconds = collate.real_tokens, timer.wall
    return {
        "path": "plain Trainer (random batches, pad to longest)",
        **cpu_figures(real, timer),
        "seconds": round(seconds, 2),
        "real_tokens": real,
        "processed_tokens": collate.processed_tokens,
        "padding_efficiency": round(real / collate.processed_tokens, 4),
        "real_tokens_per_second": round(real / seconds, 1),
        "train_loss": round(float(result.training_loss), 4),
        "steps": int(trainer.state.global_step),
    }


def cpu_figures(real_tokens: int, timer: common.Timer) -> dict[str, float]:
    """CPU seconds of this process and real tokens per CPU-second (steadier than wall time
    when other jobs share the cores), and how many cores other processes kept busy."""
    return {
        "cpu_seconds": round(timer.cpu, 2),
        "real_tokens_per_cpu_second": round(real_tokens / timer.cpu, 1),
        "other_cores": round(timer.other_cores, 2),
    }


def run_product(
    base: Path, rows: list[dict[str, str]], args: argparse.Namespace, mode: str
) -> dict[str, Any]:
    from curation_assets.curation.training.params import TrainParams
    from curation_assets.curation.training.sft import train_sft

    params = TrainParams(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        packing=mode,
        weight_decay=0.0,
        warmup_ratio=0.0,
    )
    with tempfile.TemporaryDirectory() as out, common.Timer(machine=True) as timer:
        m = train_sft(rows, [], str(base), out, params)
    return {
        "path": f"product train_sft (packing={mode})",
        **cpu_figures(m["train_tokens"], timer),
        "seconds": m["train_seconds"],
        "real_tokens": m["train_tokens"],
        "processed_tokens": m["processed_tokens"],
        "padding_efficiency": m["padding_efficiency"],
        "real_tokens_per_second": m["tokens_per_second"],
        "train_loss": round(m["train_loss"], 4),
        "steps": m["steps"],
    }


def run_trl(
    base: Path, rows: list[dict[str, str]], args: argparse.Namespace, mode: str, mean_tokens: float
) -> dict[str, Any]:
    """``trl.SFTTrainer`` as its documentation drives it: TRL tokenizes and masks the pairs."""
    import math

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig, SFTTrainer

    from curation_assets.curation.training.sft import TokenCountingCollator, load_tokenizer

    set_seed(args.seed)
    tokenizer = load_tokenizer(str(base))
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "completion": [{"role": "assistant", "content": r["response"]}],
            }
            for r in rows
        ]
    )
    packed = mode == "bfd"
    batch = (
        math.ceil(args.batch_size * mean_tokens / args.max_length) if packed else args.batch_size
    )
    collate = None if packed else TokenCountingCollator(int(tokenizer.pad_token_id))
    with tempfile.TemporaryDirectory() as scratch:
        config = SFTConfig(
            scratch,
            per_device_train_batch_size=batch,
            **common.QUIET_TRAINING,
            bf16=common.bf16_available(),
            use_cpu=not torch.cuda.is_available(),
            num_train_epochs=args.epochs,
            learning_rate=args.learning_rate,
            seed=args.seed,
            activation_checkpointing=False,  # TRL's default is on
            max_length=args.max_length,
            packing=packed,
            packing_strategy="bfd",
            completion_only_loss=True,
        )
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32),
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            data_collator=collate,
        )
        with common.Timer(machine=True) as timer:
            result = trainer.train()
    if packed:  # padding-free rows: every token is real
        real = processed = int(sum(map(len, trainer.train_dataset["input_ids"])) * args.epochs)
    else:
        real, processed = collate.real_tokens, collate.processed_tokens
    return {
        "path": f"TRL SFTTrainer alone ({mode}, batch {batch}, TRL tokenizes)",
        **cpu_figures(real, timer),
        "seconds": round(timer.wall, 2),
        "real_tokens": real,
        "processed_tokens": processed,
        "padding_efficiency": round(real / processed, 4),
        "real_tokens_per_second": round(real / timer.wall, 1),
        "train_loss": round(float(result.training_loss), 4),
        "steps": int(trainer.state.global_step),
    }


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--data", nargs="*", default=DEFAULT_DATA)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--modes", default="bucket", help="product batching modes to time")
    parser.add_argument("--trl-modes", default="", help="TRL alone: default and/or bfd")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # TRL pings the Hub per trainer
    import torch
    import transformers

    if args.threads:  # one thread moves less than two when other jobs share the cores
        torch.set_num_threads(args.threads)
    common.quiet_transformers()

    load_before = os.getloadavg()
    rows = load_pairs(args.data, args.examples, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        base = build_base(Path(folder), rows, args)
        from curation_assets.curation.training.sft import encode_rows, load_tokenizer

        lengths = [
            len(f["input_ids"])
            for f in encode_rows(load_tokenizer(str(base)), rows, args.max_length, "train")[0]
        ]
        params = sum(p.numel() for p in transformers.AutoModel.from_pretrained(base).parameters())
        results = [run_plain(base, rows, args)]
        results += [run_product(base, rows, args, mode) for mode in args.modes.split(",")]
        mean_tokens = sum(lengths) / len(lengths)
        results += [
            run_trl(base, rows, args, mode, mean_tokens)
            for mode in filter(None, args.trl_modes.split(","))
        ]
    plain = results[0]
    for r in results:
        r["tokens_per_second_vs_plain"] = round(
            r["real_tokens_per_second"] / plain["real_tokens_per_second"], 2
        )
        r["tokens_per_cpu_second_vs_plain"] = round(
            r["real_tokens_per_cpu_second"] / plain["real_tokens_per_cpu_second"], 2
        )
    lengths.sort()
    summary = {
        "device": "cuda"
        if torch.cuda.is_available()
        else f"cpu ({torch.get_num_threads()} threads)",
        **common.library_versions(),
        "examples": len(rows),
        "model_parameters": params,
        "tokens_per_example": {
            "min": lengths[0],
            "median": lengths[len(lengths) // 2],
            "p90": lengths[int(len(lengths) * 0.9)],
            "max": lengths[-1],
            "mean": round(sum(lengths) / len(lengths), 1),
        },
        "config": vars(args),
        "load_average_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "results": results,
    }
    common.print_summary(summary, TABLE, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
