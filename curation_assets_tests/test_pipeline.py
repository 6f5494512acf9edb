"""End to end on real DuckDB files and a real Dagster instance, with a tiny model.

The whole graph materializes and counts add up; a bad batch is held back while the clean
ones train; a run of the fine-tune alone refuses when its inputs' checks never ran.
"""

import dataclasses
import json

import dagster as dg
import duckdb
import pytest

from curation_assets import cli
from curation_assets.definitions import build_definitions
from curation_assets.runs import pipeline
from curation_assets.runs.pipeline import run_everything
from curation_assets_tests.fixtures import (
    CONTRACT,
    accept_all,
    make_rows,
    small_settings,
    write_inbox,
    write_two_batches,
)
from curation_assets_tests.test_schema import BOOKKEEPING, declared_tables

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these


@pytest.fixture
def world(tmp_path, support_base):
    """Two inbox files (JSONL with broken lines, CSV with overlap) and the decisions."""
    settings = small_settings(tmp_path / "data", base_model=str(support_base))
    rows = make_rows(30)
    write_two_batches(settings.inbox, rows)
    accept_all(settings, rows, tmp_path / "d.jsonl")
    with dg.instance_for_test() as instance:
        yield settings, instance, rows


def _scalar(settings, sql):
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()[0][0]


def test_whole_graph_materializes_and_counts_add_up(world, monkeypatch, capsys):
    settings, instance, rows = world
    out = run_everything(settings, instance)
    assert out["success"], "\n".join(out["lines"])
    assert out["state"] == "ok" and out["waiting"] is None
    assert {*CONTRACT[1:], "example_lineage"} <= set(out["materialized"])
    assert out["failed_checks"] == []

    units = _scalar(settings, "SELECT sum(units_read) FROM ingest_batches")
    kept = _scalar(settings, "SELECT count(*) FROM filtered")
    rejected = _scalar(settings, "SELECT count(DISTINCT record_id) FROM rejections")
    quarantined = _scalar(settings, "SELECT count(*) FROM quarantine")
    assert units == kept + rejected + quarantined == (60 + 3) + (35 + 3)
    assert (kept, rejected, quarantined) == (90, 8, 3)
    assert _scalar(settings, "SELECT count(*) FROM example_lineage") == units
    # every dataset table, and every bookkeeping table this run made (an embeddings cache
    # only exists with an encoder), has exactly its declared columns and types
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        present = {n for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        checked = [t for t in declared_tables() if t.name in present or t.name not in BOOKKEEPING]
        drift = [p for table in checked for p in table.drift(con, types=True)]
    assert drift == [] and len(checked) > 20

    # the model saw only verified train rows; its validation rows are disjoint
    trained = _scalar(settings, "SELECT count(*) FROM model_examples WHERE split = 'train'")
    assert trained == _scalar(settings, "SELECT count(*) FROM verified WHERE split = 'train'")
    assert (
        _scalar(
            settings,
            "SELECT count(*) FROM model_examples me JOIN verified v "
            "USING (example_id) WHERE me.split != v.split",
        )
        == 0
    )
    accuracy = _scalar(settings, "SELECT accuracy FROM model_evaluations")
    assert 0.0 <= accuracy <= 1.0
    manifest = json.loads(
        (settings.models.iterdir().__next__() / "training_manifest.json").read_text()
    )
    assert manifest["train_examples"] == trained

    # row-level lineage from the command line: a trained example and a quarantined line
    monkeypatch.setenv("CURATION_DATA_DIR", str(settings.data_dir))
    trained_id = _scalar(settings, "SELECT example_id FROM model_examples WHERE split = 'train'")
    assert cli.main(["trace", trained_id]) == 0
    out = capsys.readouterr().out
    assert "verified and used to train 1 model(s)" in out
    assert "dr_chen" in out and "batch_a.jsonl" in out
    assert cli.main(["trace", "batch_a.jsonl:2"]) == 0
    assert "quarantined at ingest: malformed JSON" in capsys.readouterr().out


def test_bad_batch_is_held_back_and_the_fine_tune_trains_on_the_clean_ones(world):
    settings, instance, _ = world
    assert run_everything(settings, instance, skip_training=True)["success"]
    clean = _scalar(settings, "SELECT count(*) FROM filtered")
    # a new batch whose labels are mostly outside the allowed set
    bad = [{"text": f"totally unrelated message {i}", "label": "weather"} for i in range(40)]
    write_inbox(settings.inbox, bad, name="z_bad.jsonl", bad_lines=0)
    out = run_everything(settings, instance)
    assert out["success"], "\n".join(out["lines"])
    assert out["failed_checks"] == []
    assert "fine_tuned_model" in out["materialized"]
    assert any(line.startswith("held back: z_bad.jsonl at filtered") for line in out["lines"])
    assert _scalar(settings, "SELECT count(*) FROM filtered") == clean
    assert _scalar(settings, "SELECT batch FROM held_batches") == "z_bad.jsonl"
    # the model saw no row of the held batch
    assert (
        _scalar(
            settings,
            "SELECT count(*) FROM model_examples me JOIN raw_scrapes r USING (example_id) "
            "WHERE r.batch = 'z_bad.jsonl'",
        )
        == 0
    )


def test_fine_tune_refuses_when_checks_never_ran(world):
    settings, instance, _ = world
    job = build_definitions(settings).resolve_job_def("curate_job")
    alone = job.execute_in_process(
        instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey("fine_tuned_model")]
    )
    assert not alone.success
    message = str(alone.get_step_failure_events()[0].step_failure_data.error.message)
    assert "has never been evaluated" in message


