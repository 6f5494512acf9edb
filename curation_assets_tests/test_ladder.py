"""The quality ladder on a tiny hand-built warehouse: rungs, validation exclusion, table, asset."""

import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from curation_assets.curation.evaluation.ladder_rungs import RUNGS, build_rungs, validation_rows
from curation_assets.curation.evaluation.ladder_training import (
    budget_steps,
    ladder_markdown,
    ladder_plot_png,
    run_ladder,
)
from curation_assets.curation.training.params import TrainParams
from curation_assets_tests.fixtures import intent_examples
from curation_assets_tests.tiny_models import build_tiny_classifier_base

pytestmark = pytest.mark.integration  # real model training: ./scripts/test --fast skips it


def _rows(n: int, seed: int) -> list[dict]:
    return intent_examples(n, seed, filler_words=(2, 6), id_format="s{seed}-{i:03d}")


def build_warehouse(path: Path, with_suspects: bool) -> pd.DataFrame:
    """raw -> filtered -> review_queue -> reviewed -> verified, and the decisions."""
    clean = _rows(120, 1)
    noisy = [  # wrong labels, which review removes
        {**r, "example_id": r["example_id"] + "x", "response": "login"}
        for r in _rows(40, 2)
        if r["response"] != "login"
    ]
    verified = clean[:60]
    validation = verified[:15]
    raw = clean + noisy + [dict(r, example_id=r["example_id"] + "d") for r in validation[:5]]
    filtered = clean + noisy
    queue = pd.DataFrame(filtered)
    queue["priority"] = range(1, len(queue) + 1)
    reviewed_ids = {r["example_id"] for r in clean[:90]}
    rejected_ids = {r["example_id"] for r in noisy[:10]}
    queue["review_status"] = [
        "verified"
        if e in {v["example_id"] for v in verified}
        else "reviewed"
        if e in reviewed_ids
        else "rejected"
        if e in rejected_ids
        else "pending"
        for e in queue["example_id"]
    ]
    queue["n_decisions"] = (queue["review_status"] != "pending").astype(int)
    if with_suspects:  # the noisy rows come first in the suspect queue
        queue["queue"] = ["suspect" if e.endswith("x") else "coverage" for e in queue["example_id"]]
        queue["priority"] = (~queue["queue"].eq("suspect")).astype(int) * 1000 + queue["priority"]
    split = ["validation" if r in validation else "train" for r in verified]
    with duckdb.connect(str(path)) as con:
        for name, frame in (
            ("raw_scrapes", pd.DataFrame(raw)),
            ("filtered", pd.DataFrame(filtered)),
            ("review_queue", queue),
            ("reviewed", pd.DataFrame(clean[:90])),
            ("verified", pd.DataFrame(verified).assign(split=split)),
        ):
            con.register("_frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _frame")
            con.unregister("_frame")
    decisions = [
        {"example_id": e, "role": "reviewer", "seconds_spent": 30.0}
        for e in queue.loc[queue["n_decisions"] > 0, "example_id"]
    ] + [{"example_id": v["example_id"], "role": "expert", "seconds_spent": 60.0} for v in verified]
    return pd.DataFrame(decisions)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [r["prompt"] for r in _rows(120, 1) + _rows(40, 2)]
    return build_tiny_classifier_base(tmp_path_factory.mktemp("ladder-base"), texts)


def _as_dicts(rungs) -> list[dict]:
    return [{"name": r.name, "rows": r.rows, "note": r.note} for r in rungs]


def _scores(results) -> dict:
    return {r["name"]: (r["validation_accuracy"], r["validation_macro_f1"]) for r in results}


def test_rungs_exclude_validation_and_match_the_verified_size(tmp_path: Path) -> None:
    decisions = build_warehouse(tmp_path / "w.duckdb", with_suspects=True)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        rungs = {r.name: r for r in build_rungs(con, decisions)}
        val = set(con.sql("SELECT prompt FROM verified WHERE split = 'validation'").df()["prompt"])
    assert list(rungs) == list(RUNGS)
    for rung in rungs.values():  # no rung ever trains on a validation prompt
        assert not {r["prompt"] for r in rung.rows} & val, rung.name
    assert rungs["raw"].removed_validation_rows == 20  # 15 originals + 5 duplicates
    n = len(rungs["verified"].rows)
    assert n == 45
    assert len(rungs["random_n"].rows) == len(rungs["longest_n"].rows) == n
    longest = sorted(len(r["prompt"] + r["response"]) for r in rungs["longest_n"].rows)
    assert (
        longest[0] >= sorted(len(r["prompt"] + r["response"]) for r in rungs["filtered"].rows)[-n]
    )
    # suspects: taken in queue order, rejected ones dropped
    suspect = rungs["suspect_n"]
    assert suspect.rows and all(r["example_id"].endswith("x") for r in suspect.rows)
    assert "only" in suspect.note  # fewer suspects than N survive review
    # review cost: verified = expert + reviewer time on the 45 train examples
    assert rungs["verified"].expert_seconds == 45 * 60
    assert rungs["verified"].human_seconds == 45 * 90
    assert rungs["raw"].human_seconds == 0 and rungs["random_n"].human_seconds == 0


