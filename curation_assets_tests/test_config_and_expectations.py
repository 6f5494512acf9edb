"""Settings come from one place with env overrides; GX suites report what failed, the
stages' suites among them (every test that runs GX is in this file: one worker of a
parallel run imports it)."""

import json
from datetime import datetime

import duckdb
import pytest

from curation_assets.config import PROJECT_ROOT, Settings
from curation_assets.curation.expectations import Validation, expect, run_validations
from curation_assets.curation.filtering import filter_stage
from curation_assets.curation.review import review_stage
from curation_assets_tests.test_decisions_and_review import (
    _decision,
    _store,
    queued,  # noqa: F401 - a fixture
)
from curation_assets_tests.test_filter_stage import GOOD, _load


def test_env_overrides_every_kind_of_field(tmp_path):
    s = Settings.from_env(
        {
            "CURATION_DATA_DIR": str(tmp_path),
            "CURATION_LABELS": "a, b",
            "CURATION_EPOCHS": "2.5",
            "CURATION_MIN_VERIFIED_EXAMPLES": "7",
            "CURATION_REQUIRE_GPU": "yes",
            "CURATION_COLUMN_MAPPING": "utterance=prompt,intent=response",
        }
    )
    assert s.labels == ("a", "b") and s.epochs == 2.5 and s.min_verified_examples == 7
    assert s.require_gpu is True
    assert s.column_mapping == {"utterance": "prompt", "intent": "response"}
    assert s.warehouse == tmp_path / "warehouse.duckdb"
    assert s.inbox == tmp_path / "inbox"


def test_defaults_run_the_demo_and_labels_can_be_cleared(monkeypatch):
    """The defaults are the settings the bundled demo data was built for (its manifest
    records them), and an explicit environment is all that ``from_env`` reads."""
    monkeypatch.setenv("CURATION_LABELS", "not,these")
    monkeypatch.setenv("CURATION_TASK_TYPE", "instruction")
    manifest = json.loads(
        (PROJECT_ROOT / "curation_assets" / "sample_data" / "manifest.json").read_text()
    )
    defaults = Settings.from_env({})
    assert sorted(defaults.labels) == sorted(manifest["allowed_labels"])
    assert defaults.task_type == manifest["task"]["type"]
    assert defaults.min_prompt_chars == manifest["min_prompt_chars"]
    assert Settings.from_env({"CURATION_LABELS": ""}).labels == ()


def test_bad_boolean_is_a_clear_error():
    with pytest.raises(ValueError, match="CURATION_REQUIRE_GPU"):
        Settings.from_env({"CURATION_REQUIRE_GPU": "maybe"})


def test_suite_reports_failures_with_counts_and_warnings_do_not_fail():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES ('a', 'x'), ('a', 'y'), (NULL, 'z')) v(id, label)"
    )
    result = run_validations(
        con,
        [
            Validation(
                "rows",
                "SELECT * FROM t",
                [
                    expect("ExpectColumnValuesToNotBeNull", column="id"),
                    expect("ExpectColumnValuesToBeUnique", column="label"),
                    expect(
                        "ExpectColumnValuesToBeInSet",
                        column="label",
                        value_set=["x"],
                        warn_only=True,
                    ),
                ],
            )
        ],
    )
    assert not result.success
    assert result.evaluated == 3 and result.succeeded == 1
    by_kind = {f["expectation"].split("(")[0]: f for f in result.failures}
    assert by_kind["ExpectColumnValuesToNotBeNull"]["unexpected_count"] == 1
    assert by_kind["ExpectColumnValuesToBeInSet"]["severity"] == "warning"

    only_warnings = run_validations(
        con,
        [
            Validation(
                "rows",
                "SELECT * FROM t",
                [
                    expect(
                        "ExpectColumnValuesToBeInSet",
                        column="label",
                        value_set=["x"],
                        warn_only=True,
                    ),
                ],
            )
        ],
    )
    assert only_warnings.success and only_warnings.has_warnings