def test_reingesting_the_same_file_adds_nothing(world):
    settings, instance, _ = world
    run_everything(settings, instance, skip_training=True)
    before = _scalar(settings, "SELECT count(*) FROM raw_scrapes")
    run_everything(settings, instance, skip_training=True)
    assert _scalar(settings, "SELECT count(*) FROM raw_scrapes") == before
    assert _scalar(settings, "SELECT count(*) FROM quarantine") == 3


def test_too_few_verified_examples_is_waiting_not_failed(world):
    """Fewer verified examples than min_verified_examples: the run waits for review."""
    settings, instance, _ = world
    strict = dataclasses.replace(settings, min_verified_examples=10_000)
    out = run_everything(strict, instance, skip_training=True)
    assert not out["success"] and out["failed_checks"] == ["verified:expectations"]
    assert out["state"] == "waiting", "\n".join(out["lines"])
    assert out["waiting"]["more_needed"] == 10_000 - out["waiting"]["verified"] > 0
    # the waiting state comes from the failed expectations: any other one is a failure
    audit = next(
        c for c in out["curate"].get_asset_check_evaluations() if c.asset_key.path == ["verified"]
    )
    assert pipeline._waiting(strict, out["curate"], [audit]) is not None
    other = dict(audit.metadata.items())
    other["unexpected_counts"] = dg.MetadataValue.json(
        {**audit.metadata["unexpected_counts"].value, "ExpectColumnValuesToBeUnique(...)": 2}
    )
    failing = dg.AssetCheckEvaluation(
        asset_key=audit.asset_key,
        check_name=audit.check_name,
        passed=False,
        metadata=other,
        severity=audit.severity,
    )
    assert pipeline._waiting(strict, out["curate"], [failing]) is None


def _fingerprint(settings) -> dict:
    """What a run produced, minus when: verified, the queues, every score."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:

        def rows(sql: str) -> list:
            return con.sql(sql).fetchall()

        return {
            "verified": rows(
                "SELECT example_id, prompt, response, split, verified_by, edited "
                "FROM verified ORDER BY example_id"
            ),
            "queue": rows(
                "SELECT queue, priority, example_id, round(score, 6) FROM review_queue "
                "ORDER BY queue, priority"
            ),
            "evaluation": rows("SELECT split, accuracy, macro_f1 FROM model_evaluations"),
            "ladder": rows(
                "SELECT dataset, examples, validation_accuracy, validation_macro_f1 "
                "FROM quality_ladder ORDER BY dataset"
            ),
        }


def test_two_fresh_runs_produce_the_same_data_and_scores(world, tmp_path_factory):
    """The demo is deterministic: the same inbox and decisions in a fresh folder and a
    fresh instance give the same verified rows, queues, fine-tune and ladder scores."""
    settings, instance, rows = world
    assert run_everything(settings, instance, emit=None)["state"] == "ok"
    other = tmp_path_factory.mktemp("again")
    again = small_settings(other / "data", base_model=settings.base_model)
    assert again.warehouse != settings.warehouse
    write_two_batches(again.inbox, rows)
    accept_all(again, rows, other / "d.jsonl")
    with dg.instance_for_test() as fresh:
        assert run_everything(again, fresh, emit=None)["state"] == "ok"
    first, second = _fingerprint(settings), _fingerprint(again)
    assert first["verified"] and first["ladder"] and first["evaluation"]
    assert first == second
