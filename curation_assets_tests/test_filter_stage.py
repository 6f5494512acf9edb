"""The composed ``filtered`` stage: every rule family on one warehouse, incrementally."""

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from curation_assets.curation.filtering import document_rules, filter_stage, pair_rules, rule_engine
from curation_assets.curation.ingest import intake

CFG = filter_stage.FilterConfig(task_type="instruction", min_prompt_chars=8)

GOOD = [
    {
        "instruction": "Explain why the sky looks blue during the day.",
        "output": "Sunlight is scattered by the molecules of the air, and blue light, "
        "with its shorter wavelength, is scattered much more than red light.",
    },
    {
        "instruction": "Give three tips for staying healthy.",
        "output": "Eat a balanced diet, sleep seven to nine hours a night, and exercise "
        "for at least thirty minutes most days of the week.",
    },
    {
        "instruction": "Write a short note asking a colleague to send the report.",
        "output": "Hi Sam, could you send me the quarterly report when you have a moment? "
        "You can reach me at sam.jones@example.com or on +1 650 253 0000. Thanks!",
    },
    {
        "instruction": "Summarize the plot of Romeo and Juliet in one sentence.",
        "output": "Two young lovers from feuding families in Verona marry in secret, and a "
        "chain of misunderstandings ends with both of them dead.",
    },
]


def _load(con, tmp_path, name, rows, when):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    intake.store_batch(con, intake.read_file(path, {}, 100_000), when)


def _reworded(prefix: str) -> dict:
    """``GOOD[0]`` with ``prefix`` before its instruction: a near copy of it."""
    return dict(GOOD[0], instruction=prefix + GOOD[0]["instruction"])


def _as_evaluation(con, where: str = "true"):
    """Raw records as evaluation examples (``eval_id`` = their example id)."""
    return con.execute(
        "SELECT example_id AS eval_id, prompt || ' ' || response AS text FROM raw_scrapes "
        f"WHERE {where}"
    ).df()


#: Decontamination and the rules only: no near-duplicate removal.
NO_DEDUP = filter_stage.FilterConfig(task_type="instruction", dedup_threshold=None)


def _fired(con) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for record_id, rule in con.sql("SELECT record_id, rule FROM rejections").fetchall():
        out.setdefault(record_id, set()).add(rule)
    return out


def test_rule_families_fire_on_their_defects_and_counts_add_up(con, tmp_path):
    near = dict(GOOD[0])
    near["output"] = near["output"] + " That is all."
    bad = [
        *GOOD,
        near,  # 5: near duplicate of 1
        {"instruction": "Describe the image.", "input": "<Picture Attached>", "output": "A cat."},
        {
            "instruction": "Pourquoi le ciel est-il bleu pendant la journée ?",
            "output": "La "
            "lumière du soleil est diffusée par l'air, et le bleu davantage que le rouge.",
        },
        {"instruction": "Translate the word to French.", "input": "dog", "output": "N/A"},
    ]
    _load(con, tmp_path, "a.jsonl", bad, datetime(2026, 1, 1))
    report = filter_stage.run_stage(con, CFG)
    fired = _fired(con)
    assert "a.jsonl:1" not in fired and "a.jsonl:2" not in fired
    assert fired["a.jsonl:5"] == {"near_duplicate"}
    assert "missing_input_media" in fired["a.jsonl:6"]
    assert "language_not_allowed" in fired["a.jsonl:7"]
    assert "empty_response" in fired["a.jsonl:8"]
    kept = con.execute("SELECT count(*) FROM filtered").fetchall()[0][0]
    assert kept + len(fired) == 8
    assert report.new_records["record_rules"] == 8


def test_pii_is_masked_in_filtered_and_every_span_recorded(con, tmp_path):
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 1))
    filter_stage.run_stage(con, CFG)
    response = con.execute(
        "SELECT response FROM filtered WHERE record_id = 'a.jsonl:3'"
    ).fetchall()[0][0]
    assert "sam.jones@example.com" not in response and "253 0000" not in response
    assert "[EMAIL]" in response or "EMAIL" in response
    spans = con.sql(
        "SELECT kind, value_hash FROM pii_redactions WHERE record_id = 'a.jsonl:3'"
    ).df()
    assert sorted(spans["kind"]) == ["email", "phone"]
    assert not spans["value_hash"].str.contains("@").any()  # hashes only, never the value
    raw = con.execute("SELECT response FROM raw_scrapes WHERE record_id = 'a.jsonl:3'").fetchall()
    assert "sam.jones@example.com" in raw[0][0]  # the original stays in raw_scrapes