def test_suspect_rung_is_skipped_without_a_queue_column(tmp_path: Path) -> None:
    decisions = build_warehouse(tmp_path / "w.duckdb", with_suspects=False)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("ALTER TABLE review_queue DROP COLUMN IF EXISTS queue")
        rungs = {r.name: r for r in build_rungs(con, decisions)}
    assert rungs["suspect_n"].rows == []
    assert "no `queue` column" in rungs["suspect_n"].note


def test_ladder_trains_every_rung_with_one_budget(tmp_path: Path, tiny_base: Path) -> None:
    decisions = build_warehouse(tmp_path / "w.duckdb", with_suspects=True)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        rungs = build_rungs(con, decisions)
        validation = (
            con.sql("SELECT example_id, prompt, response FROM verified WHERE split = 'validation'")
            .df()
            .to_dict("records")
        )
    params = TrainParams(epochs=3, batch_size=8, seed=13)
    results = run_ladder(
        [{"name": r.name, "rows": r.rows, "note": r.note, "human_hours": 0.0} for r in rungs],
        validation,
        str(tiny_base),
        trainer="head",
        params=params,
    )
    assert [r["name"] for r in results] == list(RUNGS)
    largest = max(len(r.rows) for r in rungs)  # raw: the largest rung gets 3 epochs
    assert {r["steps"] for r in results} == {budget_steps(largest, 8, 3)}
    for r in results:
        if r["name"] == "suspect_n":  # every suspect here is labelled login: nothing to learn
            assert r["validation_accuracy"] is None and "fewer than 2 labels" in r["note"]
            continue
        assert 0.0 <= r["validation_accuracy"] <= 1.0
        assert r["size"] == len(next(g for g in rungs if g.name == r["name"]).rows)
    table = ladder_markdown(results)
    assert table.count("\n") == len(RUNGS) + 1 and "| verified |" in table
    assert ladder_plot_png(results)[:8] == b"\x89PNG\r\n\x1a\n"
    # the product's own trainer, with the same fixed number of steps for every rung
    fine = run_ladder(
        [{"name": r.name, "rows": r.rows} for r in rungs[:2]],
        validation,
        str(tiny_base),
        trainer="finetune",
        steps=4,
        params=params,
    )
    assert [r["steps"] for r in fine] == [4, 4]
    assert all(0.0 <= r["validation_accuracy"] <= 1.0 for r in fine)


def test_quality_ladder_asset_writes_its_table_and_passes_its_check(
    tmp_path: Path, tiny_base: Path
) -> None:
    import dagster as dg

    from curation_assets.curation.review import decisions as store
    from curation_assets.defs.evaluation.quality_ladder import quality_ladder, quality_ladder_check
    from curation_assets.defs.resources import resources_for
    from curation_assets.defs.training.assets import train_params
    from curation_assets_tests.fixtures import small_settings

    settings = small_settings(tmp_path / "data", base_model=str(tiny_base), epochs=2.0)
    settings.data_dir.mkdir(parents=True)
    build_warehouse(settings.warehouse, with_suspects=False)
    assert store.load_all(settings.decision_store).empty  # no decisions: hours are 0
    result = dg.materialize(
        [quality_ladder, quality_ladder_check], resources=resources_for(settings)
    )
    assert result.success
    meta = result.asset_materializations_for_node("quality_ladder")[0].metadata
    rungs = {r.data["dataset"]: r.data for r in meta["ladder"].value.records}
    assert "verified" in rungs and rungs["verified"]["examples"] > 0
    plot = Path(meta["plot"].value)
    assert plot.parent == settings.data_dir / "reports"
    assert plot.read_bytes().startswith(b"\x89PNG")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert "rungs_trained" in checks  # besides the GX suite's
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items()}
    # the head trainer's rungs share one Pipes session; its files are removed after it
    assert meta["pipes_sessions"].value == 1
    assert list((settings.data_dir / "ladder").iterdir()) == []
    # through Pipes, the same numbers as the ladder trained in this process
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        here = run_ladder(
            _as_dicts(build_rungs(con, store.load_all(settings.decision_store))),
            validation_rows(con),
            str(tiny_base),
            params=TrainParams.from_dict(train_params(settings)),
        )
        stored = con.sql("SELECT * FROM quality_ladder").df()
    assert _scores(here) == {
        r.dataset: tuple(
            None if pd.isna(v) else v for v in (r.validation_accuracy, r.validation_macro_f1)
        )
        for r in stored.itertuples()
    }
    assert list(stored["status"]) == [r["status"] for r in here]  # trained / skipped
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        table = con.sql("SELECT * FROM quality_ladder").df()
    assert list(table["dataset"]) == list(RUNGS)
    assert table.loc[table["dataset"] == "suspect_n", "validation_accuracy"].isna().all()
    assert table["validation_accuracy"].dropna().between(0, 1).all()


