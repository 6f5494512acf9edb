"""Write, audit, publish on the real graph: a version that fails its blocking checks never
reaches a reader, a bad batch is held back alone, and an audited override publishes it.

Real DuckDB files, a real Dagster instance, the real CLI (in a second process for the
reader that runs while the warehouse is locked by a writer).
"""

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from curation_assets import cli
from curation_assets.curation import overrides, publish
from curation_assets.curation.review import decisions
from curation_assets.definitions import build_definitions
from curation_assets.defs.resources import build_resources
from curation_assets.defs.shared.gate import upstream_blocking_check_problems
from curation_assets.runs.pipeline import run_everything
from curation_assets_tests.fixtures import (
    make_rows,
    small_settings,
    write_decisions,
    write_inbox,
)

pytestmark = pytest.mark.integration  # see pyproject: ./scripts/test --fast skips these

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def world(tmp_path):
    """One clean batch with decisions for every row (no model: the gate refuses first)."""
    settings = small_settings(tmp_path / "data", base_model="unused")
    rows = make_rows(30)
    write_inbox(settings.inbox, rows, name="a.jsonl")
    decisions.import_file(write_decisions(tmp_path / "d.jsonl", rows), settings.decision_store)
    with dg.instance_for_test() as instance:
        yield settings, instance, tmp_path


def _con(settings):
    return duckdb.connect(str(settings.warehouse), read_only=True)


def _hash(settings, table: str) -> str:
    """A content hash of a whole table (row order independent). ``curation run`` ingests
    every inbox file again, so ``ingested_at`` of unchanged files moves: left out."""
    with _con(settings) as con:
        columns = [r[0] for r in con.sql(f"DESCRIBE {table}").fetchall()]
        keep = ", ".join(c for c in columns if c != "ingested_at")
        return con.sql(
            f"SELECT md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY CAST(t AS VARCHAR))) "
            f"FROM (SELECT {keep} FROM {table}) t"
        ).fetchall()[0][0]


def _scalar(settings, sql: str):
    with _con(settings) as con:
        return con.sql(sql).fetchall()[0][0]


def _latest(instance, asset: str, check: str = "expectations"):
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(asset), check)
    )
    return record.evaluation


def _run(settings, instance) -> dict:
    return run_everything(settings, instance, skip_training=True)


def test_failed_ingest_audit_holds_the_batch_alone_until_an_admin_accepts_it(world, capsys):
    settings, instance, _ = world
    assert _run(settings, instance)["success"]
    published = {t: _hash(settings, t) for t in ("raw_scrapes", "filtered", "verified")}

    # a file that is mostly unreadable: 4 records, 10 malformed lines (71% quarantined)
    good = make_rows(2, seed=7)[:4]
    lines = [json.dumps(r) for r in good] + ['{"text": "broken'] * 10
    (settings.inbox / "c_bad.jsonl").write_text("\n".join(lines) + "\n")
    out = _run(settings, instance)
    assert "ingest c_bad.jsonl: FAILED" in out["lines"]
    assert not out["success"]

    # the published tables are byte-identical; the staged rows wait for inspection
    assert {t: _hash(settings, t) for t in published} == published
    assert _scalar(settings, "SELECT count(*) FROM raw_scrapes WHERE batch = 'c_bad.jsonl'") == 0
    assert _scalar(settings, "SELECT count(*) FROM raw_scrapes__staged") == 4
    assert _scalar(settings, "SELECT count(*) FROM quarantine__staged") == 10
    reason = _scalar(settings, "SELECT reason FROM held_batches WHERE stage = 'raw_scrapes'")
    assert "quarantine_rate" in reason
    evaluation = _latest(instance, "raw_scrapes")
    assert not evaluation.passed and evaluation.metadata["published"].value is False
    assert "curation batches accept" in evaluation.metadata["how_to_fix"].value

    # nothing is lost: the lineage traces every unit, the held ones as held
    lineage = (
        build_definitions(settings)
        .resolve_job_def("curate_job")
        .execute_in_process(instance=instance, asset_selection=[dg.AssetKey("example_lineage")])
    )
    assert lineage.get_asset_check_evaluations()[0].passed  # units read = units traced
    with _con(settings) as con:
        traced = dict(
            con.sql("SELECT filter_status, count(*) FROM example_lineage GROUP BY 1").fetchall()
        )
    assert traced["held"] == 4 and traced["quarantined"] == 3 + 10
    os.environ["CURATION_DATA_DIR"] = str(settings.data_dir)
    try:
        assert cli.main(["trace", "c_bad.jsonl:1"]) == 0
        assert "held back at raw_scrapes" in capsys.readouterr().out
        assert cli.main(["batches", "list"]) == 0
        assert "c_bad.jsonl  held at raw_scrapes" in capsys.readouterr().out
        assert cli.main(["batches", "accept", "c_bad.jsonl", "--reason", " "]) != 0
        assert (
            cli.main(["batches", "accept", "c_bad.jsonl", "--reason", "vendor export, known noisy"])
            == 0
        )
    finally:
        del os.environ["CURATION_DATA_DIR"]

    # the override is audited (who, when, why) and cannot be edited away
    (row,) = overrides.load(settings.decision_store)
    assert (row["stage"], row["batch"], row["reason"]) == (
        "raw_scrapes",
        "c_bad.jsonl",
        "vendor export, known noisy",
    )
    assert row["accepted_by"] and row["recorded_at"] and row["sha256"]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        sqlite3.connect(settings.decision_store).execute("DELETE FROM batch_overrides")

    # the next run publishes it
    out = _run(settings, instance)
    assert "ingest c_bad.jsonl: ok" in out["lines"], out["lines"]
    assert _scalar(settings, "SELECT count(*) FROM raw_scrapes WHERE batch = 'c_bad.jsonl'") == 4
    assert _scalar(settings, "SELECT count(*) FROM held_batches") == 0
    evaluation = _latest(instance, "raw_scrapes")
    assert evaluation.passed
    assert evaluation.metadata["accepted_by_override"].value["reason"] == row["reason"]


