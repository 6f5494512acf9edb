"""GPU throughput and model FLOPs utilization (MFU) of SFT: the product's path vs a plain Trainer.

For a ~0.1B (SmolLM-135M-like) and a ~0.5B (Qwen2.5-0.5B-like) causal LM, randomly
initialised from the architectures' published dimensions (written inline: nothing is
downloaded), on synthetic SFT batches with a realistic long-tailed spread of lengths:

- plain: ``transformers.Trainer``, bf16 where supported, random batches padded to the
  longest example (``DataCollatorForSeq2Seq``), no packing;
- product: the same Trainer driven the way ``curation_assets.curation.training.sft`` drives it:
  length-bucketed batches (``BucketBatchSampler``) or, with flash-attention installed,
  padding-free packing (``--packing pack``), bf16, TF32 matmuls.

MFU = model FLOPs on real tokens per second / peak bf16 dense FLOP/s of the GPU, with
model FLOPs per token = 6 x (non-embedding parameters + LM head) + 12 x layers x hidden x
mean sequence length (PaLM appendix B; padding counts as waste). Target for ~0.5B: >= 45%.

    python benchmarks/bench_gpu_mfu.py                      # both models, on the GPU
    python benchmarks/bench_gpu_mfu.py --smoke              # a tiny model on the CPU, seconds
    python benchmarks/bench_gpu_mfu.py --models qwen2.5-0.5b --batch-size 16 --compile

Needs torch, transformers and accelerate only (not Dagster): on a GPU pod copy the
repository and run it there. Prints JSON and a markdown table.
"""

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402

