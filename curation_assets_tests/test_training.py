"""Fine-tuning with a tiny local BERT: learning, artifacts, evaluation, CLI and Pipes modes."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curation_assets.curation.training import pipes_train
from curation_assets.curation.training.classifier import (
    DEFAULT_HUB_MODEL,
    TrainParams,
    data_version,
    evaluate_classifier,
    resolve_base_model,
    train_classifier,
)
from curation_assets_tests.fixtures import INTENT_FILLER, intent_examples
from curation_assets_tests.tiny_models import build_tiny_classifier_base

pytestmark = pytest.mark.integration  # real model training: ./scripts/test --fast skips it

# 240 steps of a 2-layer, 32-wide BERT: about 2 s on 2 CPU cores.
TINY_PARAMS = TrainParams(epochs=30, learning_rate=3e-3, batch_size=8, max_length=32, seed=13)
REPO = Path(__file__).resolve().parents[1]


ROWS = intent_examples(90, 0, filler=(*INTENT_FILLER, "is"))
TRAIN, VALIDATION = ROWS[:60], ROWS[60:]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_classifier_base(
        tmp_path_factory.mktemp("tiny-base"), [r["prompt"] for r in ROWS]
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> dict:
    out = tmp_path_factory.mktemp("model")
    logs: list[dict] = []
    metrics = train_classifier(TRAIN, VALIDATION, str(tiny_base), out, TINY_PARAMS, logs.append)
    return {"metrics": metrics, "dir": out, "logs": logs}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("splits")
    paths = {"train": folder / "train.parquet", "validation": folder / "validation.parquet"}
    pq.write_table(pa.Table.from_pylist(TRAIN), paths["train"])
    pq.write_table(pa.Table.from_pylist(VALIDATION), paths["validation"])
    return paths


def test_tiny_model_learns_separable_labels(trained: dict) -> None:
    m = trained["metrics"]
    assert m["validation_accuracy"] >= 0.8  # chance is 1/3; one merged pair of labels is 2/3
    assert m["validation_macro_f1"] >= 0.8
    losses = [loss for _, loss in m["loss_curve"]]
    assert losses[0] == pytest.approx(math.log(3), abs=0.1)  # untrained head: uniform
    assert losses[-1] < 0.3 * losses[0]
    assert [step for step, _ in m["loss_curve"]] == sorted(step for step, _ in m["loss_curve"])
    assert m["steps"] == 30 * math.ceil(60 / 8)
    assert m["train_examples"] == 60 and m["validation_examples"] == 30
    assert m["device"] == "cpu" and m["precision"] == "fp32"
    assert m["tokens_per_second"] > 0 and m["examples_per_second"] > 0
    # Real tokens: [CLS] + 6 words + [SEP] per text (the keywords are whole tokens), no padding.
    assert m["train_tokens"] == 30 * 60 * 8
    # The callback saw the Trainer's logs, with the step attached.
    assert trained["logs"] and all("step" in log for log in trained["logs"])
    assert any("loss" in log for log in trained["logs"])


def test_artifacts_manifest_and_model_card(trained: dict, tiny_base: Path) -> None:
    out: Path = trained["dir"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MODEL_CARD.md"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["train_examples"] == 60 and manifest["validation_examples"] == 30
    assert manifest["labels"] == ["login", "refund", "shipping"]
    assert manifest["label_counts"] == {"login": 20, "refund": 20, "shipping": 20}
    assert manifest["data_version"] == data_version(TRAIN) == trained["metrics"]["data_version"]
    assert manifest["base_model"] == str(tiny_base)
    assert manifest["params"]["epochs"] == 30 and manifest["seed"] == 13
    assert manifest["metrics"]["train_loss"] == trained["metrics"]["train_loss"]
    assert {"torch", "transformers"} <= set(manifest["versions"])
    card = (out / "MODEL_CARD.md").read_text()
    assert manifest["data_version"] in card
    assert "Train examples: 60" in card and "Validation examples: 30" in card
    assert "`refund`" in card and "Intended use" in card
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "login", "1": "refund", "2": "shipping"}


def test_data_version_tracks_content_not_order() -> None:
    base = data_version(TRAIN)
    assert data_version(list(reversed(TRAIN))) == base
    relabelled = [dict(r) for r in TRAIN]
    relabelled[0]["response"] = "shipping" if TRAIN[0]["response"] != "shipping" else "login"
    edited = [dict(r) for r in TRAIN]
    edited[5]["prompt"] += " again"
    assert len({base, data_version(relabelled), data_version(edited), data_version(TRAIN[1:])}) == 4


def test_evaluate_matches_predictions_and_flags_unknown_labels(trained: dict) -> None:
    rows = [*VALIDATION, {"example_id": "new", "prompt": "refund money", "response": "unseen"}]
    report = evaluate_classifier(trained["dir"], rows)
    preds = report["predictions"]
    assert report["n"] == len(preds) == 31
    assert [p["example_id"] for p in preds] == [r["example_id"] for r in rows]
    assert report["accuracy"] == pytest.approx(sum(p["correct"] for p in preds) / 31)
    assert all(p["correct"] == (p["predicted"] == p["expected"]) for p in preds)
    assert preds[-1]["correct"] is False and report["unknown_label_rows"] == 1
    assert report["per_label"]["unseen"] == {"n": 1, "correct": 0, "accuracy": 0.0, "known": False}
    assert sum(v["n"] for v in report["per_label"].values()) == 31
    wrong = {p["example_id"] for p in preds if not p["correct"]}
    assert {m["example_id"] for m in report["mistakes"]} == wrong
    # Same model, same rows as in training: the validation accuracy agrees.
    known = evaluate_classifier(trained["dir"], VALIDATION)
    assert known["accuracy"] == pytest.approx(trained["metrics"]["validation_accuracy"], abs=1e-4)
    assert 0.0 <= report["macro_f1"] <= 1.0


def test_require_gpu_fails_clearly_without_cuda(tmp_path: Path, tiny_base: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    params = TrainParams(epochs=1, require_gpu=True)
    with pytest.raises(RuntimeError, match="require_gpu.*no CUDA GPU"):
        train_classifier(TRAIN, VALIDATION, str(tiny_base), tmp_path, params)
    assert not (tmp_path / "training_manifest.json").exists()


def test_bad_inputs_are_rejected(tmp_path: Path, tiny_base: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 labels"):
        train_classifier(TRAIN[::3], [], str(tiny_base), tmp_path)
    with pytest.raises(ValueError, match="unknown training parameters"):
        TrainParams.from_dict({"epochs": 1, "lr": 0.1})
    with pytest.raises(ValueError, match="epochs must be > 0"):
        TrainParams(epochs=0)


def test_resolve_base_model() -> None:
    assert resolve_base_model("some-org/some-model") == "some-org/some-model"
    auto = resolve_base_model("auto")
    assert auto == DEFAULT_HUB_MODEL or (Path(auto) / "config.json").is_file()


def test_cli_missing_file_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = pipes_train.main(["--train", str(tmp_path / "nope.parquet"), "--output-dir", "x"])
    assert code == pipes_train.EXIT_PERMANENT  # retrying cannot create the file
    assert "no such Parquet file" in capsys.readouterr().err


def test_cli_trains_end_to_end(tmp_path: Path, tiny_base: Path, splits: dict) -> None:
    out = tmp_path / "cli-model"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "curation_assets.curation.training.pipes_train",
            *("--train", str(splits["train"]), "--validation", str(splits["validation"])),
            *("--output-dir", str(out), "--base-model", str(tiny_base)),
            *("--epochs", "2", "--batch-size", "16", "--learning-rate", "3e-3"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["steps"] == 2 * math.ceil(60 / 16)
    assert metrics["train_examples"] == 60 and metrics["validation_examples"] == 30
    assert "loss" in proc.stderr  # progress goes to stderr
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["data_version"] == metrics["data_version"] == data_version(TRAIN)


@pytest.mark.slow  # a second subprocess importing torch: about 15 s more
def test_pipes_mode_under_dagster(tmp_path: Path, tiny_base: Path, splits: dict) -> None:
    """The script's metadata and check are accepted by a real Dagster Pipes session."""
    import dagster as dg

    out = tmp_path / "pipes-model"

    @dg.asset(check_specs=[dg.AssetCheckSpec(pipes_train.CHECK_NAME, asset="tiny_model")])
    def tiny_model(context: dg.AssetExecutionContext, client: dg.PipesSubprocessClient):
        yield from client.run(
            command=[sys.executable, "-m", "curation_assets.curation.training.pipes_train"],
            context=context,
            cwd=str(REPO),
            extras={
                "train_path": str(splits["train"]),
                "validation_path": str(splits["validation"]),
                "output_dir": str(out),
                "base_model": str(tiny_base),
                "params": {"epochs": 4, "learning_rate": 3e-3, "batch_size": 8, "seed": 13},
                "report_convergence_check": True,
            },
        ).get_results()

    result = dg.materialize([tiny_model], resources={"client": dg.PipesSubprocessClient()})
    assert result.success
    meta = result.asset_materializations_for_node("tiny_model")[0].metadata
    assert meta["train_examples"].value == 60 and meta["validation_examples"].value == 30
    assert 0.0 <= meta["validation_accuracy"].value <= 1.0
    assert isinstance(meta["loss_curve"], dg.JsonMetadataValue)
    assert len(meta["loss_curve"].value) >= 2
    assert meta["data_version"].value == data_version(TRAIN)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == pipes_train.CHECK_NAME
    assert check.passed == meta["converged"].value
    assert (out / "training_manifest.json").is_file()