def test_second_batch_is_processed_alone_and_deduplicated_against_the_past(con, tmp_path):
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 1))
    filter_stage.run_stage(con, CFG)
    again = dict(GOOD[1])
    again["output"] = again["output"] + " Good luck!"
    fresh = {
        "instruction": "Name a mammal that can fly.",
        "output": "The bat is the only mammal capable of true, sustained flight.",
    }
    _load(con, tmp_path, "b.jsonl", [again, fresh], datetime(2026, 1, 2))
    report = filter_stage.run_stage(con, CFG)
    assert report.new_records["record_rules"] == 2
    assert report.new_records["near_dedup"] == 2
    assert report.new_records["pii"] == 1  # only the newly kept record was scanned
    fired = _fired(con)
    assert fired["b.jsonl:1"] == {"near_duplicate"}
    assert "b.jsonl:2" not in fired
    # the first batch's representative survives: the old record is never the one dropped
    assert "a.jsonl:2" not in fired


def test_decontamination_drops_overlap_with_eval_files_and_validation(con, tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(
        json.dumps(
            {
                "prompt": "Summarize the plot of Romeo and Juliet in one sentence.",
                "response": "Two young lovers from feuding families in Verona marry in secret",
            }
        )
        + "\n"
    )
    cfg = filter_stage.FilterConfig(task_type="instruction", eval_files=(eval_file,))
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 1))
    filter_stage.run_stage(con, cfg)
    fired = _fired(con)
    assert fired == {"a.jsonl:4": {"contaminated"}}
    reason = con.execute("SELECT reason FROM rejections WHERE record_id = 'a.jsonl:4'").fetchall()[
        0
    ][0]
    assert "eval.jsonl:1" in reason
    # an evaluation example that is itself a raw record (eval_id = its example_id)
    # contaminates its copies, never itself
    first = _as_evaluation(con, "record_id = 'a.jsonl:1'")
    _load(con, tmp_path, "b.jsonl", [_reworded("Please explain: ")], datetime(2026, 1, 2))
    filter_stage.run_stage(con, NO_DEDUP, first)
    fired = _fired(con)
    assert fired.get("b.jsonl:1") == {"contaminated"}
    assert "a.jsonl:1" not in fired


def test_verified_downstream_is_not_read(con, tmp_path):
    """``verified`` is downstream of ``filtered``: its validation split must not change the
    next run (it did: run 2 rejected as contaminated what run 1 kept and reviewed). The
    review stage excludes train examples near a validation example itself."""
    _load(con, tmp_path, "a.jsonl", [GOOD[0], _reworded("Please explain: ")], datetime(2026, 1, 1))
    filter_stage.run_stage(con, NO_DEDUP)
    before = _fired(con)
    con.execute(
        "CREATE TABLE verified AS SELECT example_id, prompt, response, 'validation' AS split "
        "FROM raw_scrapes WHERE record_id = 'a.jsonl:1'"
    )
    filter_stage.run_stage(con, NO_DEDUP)
    assert _fired(con) == before


def test_validation_examples_never_remove_each_other(con, tmp_path):
    """Two near-identical validation examples stay; a third copy (a training candidate) goes."""
    _load(con, tmp_path, "a.jsonl", [GOOD[0], _reworded("Please explain: ")], datetime(2026, 1, 1))
    filter_stage.run_stage(con, filter_stage.FilterConfig(task_type="instruction"))
    validation = _as_evaluation(con)
    _load(con, tmp_path, "b.jsonl", [_reworded("Tell me: ")], datetime(2026, 1, 2))
    filter_stage.run_stage(con, NO_DEDUP, validation)
    fired = _fired(con)
    assert "a.jsonl:1" not in fired and "a.jsonl:2" not in fired
    assert fired.get("b.jsonl:1") == {"contaminated"}


def test_classification_gets_label_rules_and_conflicts(con, tmp_path):
    rows = [
        {"text": "my card has not arrived yet", "label": "card_arrival"},
        {"text": "My card has  not arrived YET", "label": "card_delivery_estimate"},
        {"text": "when will the card get here", "label": "nonsense_label"},
    ]
    _load(con, tmp_path, "c.jsonl", rows, datetime(2026, 1, 1))
    cfg = filter_stage.FilterConfig(
        labels=("card_arrival", "card_delivery_estimate"), dedup_threshold=None
    )
    filter_stage.run_stage(con, cfg)
    fired = _fired(con)
    assert fired["c.jsonl:1"] == {"conflicting_labels"}
    assert fired["c.jsonl:2"] == {"conflicting_labels"}
    assert "label_not_allowed" in fired["c.jsonl:3"]
    assert con.execute("SELECT count(*) FROM filtered").fetchall()[0][0] == 0


