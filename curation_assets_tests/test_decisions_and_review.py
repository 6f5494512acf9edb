"""Decision store (append-only, idempotent import) and the review stages built from it."""

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from curation_assets.core import decisions, filtering, ingest, review
from curation_assets.core.records import example_id


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


@pytest.fixture
def queued(con, tmp_path):
    rows = [{"text": f"please reset my password {i}", "label": "login"} for i in range(6)]
    rows += [{"text": f"refund the double charge {i}", "label": "billing"} for i in range(6)]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    ingest.store_batch(con, ingest.read_file(path, {}, 10_000), datetime(2026, 1, 1))
    filtering.run_filters(
        con,
        filtering.rules_for(
            min_prompt_chars=3, max_prompt_chars=500, min_response_chars=1, max_response_chars=50
        ),
    )
    return con, [example_id(r["text"], r["label"]) for r in rows]


def test_queue_interleaves_labels_for_coverage(queued):
    con, _ = queued
    review.build_review_queue(con, decisions.load_all(Path("/nonexistent")))
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
    review.build_review_queue(con, frame)
    review.build_reviewed(con, frame)
    review.build_verified(con, frame, validation_fraction=0.5)
    reviewed = dict(con.sql("SELECT example_id, response FROM reviewed").fetchall())
    assert ids[0] not in reviewed  # changed mind: rejected last
    assert reviewed[ids[1]] == "login"  # expert accepted the original label
    assert reviewed[ids[2]] == "billing"  # expert's edit
    verified = dict(con.sql("SELECT example_id, edited FROM verified").fetchall())
    assert verified == {ids[1]: False, ids[2]: True}
    status = dict(con.sql("SELECT example_id, review_status FROM review_queue").fetchall())
    assert (status[ids[0]], status[ids[3]], status[ids[4]]) == ("rejected", "reviewed", "pending")
    assert review.split_overlap(con) == 0


def test_split_is_stable_and_by_prompt(con):
    con.execute(
        "CREATE TABLE verified AS SELECT 'same prompt' AS prompt, 'train' AS split "
        "UNION ALL SELECT 'Same  Prompt', 'validation'"
    )
    assert review.split_overlap(con) == 1
