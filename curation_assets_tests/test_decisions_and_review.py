"""Decision store (append-only, idempotent import) and the review stages built from it."""

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from curation_assets.config import Settings
from curation_assets.curation.filtering import generic_rules, rule_engine
from curation_assets.curation.ingest import intake
from curation_assets.curation.records import example_id
from curation_assets.curation.review import decisions, review_stage


def _decision(
    eid,
    who="alice",
    role="reviewer",
    decision="accept",
    when="2026-11-01T10:00:00Z",
    corrected=None,
):
    return {
        "example_id": eid,
        "reviewer": who,
        "role": role,
        "decision": decision,
        "corrected_response": corrected,
        "decided_at": when,
        "seconds_spent": 12,
    }


def test_store_is_append_only(tmp_path):
    store = tmp_path / "d.sqlite"
    con = decisions.connect(store)
    assert decisions.record(con, _decision("e1"))
    assert not decisions.record(con, _decision("e1"))  # identical decision: stored once
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE decisions SET decision = 'reject'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM decisions")
    con.close()
    assert len(decisions.load_all(store)) == 1


def test_import_reports_bad_lines_and_is_idempotent(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(_decision("e1")),
                "{not json",
                json.dumps(_decision("e2", decision="edit")),  # edit without a correction
                json.dumps(_decision("e3", role="boss")),
            ]
        )
    )
    first = decisions.import_file(path, tmp_path / "d.sqlite")
    assert first.added == 1
    assert [line for line, _ in first.errors] == [2, 3, 4]
    second = decisions.import_file(path, tmp_path / "d.sqlite")
    assert (second.added, second.already_present) == (0, 1)


def test_csv_import(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "example_id,reviewer,role,decision,corrected_response,note,decided_at\n"
        "e1,bob,expert,edit,login,typo,2026-11-02T09:00:00+00:00\n"
    )
    assert decisions.import_file(path, tmp_path / "d.sqlite").added == 1
    stored = decisions.load_all(tmp_path / "d.sqlite").iloc[0]
    assert (stored.role, stored.corrected_response) == ("expert", "login")


