"""Near-duplicate detection (MinHash LSH + exact Jaccard) and decontamination."""

import re
import unicodedata

import pandas as pd
import pytest

from curation_assets.curation.filtering import dedup, generic_rules, rule_engine
from curation_assets.curation.filtering.decontamination import (
    DecontaminationConfig,
    find_contamination,
)
from curation_assets.curation.ingest import tables as ingest_tables

REFUND_PROMPT = (
    "I ordered a pair of running shoes from your online store three weeks ago and they "
    "still have not arrived. The tracking page has said in transit since the second day."
)
REFUND_RESPONSE = (
    "I am sorry your order is late. Parcels that show in transit for more than ten days are "
    "usually lost, so I have opened a claim with the carrier and you can choose a full "
    "refund or a replacement pair shipped by express delivery at no extra cost."
)
# Same request, two words changed: a near duplicate (word 5-gram Jaccard ~0.8).
REFUND_PROMPT_EDITED = REFUND_PROMPT.replace("three weeks", "two weeks")
# The edited copy with its answer reworded: close to the copy, further from the original.
REFUND_RESPONSE_REWORDED = REFUND_RESPONSE.replace("full refund", "partial refund")

UNRELATED = [
    (
        "Write a short poem about the first snow of winter in a quiet mountain village.",
        "Soft flakes settle on slate roofs, the bell tower hums, and smoke curls upward "
        "from chimneys while children press their noses to the frosted glass.",
    ),
    (
        "Explain the difference between a list and a tuple in Python.",
        "A list is mutable, so you can append, remove or change its items; a tuple is "
        "immutable and hashable, which lets it serve as a dictionary key.",
    ),
    (
        "How do I change the PIN of my debit card?",
        "Open the Cards tab in the app, pick the card, choose Change PIN and confirm with "
        "your passcode. The new PIN works at once in shops and at cash machines.",
    ),
]


