"""Great Expectations as its users know it: named suites run through checkpoints on the
warehouse's SQL datasource (inside the stage's own transaction), project rules as GX
expectation classes, Data Docs on disk, and one Dagster check per expectation group."""

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect, run_validations


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(
        "CREATE TABLE t AS SELECT i AS record_id, 'p' || i AS prompt, i % 3 AS k "
        "FROM range(1000) r(i)"
    )
    yield con
    con.close()


ROWS = Validation(
    "rows",
    "SELECT record_id, prompt, k FROM t",
    [
        expect("ExpectColumnValuesToBeUnique", column="record_id"),
        expect("ExpectColumnValuesToNotBeNull", column="prompt"),
        expect("ExpectColumnValuesToBeInSet", column="k", value_set=[0, 1, 2]),
    ],
    row_id=("record_id",),
)


def test_the_audit_sees_the_staged_version_and_cannot_end_its_transaction(con):
    """GX's queries run on the stage's connection inside its open transaction: they see
    the uncommitted rows, and neither commit nor roll back what they audit."""
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO t VALUES (7, NULL, 9)")  # a duplicate id, a null, a bad key
    result = run_validations(con, [ROWS], asset="t")
    assert not result.success
    failed = {f["expectation"].split("(")[0]: f for f in result.failures}
    assert set(failed) == {
        "ExpectColumnValuesToBeUnique",
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToBeInSet",
    }
    assert failed["ExpectColumnValuesToBeUnique"]["unexpected_count"] == 2
    # the failing rows are named by their id column
    assert {r["record_id"] for r in failed["ExpectColumnValuesToNotBeNull"]["sample_rows"]} == {7}
    assert result.rows_validated == {"rows": 1001}
    # still inside the stage's transaction: rolling back removes the staged row
    con.execute("ROLLBACK")
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(1000,)]
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO t VALUES (5000, 'p', 0)")
    assert run_validations(con, [ROWS], asset="t").success
    con.execute("COMMIT")  # the audit did not commit it first
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(1001,)]


def test_each_group_is_a_named_versioned_suite_with_data_docs(con, tmp_path):
    docs = tmp_path / "gx"
    counts = Validation(
        "counts",
        "SELECT k, count(*) AS n FROM t GROUP BY k",
        [expect("ExpectColumnValuesToBeBetween", column="n", min_value=0, max_value=300)],
        row_id=("k",),
    )
    result = run_validations(con, [ROWS, counts], asset="t", docs_dir=docs)
    assert [g.suite for g in result.groups] == ["t.rows", "t.counts"]
    assert result.group("rows").success and not result.group("counts").success
    assert {r["k"] for r in result.group("counts").failures[0]["sample_rows"]} == {0, 1, 2}
    # the suite version is a hash of its expectations: a changed bound is a new version
    looser = Validation(
        counts.name,
        counts.sql,
        [expect("ExpectColumnValuesToBeBetween", column="n", min_value=0, max_value=400)],
    )
    assert looser.version() != counts.version() == result.group("counts").version
    # Data Docs: the index and one page per group's result, as files
    assert result.docs_url == (docs / "data_docs" / "index.html").as_uri()
    for group in result.groups:
        page = Path(group.docs_url.removeprefix("file://"))
        assert page.is_file() and group.suite.replace(".", "/") in page.as_posix()
    index = (docs / "data_docs" / "index.html").read_text()
    assert "t.rows" in index or "t/rows" in index
    stored = list((docs / "validations").rglob("*.json"))
    assert len(stored) == 2
    assert json.loads(stored[0].read_text())["suite_name"] in {"t.rows", "t.counts"}


