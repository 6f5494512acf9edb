"""Causal-LM SFT with a tiny local Qwen2-style model: masking, batching, LoRA, Pipes, GPU gate."""

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from curation_assets.config import Settings
from curation_assets.curation.training import pipes_train
from curation_assets.curation.training.launch import k8s_run_kwargs, training_launch
from curation_assets.curation.training.params import TrainParams
from curation_assets.curation.training.sft import (
    IGNORE_INDEX,
    BucketBatchSampler,
    TokenCountingCollator,
    encode_pair,
    encode_rows,
    evaluate_sft,
    load_sft_model,
    make_trainer_class,
    train_sft,
)
from curation_assets_tests.tiny_models import build_tiny_causal_lm

pytestmark = pytest.mark.integration  # real model training: ./scripts/test --fast skips it

COLORS = ["red", "blue", "green", "yellow"]
REPO = Path(__file__).resolve().parents[1]
TINY = TrainParams(epochs=6, learning_rate=5e-3, batch_size=8, max_length=64, seed=13)


def make_pairs(n: int, seed: int = 0) -> list[dict]:
    """Prompts of varied length whose answer is the colour word they contain."""
    rng = random.Random(seed)
    filler = ["a", "small", "box", "on", "the", "shelf", "near", "door", "old", "new"]
    rows = []
    for i in range(n):
        color = COLORS[i % 4]
        words = rng.sample(filler, rng.randint(2, 9)) + [color]
        rng.shuffle(words)
        rows.append(
            {"example_id": f"p{i:03d}", "prompt": "colour of " + " ".join(words), "response": color}
        )
    return rows


PAIRS = make_pairs(96)
TRAIN, VALIDATION = PAIRS[:72], PAIRS[72:]


@pytest.fixture(scope="module")
def lm_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [r["prompt"] + " " + r["response"] for r in PAIRS]
    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm"), texts)


@pytest.fixture(scope="module")
def plain_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [r["prompt"] + " " + r["response"] for r in PAIRS]
    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm-plain"), texts, chat=False)


def test_loss_only_on_the_response_with_the_chat_template(lm_base: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(lm_base))
    enc = encode_pair(tok, "colour of the red box", "red", max_length=64)
    assert enc is not None and not enc["truncated"]
    n_prompt = sum(1 for x in enc["labels"] if x == IGNORE_INDEX)
    text = tok.decode(enc["input_ids"][:n_prompt])
    assert text.startswith("<|im_start|>user\ncolour of the red box<|im_end|>")
    assert text.endswith("<|im_start|>assistant\n")
    answer = tok.decode([x for x in enc["labels"] if x != IGNORE_INDEX])
    assert answer.startswith("red<|im_end|>")  # the end-of-turn token is learned too
    assert enc["input_ids"][n_prompt:] == enc["labels"][n_prompt:]
    # truncation keeps the end of the prompt (the turn marker) and the response's start
    long = encode_pair(tok, "colour of " + "shelf " * 200, "red", max_length=32)
    assert long is not None and long["truncated"] and len(long["input_ids"]) == 32
    assert tok.decode([x for x in long["labels"] if x != IGNORE_INDEX]).startswith("red")


def test_without_chat_template_a_plain_format_and_eos(plain_base: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(plain_base))
    assert not tok.chat_template
    enc = encode_pair(tok, "colour of the blue box", "blue", max_length=64)
    n_prompt = sum(1 for x in enc["labels"] if x == IGNORE_INDEX)
    assert tok.decode(enc["input_ids"][:n_prompt]).endswith("### Response:\n")
    assert enc["labels"][-1] == tok.eos_token_id