def _drive_in_dagster(plan, command_for=None) -> None:
    """``plan.drive`` in a Dagster step: every session a real Pipes run of the training
    script by the default training client; ``command_for(launch)`` may swap a launch."""
    import dagster as dg

    from curation_assets.defs.evaluation.quality_ladder import session_runner
    from curation_assets.defs.resources import TrainingClientResource

    @dg.asset
    def ladder_probe(context: dg.AssetExecutionContext, training_client: TrainingClientResource):
        run = session_runner(context, training_client)
        plan.drive(lambda launch: run(command_for(launch) if command_for else launch))
        return dg.MaterializeResult()

    resources = {"training_client": TrainingClientResource()}
    assert dg.materialize([ladder_probe], resources=resources).success


def test_a_failed_rung_is_a_row_with_the_error_pipes_reported(
    tmp_path: Path, tiny_base: Path
) -> None:
    """One rung's file lacks its labels: the script refuses it, and the ladder reads the
    failure's class from Pipes' report. Another rung's process dies before it opens Pipes
    (exit status 2 and the class name on stderr, as text only): no report, so it is tried
    again and recorded as such. The last rung keeps the score it gets in this process."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curation_assets.curation.evaluation.ladder_sessions import prepare_ladder, rung_path

    decisions = build_warehouse(tmp_path / "w.duckdb", with_suspects=True)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        chosen = ("raw", "verified", "random_n")
        rungs = [r for r in _as_dicts(build_rungs(con, decisions)) if r["name"] in chosen]
        validation = validation_rows(con)
    params = TrainParams(epochs=3, batch_size=8, seed=13)
    plan = prepare_ladder(rungs, validation, str(tiny_base), tmp_path / "ladder", params=params)
    assert [r["status"] for r in plan.results] == ["pending"] * 3
    broken = pa.table({"example_id": ["a"], "prompt": ["b"]})
    pq.write_table(broken, rung_path(plan.folder, "verified"))
    said = "import sys; sys.stderr.write('PermanentTrainingError: said, not reported'); sys.exit(2)"

    def command_for(launch):
        alone = [r["name"] for r in launch.extras["rungs"]] == ["random_n"]
        return replace(launch, command=[sys.executable, "-c", said]) if alone else launch

    _drive_in_dagster(plan, command_for)
    by = {r["name"]: r for r in plan.results}
    assert [r["status"] for r in plan.results] == ["trained", "failed", "failed"]
    reported = plan.failures["verified"].error
    assert reported.cls_name == "PermanentTrainingError" and reported.permanent
    assert "lacks columns ['response']" in reported.message
    assert (
        by["verified"]["error"] == str(reported) and by["verified"]["validation_accuracy"] is None
    )
    assert plan.failures["random_n"].error is None and not plan.failures["random_n"].permanent
    assert by["random_n"]["error"].startswith("no Pipes report")
    # the shared session failed; then the embedding (cached by it) and each rung alone:
    # verified once (permanent), random_n twice (no report: worth another launch)
    assert plan.sessions == 1 + 1 + 1 + 1 + 2
    assert plan.embed_seconds == 0.0  # the texts were embedded once, by the shared session
    here = _scores(run_ladder(rungs, validation, str(tiny_base), params=params))
    assert _scores(plan.results)["raw"] == here["raw"]


@pytest.mark.slow  # two more subprocesses importing transformers: about 15 s
def test_finetuned_rungs_each_get_a_pipes_session_and_the_same_scores(
    tmp_path: Path, tiny_base: Path
) -> None:
    from curation_assets.curation.evaluation.ladder_sessions import prepare_ladder

    decisions = build_warehouse(tmp_path / "w.duckdb", with_suspects=True)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        rungs = _as_dicts(build_rungs(con, decisions))[:2]
        validation = validation_rows(con)
    params = TrainParams(epochs=3, batch_size=8, seed=13)
    plan = prepare_ladder(
        rungs, validation, str(tiny_base), tmp_path / "ladder", "finetune", 4, params
    )
    _drive_in_dagster(plan)
    assert plan.sessions == 2 and not plan.failures
    here = run_ladder(rungs, validation, str(tiny_base), "finetune", 4, params)
    assert _scores(plan.results) == _scores(here)
    assert [r["steps"] for r in plan.results] == [4, 4]