def test_changed_thresholds_recompute_cached_flags(con, tmp_path):
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 1))
    filter_stage.run_stage(con, CFG)
    strict = filter_stage.FilterConfig(task_type="instruction", max_response_chars=120)
    report = filter_stage.run_stage(con, strict)
    assert report.new_records["record_rules"] == 4
    long_ones = pd.DataFrame(GOOD)["output"].str.len().gt(120).sum()
    assert (
        con.execute("SELECT count(*) FROM rejections WHERE rule = 'response_too_long'").fetchall()[
            0
        ][0]
        == long_ones
    )


def test_web_documents_are_ingested_and_get_document_rules_not_pair_rules(con, tmp_path):
    data = Path(__file__).parent / "data" / "documents"
    warc = intake.read_file(data / "crawl-sample.warc.gz", {}, 1_000_000)
    page = intake.read_file(data / "own-article.html", {}, 1_000_000)
    assert warc.file_format == "warc" and page.file_format == "html"
    assert len(warc.records) > 0 and len(page.records) == 1
    intake.store_batch(con, warc, datetime(2026, 1, 1))
    intake.store_batch(con, page, datetime(2026, 1, 1))
    # an instruction batch beside them: its records must never meet a document rule
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 2))
    filter_stage.run_stage(con, CFG)
    by_rule = dict(con.sql("SELECT rule, count(*) FROM rejections GROUP BY 1").fetchall())
    document_rule_names = {r.name for r in document_rules.document_rules()}
    pair_only = {r.name for r in pair_rules.pair_rules()} - {"near_duplicate"}
    fired = con.sql("SELECT record_id, rule FROM rejections").df()
    on_pairs = fired[fired["record_id"].str.startswith("a.jsonl")]
    on_docs = fired[~fired["record_id"].str.startswith("a.jsonl")]
    assert on_pairs.empty
    assert not set(on_docs["rule"]) & pair_only  # e.g. no empty_response on a web page
    assert set(by_rule) <= document_rule_names | {
        "exact_duplicate",
        "near_duplicate",
        "language_not_allowed",
        "prompt_too_short",
    }
    kept_docs = con.execute(
        "SELECT count(*) FROM filtered WHERE record_id NOT LIKE 'a.jsonl%'"
    ).fetchall()[0][0]
    total_docs = len(warc.records) + len(page.records)
    assert kept_docs + on_docs["record_id"].nunique() == total_docs


def _outcome(con) -> tuple[set, set, set, set]:
    """Kept rows (masked text), rejections by (record, rule), their reasons (a near
    duplicate's reason is left out: it names the closest match the index saw), and
    ``filter_flags``."""
    kept = set(con.execute("SELECT record_id, prompt, response FROM filtered").fetchall())
    fired = set(con.execute("SELECT record_id, rule FROM rejections").fetchall())
    reasons = set(
        con.execute(
            "SELECT record_id, rule, reason FROM rejections WHERE rule <> 'near_duplicate'"
        ).fetchall()
    )
    flags = set(con.execute("SELECT * FROM filter_flags").fetchall())
    return kept, fired, reasons, flags