def test_rows_become_a_dataset_of_pairs_with_the_prompt_masked(lm_base: Path) -> None:
    from datasets import Dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(lm_base))
    rows = [*TRAIN[:3], {"example_id": "long", "prompt": "colour " * 80, "response": "red"}]
    dataset, truncated, dropped = encode_rows(tok, rows, 64, "train")
    assert isinstance(dataset, Dataset) and (truncated, dropped) == (1, 0)
    assert dataset.column_names == ["example_id", "input_ids", "labels"]
    assert dataset["example_id"] == ["p000", "p001", "p002", "long"]
    for row, source in zip(dataset, rows, strict=True):
        assert row == {"example_id": source["example_id"], **{
            k: v for k, v in encode_pair(tok, source["prompt"], source["response"], 64).items()
            if k != "truncated"}}  # fmt: skip
        answer = [t for t in row["labels"] if t != IGNORE_INDEX]
        assert tok.decode(answer) == source["response"] + "<|im_end|>\n"
        assert row["input_ids"][-len(answer) :] == answer  # only the response is a target
    assert len(dataset[3]["input_ids"]) == 64


def long_tailed_lengths(n: int, seed: int) -> list[int]:
    """Tokens per example like the instruction pairs of bench_training_efficiency.py.

    Log-normal (median about 55, p90 about 130, a tail to 300-512), cut at max_length 512.
    """
    rng = random.Random(seed)
    return [min(512, int(rng.lognormvariate(3.93, 0.72)) + 5) for _ in range(n)]


def padding_efficiency(lengths: list[int], batches: list[list[int]]) -> float:
    return sum(lengths[i] for b in batches for i in b) / sum(
        max(lengths[i] for i in b) * len(b) for b in batches
    )


@pytest.mark.parametrize(("n", "data_seed"), [(512, 0), (512, 1), (512, 2), (5000, 3)])
def test_bucketing_covers_every_example_once_per_epoch_with_little_padding(
    n: int, data_seed: int
) -> None:
    lengths = long_tailed_lengths(n, data_seed)  # 5000: three sorting windows of 2048
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=3)
    assert len(sampler) == -(-n // 16)  # as many steps as a plain sampler: the LR schedule
    epochs = [sampler.batches(e) for e in range(3)]
    for batches in epochs:
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(n))  # each exactly once
        assert padding_efficiency(lengths, batches) >= 0.95
        # token budgets: long examples in small batches, short ones in large batches, and
        # every batch about the same number of padded tokens
        longest = next(b for b in batches if lengths.index(max(lengths)) in b)
        shortest = next(b for b in batches if lengths.index(min(lengths)) in b)
        assert len(longest) < 16 < len(shortest)
        padded = [max(lengths[i] for i in b) * len(b) for b in batches]
        assert max(padded) <= 1.25 * sum(padded) / len(padded)
    assert epochs[0] != epochs[1] != epochs[2]  # a new order every epoch
    plain = [list(range(i, min(i + 16, n))) for i in range(0, n, 16)]
    assert padding_efficiency(lengths, plain) < 0.5


def test_bucketing_is_deterministic_for_a_seed_and_advances_epochs() -> None:
    lengths = long_tailed_lengths(512, 0)
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=3)
    assert BucketBatchSampler(lengths, 16, seed=3).batches(1) == sampler.batches(1)
    assert BucketBatchSampler(lengths, 16, seed=4).batches(1) != sampler.batches(1)
    assert list(sampler) == sampler.batches(0) and list(sampler) == sampler.batches(1)
    sampler.set_epoch(0)  # what the Trainer calls before each epoch
    assert list(sampler) == sampler.batches(0)


def test_bucketing_edge_cases() -> None:
    assert sorted(map(len, BucketBatchSampler([5, 80, 7, 300], 1, 0).batches(0))) == [1] * 4
    assert BucketBatchSampler([5, 80, 7], 16, 0).batches(0) == [[1, 2, 0]]  # longest first
    even = BucketBatchSampler([40] * 100, 16, 0).batches(0)
    assert len(even) == 7 and max(map(len, even)) <= 16  # no padding, none over batch_size
    with pytest.raises(ValueError):
        BucketBatchSampler([], 16, 0)


