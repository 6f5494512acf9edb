"""Settings come from one place with env overrides; GX suites report what failed."""

import duckdb
import pytest

from curation_assets.config import DEMO_LABELS, Settings
from curation_assets.curation.expectations import Validation, expect, run_validations


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


def test_defaults_run_the_demo_and_labels_can_be_cleared():
    assert Settings.from_env({}).labels == DEMO_LABELS
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