#: Dimensions of the real architectures (config.json of the hub models), random init here.
MODELS: dict[str, dict[str, Any]] = {
    "smollm-135m": {  # HuggingFaceTB/SmolLM-135M (LlamaForCausalLM)
        "arch": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "max_position_embeddings": 2048,
        "rope_theta": 10000.0,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
    "qwen2.5-0.5b": {  # Qwen/Qwen2.5-0.5B (Qwen2ForCausalLM)
        "arch": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
    "smoke": {  # CPU check that the script works
        "arch": "qwen2",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "vocab_size": 512,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
    },
}
#: Peak dense bf16 tensor FLOP/s by GPU name fragment (NVIDIA datasheets, without sparsity).
PEAK_BF16 = {"H200": 989e12, "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12,
             "H100": 989e12, "A100": 312e12, "L40S": 362e12, "L4": 121e12}  # fmt: skip
#: The Markdown table printed after the JSON summary.
TABLE = common.Table(
    ["model", "path", "precision", "padding eff.", "real tokens/s", "MFU", "peak GiB"],
    "| {model} | {path} | {precision} | {padding_efficiency} | {real_tokens_per_second:.0f} "
    "| {mfu:.1%} | {peak_memory_gib} |",
    align="lllrrrr",
)


def build_model(name: str, dtype: Any) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(MODELS[name])
    arch = spec.pop("arch")
    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if arch == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    )
    torch.manual_seed(0)
    config = config_cls(**spec, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    return model_cls(config).to(dtype)


def synthetic_features(n: int, vocab: int, max_length: int, seed: int) -> list[dict[str, Any]]:
    """SFT-like examples: log-normal lengths (median ~40% of max) with a prompt share masked."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = max(16, min(max_length, int(rng.lognormvariate(math.log(0.4 * max_length), 0.7))))
        prompt = max(4, int(length * rng.uniform(0.2, 0.6)))
        ids = [rng.randrange(2, vocab) for _ in range(length)]
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def model_flops_per_token(model: Any, mean_seq: float) -> float:
    """6N (non-embedding weights + LM head) + attention 12 * layers * hidden * seq."""
    config = model.config
    embedding = config.vocab_size * config.hidden_size
    total = sum(p.numel() for p in model.parameters())
    lm_head = embedding  # tied or not, the head's matmul is done once per token
    non_embedding = total - embedding - (0 if config.tie_word_embeddings else lm_head)
    return 6 * (non_embedding + lm_head) + 12 * config.num_hidden_layers * config.hidden_size * (
        mean_seq
    )


def peak_flops(override: float | None) -> tuple[float, str]:
    import torch

    if override:
        return override * 1e12, "given"
    if not torch.cuda.is_available():
        return 1e12, "cpu (nominal 1 TFLOP/s: MFU not meaningful)"
    name = torch.cuda.get_device_name(0)
    for fragment, flops in PEAK_BF16.items():
        if fragment in name:
            return flops, name
    return 989e12, f"{name} (unknown: assumed 989 TFLOP/s)"


def timed_run(
    name: str,
    features: list[dict[str, Any]],
    args: argparse.Namespace,
    path: str,
) -> dict[str, Any]:
    """Train ``args.steps`` steps after ``args.warmup`` untimed ones; tokens/s, MFU, memory."""
    import torch
    from transformers import PreTrainedTokenizerFast, Trainer, TrainerCallback

    from curation_assets.curation.training.sft import (
        BucketBatchSampler,
        TokenCountingCollator,
        make_trainer_class,
    )

    on_gpu = torch.cuda.is_available()
    bf16 = common.bf16_available()
    if on_gpu:
        torch.backends.cuda.matmul.allow_tf32 = path != "plain"
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = build_model(name, torch.float32)
    flash = False
    if path == "product" and args.packing == "pack":
        try:
            import flash_attn  # noqa: F401

            model.config._attn_implementation = "flash_attention_2"
            flash = True
        except ImportError:
            pass
    if path == "plain":
        from tokenizers import Tokenizer, models

        stub = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer(models.WordLevel({"<pad>": 0, "<eos>": 1}, "<pad>")),
            pad_token="<pad>",
        )
        collate: Any = common.PaddingCollator(stub)
        sampler, trainer_cls = None, Trainer
    else:
        collate = TokenCountingCollator(0, flatten=args.packing == "pack")
        sampler = (
            BucketBatchSampler([len(f["input_ids"]) for f in features], args.batch_size, 13)
            if args.packing == "bucket"
            else None
        )
        trainer_cls = make_trainer_class()
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == args.warmup:
                if on_gpu:
                    torch.cuda.synchronize()
                marks["t0"] = time.perf_counter()
                marks["real0"], marks["proc0"] = collate.real_tokens, collate.processed_tokens

        def on_train_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if on_gpu:
                torch.cuda.synchronize()
            marks["t1"] = time.perf_counter()
            marks["real1"], marks["proc1"] = collate.real_tokens, collate.processed_tokens

    with tempfile.TemporaryDirectory() as scratch:
        targs = common.training_arguments(
            scratch,
            args.batch_size,
            max_steps=args.warmup + args.steps,
            learning_rate=1e-4,
            remove_unused_columns=False,
            torch_compile=bool(args.compile and path == "product"),
            dataloader_num_workers=0,
        )
        kwargs: dict[str, Any] = {"batch_sampler": sampler} if path == "product" else {}
        trainer = trainer_cls(
            model=model,
            args=targs,
            train_dataset=features,
            data_collator=collate,
            callbacks=[Clock()],
            **kwargs,
        )
        trainer.train()
    seconds = marks["t1"] - marks["t0"]
    real = marks["real1"] - marks["real0"]
    processed = marks["proc1"] - marks["proc0"]
    mean_seq = sum(len(f["input_ids"]) for f in features) / len(features)
    flops_token = model_flops_per_token(model, mean_seq)
    peak, device = peak_flops(args.peak_tflops)
    result = {
        "model": name,
        "path": path + (" (packed, flash-attention)" if flash else ""),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "device": device,
        "precision": "bf16" if bf16 else "fp32",
        "timed_steps": args.steps,
        "seconds": round(seconds, 3),
        "real_tokens_per_second": round(real / seconds, 1),
        "padding_efficiency": round(real / processed, 4) if processed else None,
        "mfu": round(real * flops_token / seconds / peak, 4),
    }
    if on_gpu:
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    del trainer, model
    return result


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--models", default="smollm-135m,qwen2.5-0.5b")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--packing", choices=["bucket", "pack"], default="bucket")
    parser.add_argument("--compile", action="store_true", help="torch.compile the product run")
    parser.add_argument("--peak-tflops", type=float, help="peak bf16 TFLOP/s of the device")
    parser.add_argument("--smoke", action="store_true", help="tiny model, CPU, a few steps")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.smoke:
        args.models, args.max_length, args.examples = "smoke", 128, 256
        args.steps, args.warmup, args.batch_size = 4, 1, 8
    import torch

    common.quiet_transformers()
    results = []
    for name in args.models.split(","):
        features = synthetic_features(
            args.examples, MODELS[name]["vocab_size"], args.max_length, seed=7
        )
        for path in ("plain", "product"):
            results.append(timed_run(name, features, args, path))
            print(json.dumps(results[-1]), flush=True)
    summary = {
        **common.library_versions(),
        "cuda": torch.version.cuda,
        "config": vars(args),
        "results": results,
    }
    common.print_summary(summary, TABLE, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