def test_flattening_collator_restarts_positions_and_masks_boundaries() -> None:
    collate = TokenCountingCollator(pad_token_id=0, flatten=True)
    batch = collate(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
            {"input_ids": [8, 9], "labels": [8, 9]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9]]  # no cross-example target
    assert collate.padding_efficiency == 1.0
    padded = TokenCountingCollator(pad_token_id=0)
    out = padded(
        [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}]
    )
    assert out["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert padded.padding_efficiency == pytest.approx(4 / 6)


def test_full_sft_learns_and_records_everything(tmp_path: Path, lm_base: Path) -> None:
    logs: list[dict] = []
    metrics = train_sft(TRAIN, VALIDATION, str(lm_base), tmp_path, TINY, logs.append)
    losses = [loss for _, loss in metrics["loss_curve"]]
    assert losses[-1] < 0.6 * losses[0]
    assert metrics["packing"] == "bucket" and metrics["precision"] == "fp32"
    assert metrics["padding_efficiency"] >= 0.9
    assert metrics["tokens_per_second"] > 0 and metrics["train_tokens"] > metrics["response_tokens"]
    assert metrics["steps"] == 6 * 9
    # on the CPU the loss is the model's own, not TRL's fused LM head (2x slower there),
    # which would log entropy and token accuracy with each loss
    assert logs and not any("entropy" in entry for entry in logs)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(lm_base))
    lengths = [len(encode_pair(tok, r["prompt"], r["response"], 64)["input_ids"]) for r in TRAIN]
    assert metrics["train_tokens"] == 6 * sum(lengths)  # every example once an epoch
    # what SFTTrainer trained on: the response tokens (and end of turn) only, each epoch
    answers = [encode_pair(tok, r["prompt"], r["response"], 64)["labels"] for r in TRAIN]
    assert metrics["response_tokens"] == 6 * sum(x != IGNORE_INDEX for a in answers for x in a)
    assert 0.0 <= metrics["validation_exact_match"] <= 1.0
    assert metrics["validation_loss"] < losses[0]
    manifest = json.loads((tmp_path / "training_manifest.json").read_text())
    assert manifest["task_type"] == "sft" and manifest["chat_template"] is True
    assert manifest["seed"] == 13 and manifest["params"]["max_length"] == 64
    assert manifest["data_version"] == metrics["data_version"]
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "full fine-tune" in card and manifest["data_version"] in card
    report = evaluate_sft(tmp_path, VALIDATION)
    assert report["loss"] == pytest.approx(metrics["validation_loss"], abs=1e-3)
    assert report["n"] == len(VALIDATION) == len(report["predictions"])
    assert report["exact_match"] == pytest.approx(metrics["validation_exact_match"], abs=1e-4)


def test_packed_rows_keep_examples_apart_in_training(tmp_path: Path, lm_base: Path) -> None:
    """One step on all of TRAIN: flattened rows (sdpa, position_ids) give the padded loss.

    The model is loaded with a KV cache on (use_cache in its config); transformers then
    skips the per-example mask it builds from position_ids, and flattened examples would
    attend to each other: train_sft turns the cache off while training.
    """
    first_loss = {}
    for mode in ("bucket", "pack"):
        params = replace(TINY, packing=mode, batch_size=len(TRAIN), max_steps=1)
        metrics = train_sft(TRAIN, [], str(lm_base), tmp_path / mode, params)
        assert metrics["packing"] == mode and metrics["steps"] == 1
        if mode == "pack":  # TRL's padding-free rows: no padding at all
            assert metrics["padding_efficiency"] == 1.0
            assert metrics["processed_tokens"] == metrics["train_tokens"]
        first_loss[mode] = metrics["loss_curve"][0][1]
        config = json.loads((tmp_path / mode / "config.json").read_text())
        assert config["use_cache"] is True  # saved as the base model had it
    assert first_loss["pack"] == pytest.approx(first_loss["bucket"], abs=1e-4)


