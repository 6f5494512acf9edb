"""The filter stage is a function of the raw content (issue #13): re-ingesting an
unchanged file, or ingesting the same files in another order or in other runs, changes
neither ``filtered`` nor ``rejections``; per-record caches never keep rows of records that
left or changed; a tampered ``rejections`` fails its audit."""

import json
from datetime import datetime

import duckdb
import pytest

from curation_assets.curation.expectations import run_validations
from curation_assets.curation.filtering import filter_stage
from curation_assets.curation.ingest import intake
from curation_assets.defs.filtering.suites import rejections_expectations

pytestmark = pytest.mark.integration  # whole filter-stage runs: ./scripts/test --fast skips it

CFG = filter_stage.FilterConfig(task_type="instruction", pii_key=b"test")
BASE = "Explain why the sky looks blue during the day to a curious child in simple words"
LONG = (
    "Sunlight is made of many colours, and when it passes through the air the small gas "
    "molecules scatter the short blue waves much more than the long red ones, so blue "
    "light reaches your eyes from every part of the sky and the whole sky looks blue."
)
A = [
    {"instruction": BASE + ".", "output": LONG},
    {"instruction": "Name a mammal that can fly.", "output": "The bat is a mammal that flies."},
    {"instruction": "Write to bob@example.com about the meeting.", "output": "Dear Bob, ok."},
]
B = [
    A[1],  # an exact duplicate of a.jsonl:2
    {"instruction": BASE + ".", "output": LONG + " Really."},  # near duplicate of a:1
    {"instruction": "Pourquoi le ciel est-il bleu pendant la journée ?", "output": "La lumière."},
]


def _write(tmp_path, name, rows):
    path = tmp_path / "files" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


def _ingest(con, tmp_path, name, rows, when):
    path = _write(tmp_path, name, rows)
    intake.store_batch(con, intake.read_file(path, {}, 100_000), when)


def _state(con):
    kept = con.sql("SELECT record_id, prompt, response FROM filtered ORDER BY ALL").fetchall()
    rejected = con.sql("SELECT record_id, rule, reason FROM rejections ORDER BY ALL").fetchall()
    return kept, rejected


def test_reingesting_an_unchanged_file_changes_nothing(con, tmp_path):
    _ingest(con, tmp_path, "a.jsonl", A, datetime(2026, 1, 1))
    _ingest(con, tmp_path, "b.jsonl", B, datetime(2026, 1, 2))
    filter_stage.run_stage(con, CFG)
    first = _state(con)
    assert {rule for _, rule, _ in first[1]} >= {"exact_duplicate", "near_duplicate"}
    filter_stage.run_stage(con, CFG)
    assert _state(con) == first
    # same name, same bytes, a later ingested_at (what copying it into the inbox again does)
    _ingest(con, tmp_path, "a.jsonl", A, datetime(2026, 1, 3))
    filter_stage.run_stage(con, CFG)
    assert _state(con) == first


@pytest.mark.parametrize("plan", ["reversed_runs", "one_run", "reversed_times"])
def test_order_of_arrival_does_not_decide(con, tmp_path, plan):
    _ingest(con, tmp_path, "a.jsonl", A, datetime(2026, 1, 1))
    _ingest(con, tmp_path, "b.jsonl", B, datetime(2026, 1, 2))
    filter_stage.run_stage(con, CFG)
    expected = _state(con)
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    try:
        if plan == "reversed_runs":  # b first, a in a later run
            _ingest(other, tmp_path, "b.jsonl", B, datetime(2026, 1, 1))
            filter_stage.run_stage(other, CFG)
            _ingest(other, tmp_path, "a.jsonl", A, datetime(2026, 1, 2))
        elif plan == "one_run":
            _ingest(other, tmp_path, "a.jsonl", A, datetime(2026, 1, 1))
            _ingest(other, tmp_path, "b.jsonl", B, datetime(2026, 1, 1))
        else:  # one run, a ingested after b
            _ingest(other, tmp_path, "b.jsonl", B, datetime(2026, 1, 1))
            _ingest(other, tmp_path, "a.jsonl", A, datetime(2026, 1, 2))
        filter_stage.run_stage(other, CFG)
        assert _state(other) == expected
    finally:
        other.close()