@pytest.mark.integration  # two warehouses, five runs: as in test_filter_idempotency
def test_incremental_runs_decide_as_one_run_over_the_same_data(con, tmp_path):
    """Batches A then B (and A re-ingested with one record changed) give the same
    ``filtered`` and ``rejections`` as a fresh warehouse with A' and B run once."""
    import duckdb

    data = Path(__file__).parent / "data" / "documents"
    warc = intake.read_file(data / "crawl-sample.warc.gz", {}, 1_000_000)
    page = intake.read_file(data / "own-article.html", {}, 1_000_000)
    junk_path = tmp_path / "junk.html"
    junk_path.write_text(
        "<html><head><title>Deals</title></head><body><p>Subscribe now! Subscribe now!"
        "</p><ul>" + "<li>Buy</li>" * 20 + "</ul></body></html>"
    )
    junk = intake.read_file(junk_path, {}, 1_000_000)
    near = dict(GOOD[0], output=GOOD[0]["output"] + " That is all.")
    a_rows = [
        *GOOD,
        {"instruction": "Describe the image.", "input": "<Picture Attached>", "output": "A cat."},
        {"instruction": "Translate the word to French.", "input": "dog", "output": "N/A"},
        {"instruction": "Say hi.", "output": "hi"},
    ]
    # the same file again with one record edited (new content, same record id)
    a_changed = [*a_rows[:-1], {"instruction": "Say hello politely.", "output": "Hello there!"}]
    b_rows = [
        near,  # near duplicate of A:1
        GOOD[2],  # exact duplicate of A:3
        {"instruction": "Name a mammal that can fly.", "output": "The bat can fly."},
        {"instruction": "Name a mammal that can fly.", "output": "The bat can fly."},
        {
            "instruction": "Pourquoi le ciel est-il bleu pendant la journée ?",
            "output": "La lumière du soleil est diffusée par l'air, et le bleu davantage.",
        },
        {"instruction": "Fix the quote.", "output": "Itâ€™s a lovely day, isnâ€™t it?"},
        {"instruction": "Clean\x07 this text.", "output": "Clean this text."},
    ]

    def load_all(target, steps):
        for name, rows, when in steps:
            _load(target, tmp_path, name, rows, when)

    jan1, jan2 = datetime(2026, 1, 1), datetime(2026, 1, 2)
    # a late file whose name sorts first: A:2 becomes the duplicate of its copy (and the
    # MinHash index is rebuilt from that batch on)
    late = ("0_late.jsonl", [GOOD[1]], datetime(2026, 1, 3))
    # evaluation data that arrives with the second run: A:4 becomes contaminated
    evaluation = pd.DataFrame(
        {"eval_id": ["e1"], "text": [GOOD[3]["instruction"] + " " + GOOD[3]["output"]]}
    )
    intake.store_batch(con, warc, jan1)
    load_all(con, [("a.jsonl", a_rows, jan1)])
    filter_stage.run_stage(con, CFG)
    intake.store_batch(con, page, jan2)
    intake.store_batch(con, junk, jan2)
    load_all(con, [("b.jsonl", b_rows, jan2), ("a.jsonl", a_changed, jan1), late])
    report = filter_stage.run_stage(con, CFG, evaluation)
    assert report.new_records["record_rules"] == 2 + len(b_rows) + 2  # pages, B, A:7, C
    incremental = _outcome(con)

    fresh = duckdb.connect(str(tmp_path / "fresh.duckdb"))
    try:
        intake.store_batch(fresh, warc, jan1)
        intake.store_batch(fresh, page, jan2)
        intake.store_batch(fresh, junk, jan2)
        load_all(fresh, [("a.jsonl", a_changed, jan1), ("b.jsonl", b_rows, jan2), late])
        filter_stage.run_stage(fresh, CFG, evaluation)
        once = _outcome(fresh)
        unaccounted = fresh.sql(
            "SELECT sum(unaccounted) FROM (" + rule_engine.batch_accounting_sql() + ")"
        ).fetchall()[0][0]
    finally:
        fresh.close()
    assert incremental == once
    fired = {rule for _, rule in once[1]}
    assert {"near_duplicate", "exact_duplicate", "language_not_allowed", "mojibake"} <= fired
    assert {"control_characters", "missing_input_media", "empty_response"} <= fired
    assert fired & {r.name for r in document_rules.document_rules()}
    assert ("a.jsonl:7", "response_too_short") not in once[1]  # the edited record, re-judged
    assert ("a.jsonl:2", "exact_duplicate") in once[1]  # old records' corpus flags changed
    assert ("a.jsonl:4", "contaminated") in once[1]
    # raw = kept + rejected + quarantined, per batch, on both warehouses
    assert unaccounted == 0
    assert (
        con.sql(
            "SELECT sum(unaccounted) FROM (" + rule_engine.batch_accounting_sql() + ")"
        ).fetchall()[0][0]
        == 0
    )


def test_filtered_keeps_its_rows_but_follows_new_pii_settings_and_reingested_text(con, tmp_path):
    _load(con, tmp_path, "a.jsonl", GOOD, datetime(2026, 1, 1))
    emails_only = filter_stage.FilterConfig(task_type="instruction", pii_kinds=("email",))
    filter_stage.run_stage(con, emails_only)

    def response(record_id):
        sql = "SELECT response FROM filtered WHERE record_id = ?"
        return con.execute(sql, [record_id]).fetchall()[0][0]

    assert "sam.jones@example.com" not in response("a.jsonl:3")
    assert "253 0000" in response("a.jsonl:3")
    filter_stage.run_stage(
        con, filter_stage.FilterConfig(task_type="instruction", pii_kinds=("phone",))
    )
    assert "sam.jones@example.com" in response("a.jsonl:3")  # unmasked: not a kind any more
    assert "253 0000" not in response("a.jsonl:3")
    assert {k for (k,) in con.execute("SELECT kind FROM pii_redactions").fetchall()} == {"phone"}
    # the same file again, one response changed only in case (same example id): new text
    changed = [dict(r) for r in GOOD]
    changed[0]["output"] = changed[0]["output"].upper()
    _load(con, tmp_path, "a.jsonl", changed, datetime(2026, 1, 3))
    filter_stage.run_stage(
        con, filter_stage.FilterConfig(task_type="instruction", pii_kinds=("phone",))
    )
    assert response("a.jsonl:1") == changed[0]["output"]
    assert con.execute("SELECT count(*) FROM filtered").fetchall()[0][0] == len(GOOD)