def test_lora_adapter_saves_small_and_reloads_to_the_same_outputs(
    tmp_path: Path, lm_base: Path
) -> None:
    import torch

    params = TrainParams(
        epochs=2, learning_rate=1e-2, batch_size=8, max_length=64, lora=True, lora_r=4
    )
    metrics = train_sft(TRAIN, [], str(lm_base), tmp_path, params)
    assert metrics["trainable_parameters"] < metrics["parameters"]
    assert (tmp_path / "adapter_config.json").is_file()
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "model.safetensors").exists()  # only the adapter is saved
    adapter = json.loads((tmp_path / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["task_type"] == "CAUSAL_LM"
    assert adapter["base_model_name_or_path"] == str(lm_base)
    assert "LoRA adapters" in (tmp_path / "MODEL_CARD.md").read_text()
    first, tok = load_sft_model(tmp_path)
    again, _ = load_sft_model(tmp_path)
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(lm_base))
    ids = torch.tensor([tok("colour of the red box")["input_ids"]])
    with torch.inference_mode():
        a, b = first.eval()(input_ids=ids).logits, again.eval()(input_ids=ids).logits
        c = base.eval()(input_ids=ids).logits
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)  # the adapter changed the model


def test_the_trainer_is_trl_and_takes_tokenized_features_without_a_tokenizer(
    tmp_path: Path, lm_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As benchmarks/bench_gpu_mfu.py drives it: a list of features, a collator, a sampler;
    and it sends TRL's usage ping nowhere."""
    import trl.trainer.base_trainer
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments
    from trl import SFTTrainer

    pings: list[dict] = []
    monkeypatch.delenv("CI", raising=False)  # TRL skips the ping on CI
    monkeypatch.setattr(trl.trainer.base_trainer, "send_telemetry", lambda **kw: pings.append(kw))

    trainer_class = make_trainer_class()
    assert issubclass(trainer_class, SFTTrainer)
    tok = AutoTokenizer.from_pretrained(str(lm_base))
    features = [encode_pair(tok, r["prompt"], r["response"], 64) for r in TRAIN[:16]]
    features = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features]
    collate = TokenCountingCollator(int(tok.pad_token_id))
    sampler = BucketBatchSampler([len(f["input_ids"]) for f in features], 8, seed=0)
    args = TrainingArguments(str(tmp_path), max_steps=2, report_to="none", use_cpu=True)
    trainer = trainer_class(
        model=AutoModelForCausalLM.from_pretrained(str(lm_base)),
        args=args,
        train_dataset=features,
        data_collator=collate,
        batch_sampler=sampler,
    )
    trainer.train()
    assert trainer.state.global_step == 2 and collate.examples == 16 and pings == []
    assert collate.real_tokens == sum(len(f["input_ids"]) for f in features)


def test_require_gpu_without_cuda_fails_clearly(tmp_path: Path, lm_base: Path) -> None:
    import torch

    from curation_assets.curation.training.params import GPUUnavailableError

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(GPUUnavailableError, match="require_gpu is set but torch sees no CUDA"):
        train_sft(TRAIN, [], str(lm_base), tmp_path, TrainParams(require_gpu=True))
    assert not (tmp_path / "training_manifest.json").exists()


def test_settings_take_their_training_defaults_from_train_params() -> None:
    s, p = Settings(), TrainParams()
    assert (s.epochs, s.learning_rate, s.batch_size) == (p.epochs, p.learning_rate, p.batch_size)
    assert (s.epochs, s.learning_rate, s.batch_size) == (5.0, 2e-4, 16)
    assert (s.max_length, s.seed, s.lora, s.packing) == (p.max_length, p.seed, p.lora, p.packing)
    assert p.max_length_for("classification") == 64 and p.max_length_for("instruction") == 512