#: Per-record caches: table -> the column holding the content key.
CACHES = {
    "record_flags": "example_id",
    "record_rejections": "example_id",
    "language_annotations": "example_id",
    "annotations_versions": "example_id",
    "contamination": "example_id",
    "pii_scanned": "example_id",
}


def test_a_changed_file_leaves_no_stale_cache_rows(con, tmp_path):
    _ingest(con, tmp_path, "a.jsonl", A, datetime(2026, 1, 1))
    _ingest(con, tmp_path, "b.jsonl", B, datetime(2026, 1, 2))
    filter_stage.run_stage(con, CFG)
    old = dict(con.sql("SELECT record_id, example_id FROM raw_scrapes").fetchall())
    # a.jsonl dropped again, changed: line 3 edited (no PII any more), line 2 removed
    changed = [A[0], {"instruction": "Write to Bob about the meeting.", "output": "Dear Bob."}]
    _ingest(con, tmp_path, "a.jsonl", changed, datetime(2026, 1, 3))
    report = filter_stage.run_stage(con, CFG)
    assert report.new_records["language"] == 1  # only the edited record is read again
    assert report.new_records["record_rules"] == 1
    raw = dict(con.sql("SELECT record_id, example_id FROM raw_scrapes").fetchall())
    assert old["a.jsonl:2"] != raw["a.jsonl:2"]
    for table, key in CACHES.items():
        rows = con.sql(f"SELECT DISTINCT record_id, {key} FROM {table}").fetchall()
        assert set(rows) <= set(raw.items()), table  # nothing stale
    for table in ("annotations", "pii_redactions", "minhash_docs", "near_duplicates"):
        ids = {r for (r,) in con.sql(f"SELECT record_id FROM {table}").fetchall()}
        assert ids <= set(raw), table
    assert "a.jsonl:3" not in {
        r for (r,) in con.sql("SELECT record_id FROM minhash_docs").fetchall()
    }
    # the old masked text of the edited record never comes back
    assert con.sql(
        "SELECT count(*) FROM pii_redactions WHERE record_id = 'a.jsonl:2'"
    ).fetchall() == [(0,)]
    masked = con.sql("SELECT prompt FROM filtered WHERE record_id = 'a.jsonl:2'").fetchall()
    assert masked == [(changed[1]["instruction"],)]
    # and the result is the one a fresh warehouse gives
    fresh = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    try:
        _ingest(fresh, tmp_path, "a.jsonl", changed, datetime(2026, 1, 1))
        _ingest(fresh, tmp_path, "b.jsonl", B, datetime(2026, 1, 1))
        filter_stage.run_stage(fresh, CFG)
        assert _state(fresh) == _state(con)
    finally:
        fresh.close()


def test_rejections_audit_passes_and_catches_tampering(con, tmp_path):
    _ingest(con, tmp_path, "a.jsonl", A, datetime(2026, 1, 1))
    _ingest(con, tmp_path, "b.jsonl", B, datetime(2026, 1, 2))
    filter_stage.run_stage(con, CFG)
    names = [r.name for r in filter_stage.rules(CFG)]
    assert run_validations(con, rejections_expectations(names)).success
    tampering = [
        "UPDATE rejections SET reason = '' WHERE rule = 'exact_duplicate'",
        "UPDATE rejections SET rule = 'made_up' WHERE rule = 'exact_duplicate'",
        "INSERT INTO rejections SELECT 'nowhere:1', 'x', 'a.jsonl', 1, 'near_duplicate', 'r'",
        "INSERT INTO rejections SELECT record_id, example_id, batch, line_no, 'exact_duplicate', "
        "'r' FROM filtered LIMIT 1",  # kept and rejected: also breaks the accounting
        "DELETE FROM rejections WHERE rule = 'near_duplicate'",  # a record lost
        "INSERT INTO rejections SELECT * FROM rejections LIMIT 1",  # counted twice
    ]
    for sql in tampering:
        con.execute("BEGIN TRANSACTION")
        con.execute(sql)
        result = run_validations(con, rejections_expectations(names))
        con.execute("ROLLBACK")
        assert not result.success, sql