def test_cli_require_gpu_without_cuda_is_a_permanent_failure(
    splits: dict, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    argv = ["--train", str(splits["train"]), "--output-dir", str(tmp_path / "m")]
    code = pipes_train.main([*argv, "--base-model", str(tiny_base), "--require-gpu"])
    assert code == pipes_train.EXIT_PERMANENT  # the asset does not retry it
    assert "require_gpu is set but torch sees no CUDA GPU" in capsys.readouterr().err


def test_classifier_lora_keeps_the_adapter_and_saves_merged_weights(
    tmp_path: Path, tiny_base: Path
) -> None:
    params = TrainParams(
        epochs=4, learning_rate=1e-2, batch_size=8, max_length=32, lora=True, lora_r=4
    )
    metrics = train_classifier(TRAIN, VALIDATION, str(tiny_base), tmp_path, params)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "model.safetensors").is_file()  # merged: loads without peft
    report = evaluate_classifier(tmp_path, VALIDATION)
    assert report["accuracy"] == pytest.approx(metrics["validation_accuracy"], abs=1e-4)
    assert "LoRA adapters" in (tmp_path / "MODEL_CARD.md").read_text()


def test_overlap_between_train_and_evaluation_rows_is_detected(con, tmp_path: Path) -> None:
    """The registry finds evaluated rows that were trained on, and the GX suites fail on it."""
    from curation_assets.config import Settings
    from curation_assets.curation.expectations import run_validations
    from curation_assets.curation.training import registry
    from curation_assets.defs.evaluation.model_evaluation import model_evaluation_expectations
    from curation_assets.defs.training.assets import fine_tuned_model_expectations

    rows = [
        ("a", "Where is my parcel?", "shipping", "train"),
        ("b", "I forgot my password", "login", "train"),
        ("c", "  where is MY parcel? ", "shipping", "validation"),  # same prompt, normalized
        ("d", "refund my money", "refund", "validation"),
    ]
    con.execute("CREATE TABLE verified (example_id VARCHAR, prompt VARCHAR, response VARCHAR, "
                "split VARCHAR)")  # fmt: skip
    con.executemany("INSERT INTO verified VALUES (?, ?, ?, ?)", rows)
    model_dir = tmp_path / "m1"
    registry.export_splits(con, model_dir / "data")
    manifest = {"base_model": "tiny", "data_version": "v1", "train_examples": 2,
                "validation_examples": 2, "metrics": {"train_loss": 0.5}, "seed": 13}  # fmt: skip
    registry.register_model(con, "m1", model_dir, manifest, "run-1")
    settings = Settings(data_dir=tmp_path, min_validation_examples=1)
    result = run_validations(con, fine_tuned_model_expectations(settings))
    assert not result.success
    assert {f["validation"] for f in result.failures} == {"train_validation_overlap"}

    validation = [{"example_id": r[0], "prompt": r[1], "response": r[2]} for r in rows[2:]]
    assert registry.train_overlap(con, "m1", validation) == ["c"]
    report = {"n": 2, "accuracy": 1.0, "macro_f1": 1.0}
    registry.record_evaluation(con, "m1", "validation", report, train_overlap=1)
    result = run_validations(con, model_evaluation_expectations(settings))
    assert not result.success
    failed = [f for f in result.failures if f["severity"] == "critical"]
    assert [f["validation"] for f in failed] == ["latest_evaluation"]