def test_bad_batch_between_two_clean_ones_is_held_back_alone(world):
    settings, instance, tmp_path = world
    assert _run(settings, instance)["success"]
    # b: 20 good rows and 30 with a label outside the set (60% rejected, bound 30%)
    b_good = make_rows(7, seed=11)[:20]
    bad = [{"text": f"unrelated weather chatter {i}", "label": "weather"} for i in range(30)]
    write_inbox(settings.inbox, b_good + bad, name="b_bad.jsonl", bad_lines=0)
    c_rows = make_rows(8, seed=12)
    write_inbox(settings.inbox, c_rows, name="c_clean.jsonl", bad_lines=0)
    decisions.import_file(
        write_decisions(tmp_path / "d2.jsonl", b_good + c_rows), settings.decision_store
    )

    out = _run(settings, instance)
    assert out["success"], "\n".join(out["lines"])
    assert "verified" in out["materialized"]
    with _con(settings) as con:
        held = con.sql("SELECT stage, batch, reason FROM held_batches").fetchall()
        assert [(s, b) for s, b, _ in held] == [("filtered", "b_bad.jsonl")]
        assert "rejected 60.0%" in held[0][2]
        batches = dict(con.sql("SELECT batch, count(*) FROM filtered GROUP BY 1").fetchall())
        in_working = con.sql(
            "SELECT count(*) FROM filtered__working WHERE batch = 'b_bad.jsonl'"
        ).fetchall()[0][0]
        verified = dict(
            con.sql(
                "SELECT f.batch, count(*) FROM verified v JOIN filtered__working f "
                "USING (example_id) GROUP BY 1"
            ).fetchall()
        )
    assert "b_bad.jsonl" not in batches and batches["c_clean.jsonl"] > 0
    assert in_working == 20  # kept by the rules, held back from publication
    assert verified.keys() == {"a.jsonl", "c_clean.jsonl"}
    held_check = _latest(instance, "filtered", "held_batches")
    assert not held_check.passed and held_check.severity == dg.AssetCheckSeverity.WARN
    assert _latest(instance, "filtered").passed

    # accepting the held batch publishes it at the next run
    overrides.accept(
        settings.decision_store,
        "filtered",
        "b_bad.jsonl",
        _scalar(settings, "SELECT sha256 FROM ingest_batches WHERE batch = 'b_bad.jsonl'"),
        "weather questions are in scope from now on",
        "admin",
    )
    assert _run(settings, instance)["success"]
    assert _scalar(settings, "SELECT count(*) FROM filtered WHERE batch = 'b_bad.jsonl'") == 20
    assert _scalar(settings, "SELECT count(*) FROM held_batches") == 0


