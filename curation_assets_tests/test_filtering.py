"""Filter rules: each rule fires on what it names, reasons are kept, counts add up."""

import json
from datetime import datetime

import pytest

from curation_assets.curation.filtering import generic_rules, rule_engine
from curation_assets.curation.ingest import intake

RULES = generic_rules.rules_for(
    min_prompt_chars=8,
    max_prompt_chars=60,
    min_response_chars=1,
    max_response_chars=20,
    labels=("billing", "login"),
)


def _load(con, tmp_path, name, rows, when):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    intake.store_batch(con, intake.read_file(path, {}, 10_000), when)


def _rules_by_record(con):
    out = {}
    for record_id, rule in con.sql("SELECT record_id, rule FROM rejections").fetchall():
        out.setdefault(record_id, set()).add(rule)
    return out


def test_each_rule_fires_and_every_reason_is_kept(con, tmp_path):
    _load(
        con,
        tmp_path,
        "a.jsonl",
        [
            {"text": "refund my last invoice", "label": "billing"},  # 1 kept
            {"text": "hi", "label": "billing"},  # 2 too short
            {"text": "x" * 80, "label": "login"},  # 3 too long
            {"text": "cannot sign in to my account", "label": "shipping"},  # 4 label not allowed
            {"text": "ok", "label": "nonsense"},  # 5 short + label
            {"text": "Refund my last   INVOICE", "label": "billing"},  # 6 duplicate of 1
        ],
        datetime(2026, 1, 1),
    )
    rule_engine.run_filters(con, RULES)
    fired = _rules_by_record(con)
    assert fired == {
        "a.jsonl:2": {"prompt_too_short"},
        "a.jsonl:3": {"prompt_too_long"},
        "a.jsonl:4": {"label_not_allowed"},
        "a.jsonl:5": {"prompt_too_short", "label_not_allowed"},
        "a.jsonl:6": {"exact_duplicate"},
    }
    reason = con.sql("SELECT reason FROM rejections WHERE record_id = 'a.jsonl:6'").fetchall()
    assert reason[0][0].endswith("duplicate of a.jsonl:1")
    label_reason = con.sql(
        "SELECT reason FROM rejections WHERE record_id = 'a.jsonl:4'"
    ).fetchall()[0][0]
    assert '"shipping"' in label_reason
    assert con.sql("SELECT record_id FROM filtered").fetchall() == [("a.jsonl:1",)]


def test_duplicates_across_batches_keep_the_first_batch_by_name(con, tmp_path):
    """The kept copy is the first by batch name and line, not by time of ingest: dropping
    a file again (a new ``ingested_at``) must not change which copy is kept."""
    row = {"text": "my parcel never arrived", "label": "billing"}
    _load(con, tmp_path, "z_second.jsonl", [row], datetime(2026, 1, 1))
    _load(con, tmp_path, "a_first.jsonl", [row], datetime(2026, 1, 2))
    rule_engine.run_filters(con, RULES)
    assert con.sql("SELECT batch FROM filtered").fetchall() == [("a_first.jsonl",)]
    assert set(_rules_by_record(con)) == {"z_second.jsonl:1"}
    _load(con, tmp_path, "a_first.jsonl", [row], datetime(2026, 1, 3))  # ingested again
    rule_engine.run_filters(con, RULES)
    assert con.sql("SELECT batch FROM filtered").fetchall() == [("a_first.jsonl",)]
    assert set(_rules_by_record(con)) == {"z_second.jsonl:1"}


def test_accounting_adds_up_per_batch(con, tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"text": "refund my last invoice", "label": "billing"}\n{bad\n'
        '{"text": "hi", "label": "login"}\n'
    )
    intake.store_batch(con, intake.read_file(path, {}, 10_000), datetime(2026, 1, 1))
    rule_engine.run_filters(con, RULES)
    row = rule_engine.batch_accounting(con).df().iloc[0]
    assert (row.units_read, row.kept, row.rejected, row.quarantined) == (3, 1, 1, 1)
    assert row.unaccounted == 0


@pytest.mark.parametrize("labels, fires", [((), False), (("billing",), True)])
def test_label_rule_only_with_a_label_set(labels, fires):
    names = {
        r.name
        for r in generic_rules.rules_for(
            min_prompt_chars=1,
            max_prompt_chars=9,
            min_response_chars=1,
            max_response_chars=9,
            labels=labels,
        )
    }
    assert ("label_not_allowed" in names) is fires