def py_jaccard(a: str, b: str, n: int = 5) -> float:
    """Plain-Python word n-gram Jaccard, independent of the vectorized implementation."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"[^\W]+", unicodedata.normalize("NFC", text).lower())
        if len(words) < n:
            return {tuple(words)} if words else set()
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def make_raw(con, rows: list[tuple], batch: str = "b1", day: int = 1) -> None:
    """Insert (record_id, prompt, response) rows into raw_scrapes as one ingest batch."""
    ingest_tables.ensure_tables(con, ["ingest_batches", "raw_scrapes"])
    ts = f"2026-11-{day:02d} 10:00:00"
    con.execute(
        "INSERT INTO ingest_batches VALUES (?, ?, 'jsonl', 'x', ?, ?, 0, ?, NULL)",
        [batch, f"{batch}.jsonl", len(rows), len(rows), ts],
    )
    for line_no, (record_id, prompt, response) in enumerate(rows, start=1):
        con.execute(
            "INSERT INTO raw_scrapes (record_id, example_id, batch, source_file, line_no, "
            "source, prompt, response, ingested_at) VALUES (?, ?, ?, ?, ?, 'test', ?, ?, ?)",
            [record_id, record_id, batch, f"{batch}.jsonl", line_no, prompt, response, ts],
        )


def near_dup_rows(con) -> dict[str, dict]:
    frame = con.sql("SELECT * FROM near_duplicates").df()
    return {r["record_id"]: r for r in frame.to_dict("records")}


def unrelated_rows(prefix: str) -> list[tuple[str, str, str]]:
    return [(f"{prefix}{i}", p, r) for i, (p, r) in enumerate(UNRELATED)]


def test_exact_jaccard_matches_plain_python():
    a = REFUND_PROMPT + " " + REFUND_RESPONSE
    b = REFUND_PROMPT_EDITED + " " + REFUND_RESPONSE
    short_a, short_b = "Card not working", "card NOT working!"
    got = dedup.jaccard_of_texts([a, a, short_a, a], [b, a, short_b, UNRELATED[0][0]])
    assert got == pytest.approx(
        [py_jaccard(a, b), 1.0, 1.0, py_jaccard(a, UNRELATED[0][0])], abs=1e-12
    )
    assert 0.75 < got[0] < 0.9  # the fixture pair sits where the thresholds bite
    # Many pairs keep their order (ids past 9 sort differently as text).
    many = dedup.jaccard_of_texts([a] * 12 + [short_a], [a] * 12 + [b])
    assert many == pytest.approx([1.0] * 12 + [py_jaccard(short_a, b)])


@pytest.mark.parametrize("threshold, found", [(0.7, True), (0.8, True), (0.9, False)])
def test_near_duplicate_found_at_threshold(con, threshold, found):
    make_raw(
        con,
        [
            ("r1", REFUND_PROMPT, REFUND_RESPONSE),
            *unrelated_rows("u"),
            ("r2", REFUND_PROMPT_EDITED, REFUND_RESPONSE),
        ],
    )
    result = dedup.near_duplicates(con, "raw_scrapes", threshold)
    flagged = near_dup_rows(con)
    expected_j = py_jaccard(
        REFUND_PROMPT + " " + REFUND_RESPONSE, REFUND_PROMPT_EDITED + " " + REFUND_RESPONSE
    )
    assert (expected_j >= threshold) == found
    assert set(flagged) == ({"r2"} if found else set())
    assert result.new_records == 5
    if found:
        row = flagged["r2"]
        assert row["representative_record_id"] == "r1"
        assert row["matched_record_id"] == "r1"
        assert row["jaccard"] == pytest.approx(expected_j)


def test_unrelated_and_short_texts_are_not_near_duplicates(con):
    make_raw(
        con,
        [
            *unrelated_rows("u"),
            ("s1", "What is my balance?", "balance_inquiry"),
            ("s2", "What is my card limit?", "card_limit"),
            ("s3", "Is my card blocked?", "card_blocked"),
        ],
    )
    result = dedup.near_duplicates(con, "raw_scrapes", 0.5)
    assert result.new_near_duplicates == 0
    assert con.execute("SELECT count(*) FROM near_duplicates").fetchall()[0][0] == 0


def test_representative_is_the_earliest_by_ingest_order(con):
    # "a-late" sorts first by record_id but arrives in a later batch: it is the duplicate.
    make_raw(con, [("z-early", REFUND_PROMPT, REFUND_RESPONSE)], batch="b1", day=1)
    make_raw(con, [("a-late", REFUND_PROMPT_EDITED, REFUND_RESPONSE)], batch="b2", day=8)
    dedup.near_duplicates(con, "raw_scrapes", 0.7)
    flagged = near_dup_rows(con)
    assert set(flagged) == {"a-late"}
    assert flagged["a-late"]["representative_record_id"] == "z-early"
    # The ordering column is a parameter: by record_id the roles swap.
    dedup.near_duplicates(con, "raw_scrapes", 0.7, order_by="record_id")
    assert set(near_dup_rows(con)) == {"z-early"}


def test_cluster_is_transitive_and_reports_the_direct_match(con):
    original = REFUND_PROMPT + " " + REFUND_RESPONSE
    once = REFUND_PROMPT_EDITED + " " + REFUND_RESPONSE
    twice = REFUND_PROMPT_EDITED + " " + REFUND_RESPONSE_REWORDED
    threshold = 0.8
    assert py_jaccard(original, once) >= threshold
    assert py_jaccard(once, twice) >= threshold
    assert py_jaccard(original, twice) < threshold
    make_raw(
        con,
        [
            ("r1", REFUND_PROMPT, REFUND_RESPONSE),
            ("r2", REFUND_PROMPT_EDITED, REFUND_RESPONSE),
            ("r3", REFUND_PROMPT_EDITED, REFUND_RESPONSE_REWORDED),
        ],
    )
    dedup.near_duplicates(con, "raw_scrapes", threshold)
    flagged = near_dup_rows(con)
    assert set(flagged) == {"r2", "r3"}
    assert flagged["r3"]["representative_record_id"] == "r1"
    assert flagged["r3"]["matched_record_id"] == "r2"
    assert flagged["r3"]["jaccard"] == pytest.approx(py_jaccard(original, twice))
    assert flagged["r3"]["matched_jaccard"] == pytest.approx(py_jaccard(once, twice))
    assert flagged["r2"]["cluster_id"] == flagged["r3"]["cluster_id"]


def test_incremental_batch_matches_the_index_without_touching_earlier_rows(con):
    make_raw(con, [("b1-refund", REFUND_PROMPT, REFUND_RESPONSE), *unrelated_rows("b1-u")])
    first = dedup.dedup_new_records(con, "raw_scrapes")
    assert first.new_records == 4 and first.new_near_duplicates == 0
    before = {
        table: con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("minhash_docs", "minhash_index", "near_duplicates")
    }

    make_raw(
        con,
        [
            ("b2-refund", REFUND_PROMPT_EDITED, REFUND_RESPONSE),
            (
                "b2-new",
                "Recommend three board games for a family with young kids.",
                "Try Ticket to Ride First Journey, Outfoxed and Dragomino.",
            ),
        ],
        batch="b2",
        day=8,
    )
    second = dedup.dedup_new_records(con, "raw_scrapes")
    assert second.new_records == 2  # only the new batch is sketched
    assert second.indexed_records == 6
    flagged = near_dup_rows(con)
    assert set(flagged) == {"b2-refund"}
    assert flagged["b2-refund"]["representative_record_id"] == "b1-refund"

    # Earlier rows are exactly as they were; the new batch only appended.
    for table, rows in before.items():
        now = con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        assert set(rows) <= set(now), table
    old_docs = con.sql(
        "SELECT * FROM minhash_docs WHERE record_id LIKE 'b1-%' ORDER BY ALL"
    ).fetchall()
    assert old_docs == before["minhash_docs"]

    # Calling again with nothing new does nothing.
    assert dedup.dedup_new_records(con, "raw_scrapes").new_records == 0


def test_incremental_equals_full_run(con):
    rows = [
        ("r1", REFUND_PROMPT, REFUND_RESPONSE),
        *unrelated_rows("u"),
        ("r2", REFUND_PROMPT_EDITED, REFUND_RESPONSE),
        ("u9", UNRELATED[1][0], UNRELATED[1][1].replace("dictionary key", "dict key")),
    ]
    make_raw(con, rows[:3], batch="b1", day=1)
    make_raw(con, rows[3:], batch="b2", day=8)
    dedup.reset_index(con)
    dedup.dedup_new_records(con, "SELECT * FROM raw_scrapes WHERE batch = 'b1'")
    dedup.dedup_new_records(con, "raw_scrapes")
    incremental = con.sql(
        "SELECT record_id, representative_record_id, jaccard FROM near_duplicates ORDER BY 1"
    ).fetchall()
    dedup.near_duplicates(con, "raw_scrapes")
    full = con.sql(
        "SELECT record_id, representative_record_id, jaccard FROM near_duplicates ORDER BY 1"
    ).fetchall()
    assert incremental == full
    assert [r[0] for r in full] == ["r2", "u9"]


def test_index_built_with_other_settings_is_refused(con):
    make_raw(con, [("r1", REFUND_PROMPT, REFUND_RESPONSE)])
    dedup.dedup_new_records(con, "raw_scrapes")
    with pytest.raises(ValueError, match="reset_index"):
        dedup.dedup_new_records(con, "raw_scrapes", config=dedup.MinHashConfig(ngram=3))
    # The threshold is not an index setting: it may change between calls.
    dedup.dedup_new_records(con, "raw_scrapes", config=dedup.MinHashConfig(threshold=0.6))


def test_filter_rule_rejects_near_duplicates_with_a_reason(con):
    make_raw(
        con,
        [
            ("r1", REFUND_PROMPT, REFUND_RESPONSE),
            *unrelated_rows("u"),
            ("r2", REFUND_PROMPT_EDITED, REFUND_RESPONSE),
            ("r3", REFUND_PROMPT, REFUND_RESPONSE),  # exact duplicate: another rule's job
        ],
    )
    con.execute("UPDATE raw_scrapes SET example_id = 'r1' WHERE record_id = 'r3'")
    dedup.near_duplicates(con, dedup.eligible_records_sql(), 0.8)
    rules = generic_rules.rules_for(
        min_prompt_chars=5,
        max_prompt_chars=5000,
        min_response_chars=1,
        max_response_chars=5000,
    ) + [dedup.near_duplicate_rule(threshold=0.8)]
    rule_engine.run_filters(con, rules)
    kept = {r[0] for r in con.execute("SELECT record_id FROM filtered").fetchall()}
    assert kept == {"r1", "u0", "u1", "u2"}
    reasons = dict(
        con.execute("SELECT record_id || '/' || rule, reason FROM rejections").fetchall()
    )
    assert set(reasons) == {"r2/near_duplicate", "r3/exact_duplicate"}
    assert re.search(r"Jaccard 0\.\d\d with r1 \(kept: r1\)", reasons["r2/near_duplicate"])


# --------------------------------------------------------------------------- decontamination

EVAL = pd.DataFrame(
    {
        "eval_id": ["q-capital", "q-joke", "q-balance", "q-poem"],
        "text": [
            "Which city is the capital of Australia, and why was it chosen over Sydney "
            "and Melbourne when the federation was formed?",
            "Tell me a joke about accountants",
            "Balance?",
            "Compose a sonnet about the sea at night.",
        ],
    }
)


def training(con, rows: list[tuple[str, str, str]]) -> None:
    frame = pd.DataFrame(rows, columns=["record_id", "prompt", "response"])
    con.register("_rows", frame)
    con.execute("CREATE OR REPLACE TABLE candidates AS SELECT * FROM _rows")
    con.unregister("_rows")


def test_decontamination_catches_planted_overlaps(con):
    training(
        con,
        [
            # long eval text copied into the middle of a prompt, different case
            (
                "t-copy",
                "Quiz time! WHICH CITY IS THE CAPITAL OF AUSTRALIA, and why was it chosen "
                "over Sydney and Melbourne? Answer briefly.",
                "Canberra, as a compromise.",
            ),
            # short eval text contained in a longer prompt
            ("t-joke", "Please tell me a joke about accountants, my friend is one.", "..."),
            # very short eval text: only an exact prompt counts
            ("t-bal", "balance", "balance_inquiry"),
            ("t-bal-long", "What is my balance right now?", "balance_inquiry"),
            *[(f"t-u{i}", p, r) for i, (p, r) in enumerate(UNRELATED)],
        ],
    )
    found = find_contamination(con, EVAL, "candidates", output_table="contamination")
    pairs = {(r.record_id, r.eval_id): r for r in found.itertuples()}
    assert set(pairs) == {("t-copy", "q-capital"), ("t-joke", "q-joke"), ("t-bal", "q-balance")}
    copy = pairs[("t-copy", "q-capital")]
    assert copy.match == "ngram" and 1 <= copy.overlap_ngrams < copy.eval_ngrams
    assert pairs[("t-joke", "q-joke")].match == "contains"
    assert pairs[("t-bal", "q-balance")].match == "equal"
    assert con.execute("SELECT count(*) FROM contamination").fetchall()[0][0] == 3


def test_decontamination_options_and_inputs(con):
    training(
        con,
        [
            ("t-copy", "which city is the capital of australia and why was it chosen", "x"),
            ("t-u0", *UNRELATED[0]),
        ],
    )
    texts = EVAL["text"].tolist()
    # A list works (ids are positions); n=8 finds 3 shared 8-grams in a 12-word copy.
    found = find_contamination(con, texts, "candidates")
    assert found[["record_id", "eval_id", "overlap_ngrams"]].values.tolist() == [["t-copy", "0", 5]]
    # Asking for more shared n-grams than there are drops the match.
    strict = DecontaminationConfig(min_overlap=6)
    assert find_contamination(con, texts, "candidates", config=strict).empty
    # So does asking for a larger share of the evaluation text's n-grams.
    share = DecontaminationConfig(min_overlap_fraction=0.5)
    assert find_contamination(con, texts, "candidates", config=share).empty
    # A table of evaluation texts works too.
    con.register("_eval", EVAL)
    con.execute("CREATE TABLE eval_texts AS SELECT * FROM _eval")
    by_table = find_contamination(con, "SELECT eval_id, text FROM eval_texts", "candidates")
    assert by_table["eval_id"].tolist() == ["q-capital"]