@pytest.mark.integration
def test_pipes_reports_whether_a_failure_is_worth_a_retry(tmp_path: Path) -> None:
    """The asset reads a failure's kind from Pipes' own report (the exception the script's
    Pipes session closed with), not from the process's exit status or message text."""
    import dagster as dg

    from curation_assets.curation.training.launch import TrainingLaunch, training_launch
    from curation_assets.defs.resources import TrainingClientResource
    from curation_assets.defs.training.assets import engine_event_cursor, pipes_exception

    missing = training_launch("classification", tmp_path / "nope.parquet", None, tmp_path, "x", {})
    crash = TrainingLaunch([sys.executable, "-c", "raise SystemExit(1)"], {"output_dir": "x"})
    # a job outside this package is refused before anything is imported
    foreign = TrainingLaunch(missing.command, {"job": "os:system", "output_dir": str(tmp_path)})

    def reported_failures(*launches: TrainingLaunch) -> list:
        """Each launch's Pipes report, the launches run one after another in one step (as
        the attempts of a retried step are)."""
        seen = []

        @dg.asset
        def probe(context: dg.AssetExecutionContext, training_client: TrainingClientResource):
            for launch in launches:
                cursor = engine_event_cursor(context)
                with pytest.raises(Exception, match="failed with code"):  # dagster's own error
                    training_client.run(context, launch)
                seen.append(pipes_exception(context, after=cursor))
            return dg.MaterializeResult()

        resources = {"training_client": TrainingClientResource()}
        assert dg.materialize([probe], resources=resources).success
        return seen

    reported, after_it, refused = reported_failures(missing, crash, foreign)
    assert reported.cls_name == pipes_train.PermanentTrainingError.__name__  # no retry
    assert "FileNotFoundError" in reported.message and "nope.parquet" in reported.message
    assert refused.cls_name == pipes_train.PermanentTrainingError.__name__
    assert "'os:system'" in refused.message
    # a process that dies without a report (killed, a lost pod) is worth a retry, even
    # when an earlier attempt of the same step reported a permanent failure
    assert after_it is None