def _filter(con, rows, tmp_path, name="a.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows))
    intake.store_batch(con, intake.read_file(path, {}, 10_000), datetime(2026, 1, 1))
    rule_engine.run_filters(
        con,
        generic_rules.rules_for(
            min_prompt_chars=3, max_prompt_chars=500, min_response_chars=1, max_response_chars=50
        ),
    )


@pytest.fixture
def queued(con, tmp_path):
    rows = [{"text": f"please reset my password {i}", "label": "login"} for i in range(6)]
    rows += [{"text": f"refund the double charge {i}", "label": "billing"} for i in range(6)]
    _filter(con, rows, tmp_path)
    return con, [example_id(r["text"], r["label"]) for r in rows]


def test_queue_interleaves_labels_for_coverage(queued):
    con, _ = queued
    review_stage.build_review_queue(con, decisions.load_all(Path("/nonexistent")))
    first_four = [
        r[0]
        for r in con.sql("SELECT response FROM review_queue ORDER BY priority LIMIT 4").fetchall()
    ]
    assert sorted(first_four) == ["billing", "billing", "login", "login"]
    assert con.sql("SELECT count(DISTINCT priority) FROM review_queue").fetchall()[0][0] == 12


def test_latest_decision_wins_and_expert_overrides(queued, tmp_path):
    con, ids = queued
    store = tmp_path / "d.sqlite"
    db = decisions.connect(store)
    decisions.record(db, _decision(ids[0], when="2026-11-01T10:00:00Z"))
    decisions.record(db, _decision(ids[0], decision="reject", when="2026-11-01T11:00:00Z"))
    decisions.record(db, _decision(ids[1], decision="edit", corrected="billing"))
    decisions.record(
        db,
        _decision(
            ids[1], who="dr_chen", role="expert", decision="accept", when="2026-11-01T09:00:00Z"
        ),
    )  # earlier, but expert wins
    decisions.record(
        db, _decision(ids[2], who="dr_chen", role="expert", decision="edit", corrected="billing")
    )
    decisions.record(db, _decision(ids[3]))
    db.close()
    frame = decisions.load_all(store)
    review_stage.build_review_queue(con, frame)
    review_stage.build_reviewed(con, frame)
    review_stage.build_verified(con, frame, validation_fraction=0.5)
    reviewed = dict(con.sql("SELECT example_id, response FROM reviewed").fetchall())
    assert ids[0] not in reviewed  # changed mind: rejected last
    assert reviewed[ids[1]] == "login"  # expert accepted the original label
    assert reviewed[ids[2]] == "billing"  # expert's edit
    verified = dict(con.sql("SELECT example_id, edited FROM verified").fetchall())
    assert verified == {ids[1]: False, ids[2]: True}
    status = dict(con.sql("SELECT example_id, review_status FROM review_queue").fetchall())
    assert (status[ids[0]], status[ids[3]], status[ids[4]]) == ("rejected", "reviewed", "pending")
    assert review_stage.split_overlap(con) == 0


def test_split_is_stable_and_by_prompt(con):
    con.execute(
        "CREATE TABLE verified AS SELECT 'same prompt' AS prompt, 'train' AS split "
        "UNION ALL SELECT 'Same  Prompt', 'validation'"
    )
    assert review_stage.split_overlap(con) == 1


def test_train_rows_near_a_validation_row_are_excluded_not_trained(con):
    con.execute(
        """CREATE TABLE verified AS SELECT * FROM (VALUES
            ('v1', 'what should I do if my card was stolen in Paris', 'lost', 'validation'),
            ('t1', 'Hello, what should I do if my card was stolen in Paris?', 'lost', 'train'),
            ('t2', 'how long does the delivery of a new card take to arrive', 'delivery', 'train')
        ) t(example_id, prompt, response, split)"""
    )
    from curation_assets.curation.review.review_stage.verification import (
        exclude_near_validation,
    )

    exclude_near_validation(con, ngram=8)
    rows = con.sql("SELECT example_id, split, near_validation FROM verified ORDER BY 1").fetchall()
    assert rows == [("t1", "excluded", "v1"), ("t2", "train", None), ("v1", "validation", None)]


_WORDS = {
    "billing": "refund the double charge on my invoice",
    "login": "reset my password, I am locked out of my account",
    "delivery": "where is my parcel, the courier never came",
}


def _varied_rows(n_per_label=30):
    """Labelled messages over two sources with short, medium and long prompts."""
    rows = []
    for label, words in _WORDS.items():
        for i in range(n_per_label):
            text = f"{words} {i}" + " please" * (i % 7) * (3 if i % 5 == 0 else 1)
            rows.append({"text": text, "label": label, "source": ("email", "chat")[i % 2]})
    return rows


def _store(tmp_path, rows):
    store = tmp_path / "d.sqlite"
    db = decisions.connect(store)
    for row in rows:
        decisions.record(db, row)
    db.close()
    return decisions.load_all(store)


def _queue(con):
    return con.sql("SELECT * FROM review_queue ORDER BY queue, priority").df()


def test_coverage_sample_is_stratified_bounded_and_deterministic(con, tmp_path):
    rows = _varied_rows()
    _filter(con, rows, tmp_path)
    config = review_stage.QueueConfig(coverage_sample_size=12, suspect_queue_size=10)
    empty = decisions.load_all(tmp_path / "none.sqlite")
    review_stage.build_review_queue(con, empty, config)
    queue = _queue(con)
    coverage = queue[queue.queue == "coverage"]
    assert len(coverage) == 12 and len(queue[queue.queue == "suspect"]) == 10
    assert queue["example_id"].is_unique
    assert sorted(coverage.response.value_counts().tolist()) == [4, 4, 4]  # labels even
    assert set(coverage.source) == {"email", "chat"}
    assert set(coverage.head(3).response) == set(_WORDS)  # labels interleaved
    assert coverage.priority.tolist() == list(range(1, 13))
    # edge cases: every label's shortest and longest prompt are in the sample
    lengths = con.sql("SELECT response, length(prompt) AS n FROM filtered").df()
    picked = coverage.assign(n=coverage.prompt.str.len()).groupby("response")["n"]
    assert picked.min().equals(lengths.groupby("response")["n"].min())
    assert picked.max().equals(lengths.groupby("response")["n"].max())
    assert coverage.queue_reason.str.contains("shortest of its label").any()
    assert coverage.queue_reason.str.startswith("coverage: ").all()

    # deterministic: same sample and order again, and from the rows in another order
    review_stage.build_review_queue(con, empty, config)
    assert _queue(con)[["example_id", "priority"]].equals(queue[["example_id", "priority"]])
    other = duckdb_file(tmp_path / "other.duckdb")
    _filter(other, list(reversed(rows)), tmp_path, name="b.jsonl")
    review_stage.build_review_queue(other, empty, config)
    again = _queue(other)
    assert again[["example_id", "queue", "priority"]].equals(
        queue[["example_id", "queue", "priority"]]
    )
    other.close()


def duckdb_file(path):
    import duckdb

    return duckdb.connect(str(path))


def test_disagreement_goes_to_an_expert_first(queued, tmp_path):
    con, ids = queued
    config = review_stage.QueueConfig(reviews_required=2)
    frame = _store(
        tmp_path,
        [
            _decision(ids[5], who="alice"),
            _decision(ids[5], who="bob", decision="edit", corrected="billing"),
            _decision(ids[6], who="alice"),
            _decision(ids[6], who="bob"),
            _decision(ids[7], who="alice"),
        ],
    )
    review_stage.build_review_queue(con, frame, config)
    queue = _queue(con).set_index("example_id")
    assert queue.loc[ids[5], "review_status"] == "needs_expert"
    assert queue.loc[ids[5], "priority"] == 1
    assert queue.loc[ids[5], "queue_reason"].startswith("reviewers disagree (alice: login;")
    assert queue.loc[ids[6], "review_status"] == "reviewed"
    assert queue.loc[ids[7], "review_status"] == "in_review"  # 1 of 2 reviews
    assert (queue.reviews_required == 2).all()
    review_stage.build_reviewed(con, frame, reviews_required=2)
    assert set(con.sql("SELECT example_id FROM reviewed").df().example_id) == {ids[6]}
    agreement = con.sql("SELECT * FROM review_agreement WHERE scope = 'overall'").df()
    assert (agreement["items"][0], agreement["observed_agreement"][0]) == (2, 0.5)

    # the expert settles it; history stays, the expert's decision decides
    frame = _store(
        tmp_path,
        [_decision(ids[5], who="dr_chen", role="expert", decision="edit", corrected="billing")],
    )
    review_stage.build_review_queue(con, frame, config)
    assert _queue(con).set_index("example_id").loc[ids[5], "review_status"] == "verified"
    review_stage.build_reviewed(con, frame, reviews_required=2)
    review_stage.build_verified(con, frame, validation_fraction=0.5)
    assert con.sql("SELECT response FROM verified").fetchall() == [("billing",)]
    assert len(frame) == 6


def _two_queue_world(con, tmp_path):
    _filter(con, _varied_rows(10), tmp_path)
    config = review_stage.QueueConfig(coverage_sample_size=6, suspect_queue_size=6)
    review_stage.build_review_queue(con, decisions.load_all(tmp_path / "none.sqlite"), config)
    queue = _queue(con)
    cov = queue[queue.queue == "coverage"].example_id.tolist()
    sus = queue[queue.queue == "suspect"].example_id.tolist()
    expert = dict(who="dr_chen", role="expert")
    frame = _store(
        tmp_path,
        [
            _decision(cov[0], **expert),
            _decision(cov[1], **expert, decision="reject"),
            _decision(sus[0], **expert, decision="edit", corrected="delivery"),
            _decision(sus[1], **expert),
            _decision(sus[2], who="alice", decision="edit", corrected="billing"),
        ],
    )
    return config, frame, cov, sus


def test_suspect_fixes_clean_reviewed_but_reach_verified_only_when_configured(con, tmp_path):
    config, frame, cov, sus = _two_queue_world(con, tmp_path)
    review_stage.build_review_queue(con, frame, config)
    status = dict(con.sql("SELECT example_id, review_status FROM review_queue").fetchall())
    assert (status[cov[0]], status[cov[1]], status[sus[0]]) == (
        "verified",
        "rejected",
        "expert_checked",
    )
    review_stage.build_reviewed(con, frame)
    reviewed = con.sql("SELECT example_id, from_queue, response FROM reviewed").df()
    marks = dict(zip(reviewed.example_id, reviewed.from_queue, strict=True))
    assert marks == {cov[0]: "coverage", sus[0]: "suspect", sus[1]: "suspect", sus[2]: "suspect"}
    assert reviewed.set_index("example_id").loc[sus[0], "response"] == "delivery"

    review_stage.build_verified(con, frame, validation_fraction=0.5)
    assert [r[0] for r in con.sql("SELECT example_id FROM verified").fetchall()] == [cov[0]]
    review_stage.build_verified(con, frame, validation_fraction=0.5, take_suspect_fixes=True)
    verified = {r[0] for r in con.sql("SELECT example_id FROM verified").fetchall()}
    assert verified == {cov[0], sus[0], sus[1]}  # alice is a reviewer, not an expert


def test_decided_examples_keep_their_queue(con, tmp_path):
    config, frame, cov, sus = _two_queue_world(con, tmp_path)
    review_stage.build_review_queue(con, frame, config)
    smaller = review_stage.QueueConfig(coverage_sample_size=1, suspect_queue_size=1)
    review_stage.build_review_queue(con, frame, smaller)
    queue = _queue(con)
    kept = dict(zip(queue.example_id, queue.queue, strict=True))
    assert {cov[0], cov[1]} <= {e for e, q in kept.items() if q == "coverage"}
    assert {sus[0], sus[1], sus[2]} <= {e for e, q in kept.items() if q == "suspect"}
    assert len(kept) == 5  # undecided examples left the shrunken queues


def test_expert_time_accounting(queued, tmp_path):
    con, ids = queued
    rows = [_decision(ids[i], who="dr_chen", role="expert") for i in range(3)]
    rows[0]["seconds_spent"], rows[1]["seconds_spent"], rows[2]["seconds_spent"] = 10, 20, 30
    frame = _store(tmp_path, [*rows, _decision(ids[3])])
    review_stage.build_review_queue(con, frame)
    review_stage.build_reviewed(con, frame)
    review_stage.build_verified(con, frame, validation_fraction=0.5)
    accounting = review_stage.expert_time(con)
    assert accounting["expert_decisions"] == 3
    assert accounting["expert_seconds_per_decision"] == 20.0
    assert accounting["expert_decisions_per_hour"] == 180.0  # 3600 * 3 / 60
    assert accounting["expert_seconds_per_verified_example"] == 20.0


@pytest.mark.integration  # a Dagster run: the asset, its GX audit and a suspect-model fit
def test_review_queue_asset_publishes_both_queues(tmp_path):
    import dagster as dg

    from curation_assets.defs.resources import build_resources
    from curation_assets.defs.review.assets import review_queue

    settings = Settings(
        data_dir=tmp_path / "data",
        labels=("billing", "login", "delivery"),
        coverage_sample_size=9,
        suspect_queue_size=5,
        reviews_required=2,
        suspect_encoder="none",
    )
    resources = build_resources(settings)
    with resources["duckdb"].get_connection() as con:
        _filter(con, _varied_rows(10), tmp_path)
    result = dg.materialize([review_queue], resources=resources)
    assert result.success
    published = decisions.load_queue(settings.decision_store)
    assert list(published.columns) == list(decisions.QUEUE_COLUMNS)
    assert published.groupby("queue").size().to_dict() == {"coverage": 9, "suspect": 5}
    assert (published.reviews_required == 2).all()
    for column in ("flags", "pii", "near_duplicates"):
        assert published[column].map(json.loads).map(lambda v: isinstance(v, list)).all()
    assert published.score.between(0, 1).all() and published.queue_reason.notna().all()
    meta = result.asset_materializations_for_node("review_queue")[0].metadata
    assert meta["coverage_examples"].value == 9 and meta["published_to_review_app"].value == 14
    with resources["duckdb"].get_connection() as con:  # what the warehouse queued, all of it
        queued = set(con.sql("SELECT example_id, queue FROM review_queue").fetchall())
    assert set(zip(published.example_id, published.queue, strict=True)) == queued
    assert "run_overrides" not in meta
    lineage = meta["dagster/column_lineage"].value.deps_by_column
    assert lineage["prompt"][0].asset_key == dg.AssetKey("filtered")

    # the launchpad's queue size, for one run: the settings keep theirs
    config = {"ops": {"review_queue": {"config": {"coverage_sample_size": 4}}}}
    result = dg.materialize([review_queue], resources=resources, run_config=config)
    assert result.success
    published = decisions.load_queue(settings.decision_store)
    assert published.groupby("queue").size().to_dict() == {"coverage": 4, "suspect": 5}
    meta = result.asset_materializations_for_node("review_queue")[0].metadata
    assert meta["run_overrides"].value == {"coverage_sample_size": 4}
    # ...for that run only: the next run without it is back to the settings' size
    assert dg.materialize([review_queue], resources=resources).success
    assert decisions.load_queue(settings.decision_store).groupby("queue").size()["coverage"] == 9


def test_queue_shows_what_the_filter_stage_found(con):
    """Rule warnings, PII findings and near duplicates, from whatever filtered provides."""
    con.execute(
        """CREATE TABLE filtered AS SELECT * FROM (VALUES
               ('e1', 'r1', 'b', 'email me at [EMAIL] about the refund', 'billing',
                ['mojibake']),
               ('e2', 'r2', 'b', 'refund the double charge please', 'billing', NULL),
               ('e3', 'r3', 'b', 'reset my password now', 'login', NULL),
               ('e4', 'r4', 'b', 'I am locked out of my account', 'login', NULL))
           t(example_id, record_id, batch, prompt, response, warnings)"""
    )
    con.execute("ALTER TABLE filtered ADD COLUMN source VARCHAR")
    con.execute(
        "CREATE TABLE raw_scrapes AS SELECT 'r9' AS record_id, 'e9' AS example_id, "
        "'refund the double charge pls' AS prompt"
    )
    con.execute(
        "CREATE TABLE near_duplicates AS SELECT 'r9' AS record_id, 2 AS cluster_id, "
        "'r2' AS representative_record_id"
    )
    con.execute(
        """CREATE TABLE pii_redactions AS SELECT 'r1' AS record_id, 'prompt' AS "column",
           'email' AS kind, 12 AS start, 25 AS "end", 12 AS out_start, 19 AS out_end"""
    )
    review_stage.build_review_queue(con, decisions.load_all(Path("/nonexistent")))
    items = review_stage.queue_for_app(con).set_index("example_id")
    assert json.loads(items.loc["e1", "flags"]) == [{"rule": "mojibake", "reason": "mojibake"}]
    assert json.loads(items.loc["e1", "pii"]) == [
        {"field": "prompt", "kind": "email", "start": 12, "end": 19}
    ]
    assert json.loads(items.loc["e2", "near_duplicates"]) == [
        {"example_id": "e9", "prompt": "refund the double charge pls"}
    ]
    assert items.loc["e3", ["flags", "pii", "near_duplicates"]].tolist() == ["[]"] * 3
    assert "rule warnings" in items.loc["e1", "queue_reason"]