def test_remote_launch_builds_pipes_k8s_arguments(tmp_path: Path) -> None:
    """What PipesK8sClient.run receives, built without a cluster (dagster-k8s not installed)."""
    import inspect

    launch = training_launch(
        "instruction",
        tmp_path / "data/train.parquet",
        tmp_path / "data/validation.parquet",
        tmp_path,
        "Qwen/Qwen2.5-0.5B-Instruct",
        {"lora": True, "require_gpu": True},
        report_convergence_check=True,
    )
    assert launch.command[1:] == ["-m", "curation_assets.curation.training.pipes_train"]
    assert launch.extras["task_type"] == "sft" and launch.extras["params"]["lora"] is True
    kwargs = k8s_run_kwargs(
        launch,
        image="registry.example.com/curation-train:1.0",
        volume_claim="curation-data",
        mount_path=tmp_path,
        namespace="ml",
        extra_env={"HF_TOKEN": "from-a-secret"},
        gpus=1,
    )
    # the parameters of dagster_k8s.PipesK8sClient.run (dagster-k8s 0.29.27)
    known = {"context", "extras", "image", "command", "namespace", "env", "base_pod_meta",
             "base_pod_spec", "ignore_containers", "enable_multi_container_logs",
             "pod_wait_timeout", "delete_pod_on_completion"}  # fmt: skip
    try:
        from dagster_k8s import PipesK8sClient

        known = set(inspect.signature(PipesK8sClient.run).parameters) - {"self"}
    except ImportError:
        pass
    assert set(kwargs) <= known
    assert kwargs["command"] == ["python", "-m", "curation_assets.curation.training.pipes_train"]
    assert kwargs["extras"] == launch.extras and kwargs["env"]["HF_TOKEN"] == "from-a-secret"
    container = kwargs["base_pod_spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    mounts = {m["mount_path"] for m in container["volume_mounts"]}
    assert str(tmp_path) in mounts and "/dev/shm" in mounts
    claim = kwargs["base_pod_spec"]["volumes"][0]["persistent_volume_claim"]["claim_name"]
    assert claim == "curation-data"
    with pytest.raises(ValueError, match="unknown training parameters"):
        training_launch("sft", "t", None, "o", "m", {"lr": 1})


def test_sft_through_dagster_pipes(tmp_path: Path, lm_base: Path) -> None:
    """The real Pipes path: the script trains an SFT model and reports metrics and its check."""
    import dagster as dg
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, rows in (("train", TRAIN), ("validation", VALIDATION)):
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"{name}.parquet")
    out = tmp_path / "model"
    launch = training_launch(
        "instruction",
        tmp_path / "train.parquet",
        tmp_path / "validation.parquet",
        out,
        str(lm_base),
        {"epochs": 3, "learning_rate": 5e-3, "batch_size": 8, "max_length": 64},
        report_convergence_check=True,
    )

    @dg.asset(check_specs=[dg.AssetCheckSpec(pipes_train.CHECK_NAME, asset="tiny_sft")])
    def tiny_sft(context: dg.AssetExecutionContext, client: dg.PipesSubprocessClient):
        yield from client.run(
            command=launch.command, context=context, cwd=str(REPO), extras=launch.extras,
            env=launch.env,
        ).get_results()  # fmt: skip

    result = dg.materialize([tiny_sft], resources={"client": dg.PipesSubprocessClient()})
    assert result.success
    meta = result.asset_materializations_for_node("tiny_sft")[0].metadata
    assert meta["task_type"].value == "sft"
    assert meta["train_examples"].value == 72 and meta["validation_examples"].value == 24
    assert meta["padding_efficiency"].value >= 0.9 and meta["tokens_per_second"].value > 0
    assert 0.0 <= meta["validation_exact_match"].value <= 1.0
    assert len(meta["loss_curve"].value) >= 2
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == pipes_train.CHECK_NAME
    assert (out / "training_manifest.json").is_file()


def test_permanent_errors_exit_2(tmp_path: Path, lm_base: Path) -> None:
    code = pipes_train.main(
        ["--task", "sft", "--train", str(tmp_path / "none.parquet"), "--output-dir", "x"]
    )
    assert code == pipes_train.EXIT_PERMANENT
