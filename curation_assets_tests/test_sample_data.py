"""The bundled demo data agrees with its manifest and with what the pipeline computes.

``scripts/build_sample_data.py`` simulates decisions on the queues the pipeline builds and
records the expected outcome in ``manifest.json``; every expectation here comes from it.
The slow test reruns the review stages' core functions and tells when the sample data
must be rebuilt (filter rules or queue settings changed what the pipeline queues).
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from curation_assets.config import Settings
from curation_assets.curation.ingest import intake
from curation_assets.curation.review import decisions, review_stage
from curation_assets_tests.fixtures import filter_inbox

SAMPLE = Path(__file__).resolve().parent.parent / "curation_assets" / "sample_data"
MANIFEST = json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))
DECISIONS = SAMPLE / "decisions" / "review_decisions.jsonl"


def _decisions() -> list[dict]:
    return [json.loads(line) for line in DECISIONS.read_text(encoding="utf-8").splitlines()]


def test_sample_inbox_ingests_as_the_manifest_says():
    for name, expected in MANIFEST["files"].items():
        result = intake.read_file(SAMPLE / "inbox" / name, {}, Settings().max_record_bytes)
        assert result.units_read == expected["units"], name
        assert len(result.records) == expected["expected_records"], name
        assert len(result.quarantine) == expected["expected_quarantined"], name


def test_sample_decisions_import_cleanly_and_match_the_manifest(tmp_path):
    info = MANIFEST["decisions"]
    report = decisions.import_file(DECISIONS, tmp_path / "store.sqlite")
    assert report.errors == [] and report.added == info["count"]
    made = _decisions()
    assert dict(Counter(f"{d['role']}:{d['decision']}" for d in made)) == info["by_role_decision"]
    expert = [d for d in made if d["role"] == "expert"]
    assert len({d["example_id"] for d in expert}) == len(expert) == info["expert"]["decisions"]
    voters: dict[str, set[str]] = {}
    for d in made:
        if d["role"] == "reviewer":
            voters.setdefault(d["example_id"], set()).add(d["reviewer"])
    assert len(voters) == info["reviewers"]["examples"]
    assert sum(len(v) > 1 for v in voters.values()) == info["reviewers"]["double_reviewed"]
    assert (
        info["reviewers"]["double_reviewed"]
        >= MANIFEST["expected_pipeline"]["agreement"]["min_items"]
    )
    # the expert works after the reviewers and every decision has a realistic duration
    last_review = max(d["decided_at"] for d in made if d["role"] == "reviewer")
    assert min(d["decided_at"] for d in expert) > last_review
    assert all(5 <= d["seconds_spent"] <= 60 for d in made)
    # no decision about an example the filter drops (exact duplicates share the kept id)
    dropped = {
        r["example_id"]
        for r in MANIFEST["noisy_rows"]
        if r["noise_class"] in ("prompt_too_short", "label_not_allowed")
    }
    dropped |= {r["example_id"] for r in MANIFEST["expected_filtered"]["rejected_by_other_rules"]}
    assert dropped and not {d["example_id"] for d in made} & dropped


def test_sample_decisions_leave_work_for_a_new_reviewer_and_a_new_expert():
    """The demo leaves a documented handful of each queue open (issue #14): nobody decided
    the undecided ones, one reviewer and no expert the awaiting ones, and the names the
    README has a user create made no bundled decision."""
    made = _decisions()
    left = MANIFEST["decisions"]["left_open"]
    by_example: dict[str, list[dict]] = {}
    for d in made:
        by_example.setdefault(d["example_id"], []).append(d)
    for key in ("coverage_undecided", "suspect_undecided"):
        assert 10 <= len(left[key]) <= 20, key
        assert not {item["example_id"] for item in left[key]} & set(by_example), key
    for item in left["coverage_awaiting_expert"]:
        votes = by_example[item["example_id"]]
        assert {(d["role"], d["reviewer"]) for d in votes} == {("reviewer", item["reviewer"])}
    # a new user gets to edit and reject too, not only accept
    words = {item["right_decision"] for item in left["coverage_undecided"]}
    assert words == {"accept", "edit", "reject"}
    assert not {d["reviewer"] for d in made} & {"carol", "dr_chen"}
    offered = MANIFEST["expected_pipeline"]["review_app_for_new_users"]
    for who, role in (("new_reviewer", "reviewer"), ("new_expert", "expert")):
        for queue, counts in offered[who].items():
            assert counts["open"] > 0, (role, queue)
            assert counts["total"] == MANIFEST["review_queues"][queue]["examples"]


@pytest.mark.slow
def test_sample_data_matches_what_the_pipeline_computes(tmp_path):
    """Ingest, filter, queue, review and verify the sample with default settings."""
    from curation_assets.defs.review.assets import queue_config

    settings = Settings(data_dir=tmp_path, inbox_dir=SAMPLE / "inbox")
    labels = settings.labels
    con = filter_inbox(settings)
    decisions.import_file(DECISIONS, settings.decision_store)
    store = decisions.load_all(settings.decision_store)
    scoring = review_stage.build_review_queue(con, store, queue_config(settings), labels)
    stats = review_stage.build_reviewed(con, store, settings.reviews_required, labels)
    review_stage.build_verified(con, store, settings.validation_fraction)
    timing = review_stage.expert_time(con)

    def scalar(sql: str):
        return con.execute(sql).fetchall()[0][0]

    queues, expected = MANIFEST["review_queues"], MANIFEST["expected_pipeline"]
    assert scalar("SELECT count(*) FROM filtered") == MANIFEST["expected_filtered"]["kept"]
    # the coverage sample does not depend on the suspect scores' encoder
    coverage = {
        r[0]
        for r in con.execute(
            "SELECT example_id FROM review_queue WHERE queue = 'coverage'"
        ).fetchall()
    }
    expert = {d["example_id"] for d in _decisions() if d["role"] == "expert"}
    left = MANIFEST["decisions"]["left_open"]
    held = {
        i["example_id"] for k in ("coverage_undecided", "coverage_awaiting_expert") for i in left[k]
    }
    assert len(coverage) == queues["coverage"]["examples"]
    assert coverage - held <= expert and not held & expert and held <= coverage
    assert scalar("SELECT count(*) FROM verified") == expected["verified"]
    assert scalar("SELECT count(*) FROM verified WHERE edited") == expected["verified_corrected"]
    assert timing == expected["expert_time"]
    overall = stats[stats["scope"] == "overall"].iloc[0]
    assert int(overall["items"]) == expected["agreement"]["items"]
    assert round(float(overall["kappa"]), 4) == expected["agreement"]["kappa"]
    assert scalar("SELECT count(*) FROM review_queue WHERE review_status = 'needs_expert'") == 0
    if scoring["methods"] != queues["suspect_scoring"]["methods"]:
        pytest.skip(
            f"suspect scores computed with {scoring['methods']}, the sample with "
            f"{queues['suspect_scoring']['methods']}: suspect-queue counts differ"
        )
    assert scalar("SELECT count(*) FROM reviewed") == expected["reviewed"]
    by_status = dict(
        con.execute(
            "SELECT queue || ':' || review_status, count(*) FROM review_queue GROUP BY 1"
        ).fetchall()
    )
    assert by_status == expected["review_queue"]
    # what the review app offers a new reviewer and a new expert on the published queue
    from curation_assets.review_app import store as app_store

    decisions.publish_queue(settings.decision_store, review_stage.queue_for_app(con))
    for who, role in (("new_reviewer", "reviewer"), ("new_expert", "expert")):
        for queue in decisions.QUEUES:
            user = {"username": who, "role": role}
            counts = app_store.standing(
                settings.decision_store, user, queue, settings.reviews_required
            )
            assert counts == expected["review_app_for_new_users"][who][queue], (who, queue)