@pytest.mark.parametrize(
    ("success", "failure_severities", "passed", "severity"),
    [
        (True, [], True, "ERROR"),
        (True, ["warning"], False, "WARN"),
        (False, ["critical", "warning"], False, "ERROR"),
    ],
)
def test_check_severity_follows_the_worst_failure(success, failure_severities, passed, severity):
    import dagster as dg

    from curation_assets.curation.expectations import SuiteResult
    from curation_assets.defs.shared.checks import suite_result_to_check

    failures = [
        {
            "severity": s,
            "validation": "v",
            "expectation": f"e{i}",
            "unexpected_count": 1,
            "observed_value": None,
            "sample": [],
        }
        for i, s in enumerate(failure_severities)
    ]
    result = SuiteResult(success, 3, 3 - len(failures), failures, {"t": 10})
    check = suite_result_to_check(result)
    assert check.passed is passed
    assert check.severity == getattr(dg.AssetCheckSeverity, severity)


def test_only_classification_with_a_label_set_restricts_the_response():
    from curation_assets.curation.expectations import labels_in
    from curation_assets.defs.filtering.suites import filtered_expectations

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('card_lost'), ('refund')) v(response)")
    classified = Settings(labels=("card_lost",))
    assert classified.allowed_labels == ("card_lost",)
    assert Settings(labels=("card_lost",), task_type="instruction").allowed_labels == ()
    assert Settings(labels=()).allowed_labels == ()
    assert labels_in(()) == []
    audit = run_validations(con, [Validation("t", "SELECT * FROM t", labels_in(("card_lost",)))])
    assert not audit.success  # 'refund' is outside the set

    # the filtered suite carries it exactly when there is a label set to keep to
    def kinds(settings):
        return [e.kind for v in filtered_expectations(settings) for e in v.expectations]

    assert kinds(classified).count("ExpectColumnValuesToBeInSet") == 1 + kinds(
        Settings(labels=())
    ).count("ExpectColumnValuesToBeInSet")


# --- the stages' suites ------------------------------------------------------------


def test_a_rule_that_suddenly_drops_most_of_a_batch_fails_the_filtered_suite(con, tmp_path):
    from curation_assets.defs.filtering.suites import filtered_expectations

    settings = Settings(data_dir=tmp_path, task_type="instruction", labels=())
    rows = [*GOOD, *({"instruction": f"Say {i}.", "output": "ok"} for i in range(6))]
    _load(con, tmp_path, "a.jsonl", rows, datetime(2026, 1, 1))
    filter_stage.run_stage(con, filter_stage.FilterConfig(task_type="instruction"))
    suite = {v.name: v for v in filtered_expectations(settings)}
    result = run_validations(con, [suite["rule_drop_rates"]])
    assert not result.success  # prompt_too_short dropped 6 of 10 records > 0.30
    assert result.failures[0]["unexpected_count"] == 1
    relaxed = Settings(
        data_dir=tmp_path,
        task_type="instruction",
        labels=(),
        rule_drop_rate_bounds={"prompt_too_short": "0.7"},
    )
    relaxed_suite = {v.name: v for v in filtered_expectations(relaxed)}
    assert run_validations(con, [relaxed_suite["rule_drop_rates"]]).success


def test_agreement_check_bounds_kappa_once_there_is_enough_overlap(queued, tmp_path):  # noqa: F811
    from curation_assets.defs.review.suites import reviewed_expectations

    con, ids = queued
    rows = []
    for i, eid in enumerate(ids[:8]):  # alice accepts all, bob rejects every other one
        rows += [
            _decision(eid, who="alice"),
            _decision(eid, who="bob", decision=("accept", "reject")[i % 2]),
        ]
    frame = _store(tmp_path, rows)
    review_stage.build_review_queue(con, frame, review_stage.QueueConfig(reviews_required=2))
    stats = review_stage.build_reviewed(con, frame, reviews_required=2).set_index("scope")
    assert stats.loc["overall", "items"] == 8 and stats.loc["overall", "kappa"] < 0.4
    strict = Settings(labels=(), min_agreement=0.4, min_agreement_items=5)
    result = run_validations(con, reviewed_expectations(strict))
    assert not result.success
    assert [f["validation"] for f in result.failures] == ["agreement"]
    lenient = Settings(labels=(), min_agreement=0.4, min_agreement_items=50)
    assert run_validations(con, reviewed_expectations(lenient)).success  # too few to judge