def test_failed_audit_keeps_the_published_version_and_every_later_reader_refuses(world):
    settings, instance, _ = world
    assert _run(settings, instance)["success"]
    before = _hash(settings, "verified")
    n = _scalar(settings, "SELECT count(*) FROM verified")
    strict = dataclasses.replace(settings, min_verified_examples=n + 1000)

    out = _run(strict, instance)
    assert not out["success"]
    assert out["failed_checks"] == ["verified:expectations"]
    assert "verified" not in out["materialized"]
    assert _hash(settings, "verified") == before  # byte-identical to the last good version
    assert _scalar(settings, "SELECT count(*) FROM verified__staged") == n
    evaluation = _latest(instance, "verified")
    assert evaluation.metadata["staged_tables"].value == ["verified__staged"]

    # a run of a downstream asset alone (as from the UI) refuses, naming the check
    defs = build_definitions(strict)
    alone = defs.resolve_job_def("curate_job").execute_in_process(
        instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey("fine_tuned_model")]
    )
    assert not alone.success
    message = str(alone.get_step_failure_events()[0].step_failure_data.error.message)
    assert "Refusing to materialize fine_tuned_model" in message
    assert "verified:expectations FAILED" in message

    # automation does not request anything that builds on it
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.get_num_requested(dg.AssetKey("fine_tuned_model")) == 0

    # fixed (here: the bound back to normal), the next run publishes and the gate opens
    assert _run(settings, instance)["success"]
    graph = build_definitions(settings).get_repository_def().asset_graph
    assert upstream_blocking_check_problems(instance, graph, dg.AssetKey("fine_tuned_model")) == []
    assert (
        _scalar(
            settings,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'verified__staged'",
        )
        == 0
    )


def test_readers_see_the_published_version_while_a_run_writes(world):
    settings, instance, _ = world
    assert _run(settings, instance)["success"]
    example = _scalar(settings, "SELECT example_id FROM verified ORDER BY example_id LIMIT 1")
    env = {**os.environ, "CURATION_DATA_DIR": str(settings.data_dir)}
    writer = duckdb.connect(str(settings.warehouse))  # holds the file lock, like a run
    try:
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM verified")  # a new version being written, not published
        reader = subprocess.run(
            [sys.executable, "-m", "curation_assets.cli", "trace", example],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        locked = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import duckdb; duckdb.connect({str(settings.warehouse)!r}, read_only=True)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        writer.execute("ROLLBACK")
    finally:
        writer.close()
    assert locked.returncode != 0 and "lock" in locked.stderr  # what readers hit before
    assert reader.returncode == 0, reader.stderr
    assert "verified (" in reader.stdout and example in reader.stdout


def test_decisions_sensor_starts_nothing_after_a_run_that_recorded_the_store(world):
    settings, instance, _ = world
    assert _run(settings, instance)["success"]
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("decisions_sensor")
    context = dg.build_sensor_context(
        instance=instance, definitions=defs, resources=build_resources(settings)
    )
    assert isinstance(sensor(context), dg.SkipReason)  # a fresh cursor, as in a new UI
    con = decisions.connect(settings.decision_store)
    decisions.record(
        con, {"example_id": "e1", "reviewer": "bo", "role": "reviewer", "decision": "accept"}
    )
    con.close()
    fired = sensor(
        dg.build_sensor_context(
            instance=instance,
            cursor=context.cursor,
            definitions=defs,
            resources=build_resources(settings),
        )
    )
    assert [e.asset_key.to_user_string() for e in fired.asset_events] == ["review_decisions"]


def test_finish_publishes_or_keeps_the_staged_rows_and_the_published_table_intact(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (batch VARCHAR, x INT)")
    con.execute("INSERT INTO t VALUES ('a', 1)")
    with publish.transaction(con):
        con.execute("INSERT INTO t VALUES ('b', 2)")
        outcome = publish.finish(con, False, ["t"], where="batch = 'b'")
    assert not outcome.published and outcome.staged_tables == ["t__staged"]
    assert con.sql("FROM t").fetchall() == [("a", 1)]
    assert con.sql("FROM t__staged").fetchall() == [("b", 2)]
    with publish.transaction(con):
        con.execute("INSERT INTO t VALUES ('b', 3)")
        assert publish.finish(con, True, ["t"], where="batch = 'b'").published
    assert sorted(con.sql("FROM t").fetchall()) == [("a", 1), ("b", 3)]
    assert con.sql("FROM t__staged").fetchall() == []  # published: nothing left staged
    with pytest.raises(RuntimeError), publish.transaction(con):
        con.execute("DELETE FROM t")
        raise RuntimeError("the stage crashed mid-write")
    assert len(con.sql("FROM t").fetchall()) == 2  # rolled back


def test_snapshot_is_replaced_atomically_and_readable_without_the_warehouse(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE TABLE filtered AS SELECT 1 AS x")
    publish.snapshot(con, tmp_path, "filtered")
    reader = publish.open_snapshot(tmp_path)
    assert reader.sql("FROM filtered").fetchall() == [(1,)]
    con.execute("CREATE OR REPLACE TABLE filtered AS SELECT 2 AS x")
    publish.snapshot(con, tmp_path, "filtered")
    assert reader.sql("FROM filtered").fetchall() == [(2,)]
    assert [p.name for p in tmp_path.iterdir()] == ["filtered.parquet"]  # no temp left


def test_the_dagster_layer_uses_public_apis_only():
    sources = (ROOT / "curation_assets").rglob("*.py")
    offenders = [str(p) for p in sources if "dagster._" in p.read_text(encoding="utf-8")]
    assert offenders == []