def test_a_project_rule_is_a_gx_expectation_class_with_failing_rows():
    """The project's rules are GX custom SQL expectations: registered with GX, rendered
    by Data Docs with their description, and their own query gives the failing rows."""
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    from curation_assets.curation import gx_rules
    from curation_assets.curation.expectations import expectation_class

    rule = expectation_class("ExpectEveryUnitAccountedFor")
    assert issubclass(rule, gx_rules.RowRule)
    assert issubclass(rule, gx.expectations.UnexpectedRowsExpectation)
    assert get_expectation_impl("expect_every_unit_accounted_for") is rule
    assert "kept + rejected + quarantined" in rule().description

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE acc AS SELECT * FROM "
        "(VALUES ('a', 0), ('b', 2), ('c', 0)) v(batch, unaccounted)"
    )
    result = run_validations(
        con, [Validation("acc", "SELECT * FROM acc", [expect(rule.__name__)])], asset="x"
    )
    (failure,) = result.failures
    assert failure["unexpected_count"] == 1
    assert failure["sample_rows"] == [{"batch": "b", "unaccounted": 2}]
    with pytest.raises(ValueError, match="unknown expectation"):
        expectation_class("ExpectNoSuchThing")


def _suites(settings: Settings) -> dict[str, list[Validation]]:
    from curation_assets.defs.filtering.suites import (
        filtered_expectations,
        rejections_expectations,
    )
    from curation_assets.defs.ingest.suites import (
        quarantine_expectations,
        raw_scrapes_expectations,
    )
    from curation_assets.defs.lineage.assets import example_lineage_expectations
    from curation_assets.defs.review.suites import (
        review_queue_expectations,
        reviewed_expectations,
        verified_expectations,
    )

    return {
        "raw_scrapes": raw_scrapes_expectations(settings),
        "quarantine": quarantine_expectations(),
        "filtered": filtered_expectations(settings),
        "rejections": rejections_expectations(["a_rule"]),
        "review_queue": review_queue_expectations(settings),
        "reviewed": reviewed_expectations(settings),
        "verified": verified_expectations(settings),
        "example_lineage": example_lineage_expectations(settings),
    }


@pytest.mark.parametrize("task_type", ["classification", "instruction"])
def test_every_expectation_group_is_a_declared_dagster_check(task_type):
    """Each group of a dataset's suite is a check of its own (so the UI names the rule
    that failed); the audit ``expectations`` stays the one blocking check."""
    from curation_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for asset, validations in _suites(Settings(task_type=task_type)).items():
        key = dg.AssetKey(asset)
        names = {k.name for k in graph.asset_check_keys if k.asset_key == key}
        groups = {v.name for v in validations}
        assert groups <= names, (asset, groups - names)
        assert "expectations" in names
        for name in groups:
            spec = graph.get_check_spec(dg.AssetCheckKey(key, name))
            assert not spec.blocking and spec.description, (asset, name)
        assert graph.get_check_spec(dg.AssetCheckKey(key, "expectations")).blocking


def test_a_suite_check_step_runs_only_the_selected_groups(tmp_path):
    """The model and ladder suites run in their own check step; selecting one group's
    check in the UI runs that group alone, and its failure names the failing rows."""
    from curation_assets.defs.resources import resources_for
    from curation_assets.defs.shared.checks import gx_suite_check

    settings = Settings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)

    from dagster_duckdb import DuckDBResource

    @dg.asset(name="toy")
    def toy(duckdb: DuckDBResource) -> None:
        with duckdb.get_connection() as con:
            con.execute("CREATE OR REPLACE TABLE toy AS SELECT i AS id FROM range(5) r(i)")

    def suite(_settings):
        return [
            Validation(
                "ids", "SELECT id FROM toy", [expect("ExpectColumnValuesToBeUnique", column="id")]
            ),
            Validation(
                "small",
                "SELECT id FROM toy",
                [expect("ExpectColumnValuesToBeBetween", column="id", max_value=2)],
                row_id=("id",),
            ),
        ]

    check = gx_suite_check("toy", suite, "toy audit")
    resources = resources_for(settings)
    assert dg.materialize([toy], resources=resources).success
    only = dg.AssetCheckKey(dg.AssetKey("toy"), "small")
    result = dg.materialize(
        [toy, check], resources=resources, selection=dg.AssetSelection.checks(only)
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "small" and not evaluation.passed
    assert evaluation.metadata["unexpected_count"].value == 2
    failures = evaluation.metadata["failures"].value
    assert [r["id"] for r in failures[0]["sample_rows"]] == [3, 4]
    assert evaluation.metadata["gx_suite"].value == "toy.small"
    assert Path(evaluation.metadata["data_docs"].value.removeprefix("file://")).is_file()
