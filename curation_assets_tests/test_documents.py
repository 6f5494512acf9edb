"""Web documents: reading HTML/WARC/WET into rows, and the Gopher/C4/FineWeb document rules."""

import gzip
import io
import json
import re
import unicodedata
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from curation_assets.curation.filtering import document_rules as rd
from curation_assets.curation.filtering.rule_engine import run_filters
from curation_assets.curation.ingest.documents import (
    document_format,
    extract,
    read_documents,
    read_html,
    read_warc,
    to_ingest,
)
from curation_assets.curation.ingest.tables import ensure_tables
from curation_assets.curation.records import to_canonical

DATA = Path(__file__).parent / "data" / "documents"


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("page.html", "html"),
        ("page.HTM", "html"),
        ("page.html.gz", "html"),
        ("crawl.warc", "warc"),
        ("crawl.warc.gz", "warc"),
        ("CC-MAIN-2024.warc.wet.gz", "wet"),
        ("data.jsonl", None),
        ("archive.gz", None),
    ],
)
def test_document_format_by_name(name, fmt):
    assert document_format(Path(name)) == fmt


def test_html_page_main_text_without_boilerplate():
    row = read_html(DATA / "own-article.html").iloc[0]
    assert row.reason is None
    assert row.title == "How Community Gardens Cool City Blocks"
    assert row.url == "https://riverside-ledger.example.org/2024/06/community-gardens-heat"
    assert "the gardens lowered the air temperature" in row.text
    assert "open to the public." in row.text
    for boilerplate in (
        "uses cookies",
        "Most read",
        "First!!!",
        "All rights reserved",
        "Subscribe",
    ):
        assert boilerplate not in row.text


def _shingle_f1(true: str, pred: str, n: int = 4) -> float:
    """The article-extraction-benchmark's measure for one page: F1 over word 4-grams."""

    def grams(text: str) -> Counter:
        toks = re.findall(r"\w+", text)
        return Counter(tuple(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1)))

    a, b = grams(true), grams(pred)
    tp = sum((a & b).values())
    return 2 * tp / (sum(a.values()) + sum(b.values()))


@pytest.mark.parametrize("page", ["sciencealert-europa.html.gz", "lhpat-trademark-ja.html.gz"])
def test_real_pages_match_hand_annotated_body(page):
    truth = json.loads((DATA / "ground-truth.json").read_text())[page]["articleBody"]
    row = read_html(DATA / page).iloc[0]
    assert row.reason is None and row.title
    assert _shingle_f1(truth, row.text) > 0.9


MENU_ONLY = (
    b"<html><body><header>Site</header><div class=menu><ul><li>Home</li><li>About</li></ul>"
    b"</div><footer>(c) 2024</footer></body></html>"
)


def test_pages_without_text_get_a_reason(tmp_path):
    nav_only = tmp_path / "nav.html"
    nav_only.write_bytes(MENU_ONLY)
    broken = tmp_path / "broken.html.gz"
    broken.write_bytes(b"this is not gzip")
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    assert read_html(nav_only).reason[0] == "no main text found in the page"
    assert read_html(broken).reason[0].startswith("unreadable file: BadGzipFile")
    assert read_html(empty).reason[0] == "empty page"
    assert extract(b"<nav><a>Home</a></nav>").reason == "not parsable as HTML"


def test_real_crawl_warc_skips_requests_and_crawler_logs():
    docs = read_warc(DATA / "crawl-sample.warc.gz")
    # 6 WARC records: warcinfo, 2 x (request, response), a wget resource (metadata://)
    assert docs["line_no"].tolist() == [3, 5]
    assert docs["url"].tolist() == [
        "https://soldaini.net/facts/",
        "https://tomhoper.github.io/research/",
    ]
    assert docs["reason"].isna().all() and docs["http_status"].tolist() == [200, 200]
    assert docs["title"][0] == "Facts"
    assert "pronounced sol-dah-ee-nee" in docs["text"][0]
    assert docs["warc_record_id"][0].startswith("<urn:uuid:")
    assert docs["offset"].tolist() == sorted(docs["offset"].tolist()) and docs["offset"][0] > 0


def _write_warc(path: Path, records: list) -> None:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests"}))
        for kind, uri, status, content_type, body, headers in records:
            if kind == "conversion":
                record = writer.create_warc_record(
                    uri, "conversion", payload=io.BytesIO(body), warc_content_type=content_type
                )
            elif kind == "revisit":
                http = StatusAndHeaders(f"{status} OK", [], protocol="HTTP/1.1")
                record = writer.create_revisit_record(
                    uri, "sha1:AAAA", uri, "2024-01-01T00:00:00Z", http_headers=http
                )
            else:
                http = StatusAndHeaders(
                    f"{status} X", [("Content-Type", content_type), *headers], protocol="HTTP/1.1"
                )
                record = writer.create_warc_record(
                    uri, "response", payload=io.BytesIO(body), http_headers=http
                )
            writer.write_record(record)


ARTICLE = (DATA / "own-article.html").read_bytes()
FRENCH = (
    "<html><head><title>Le jardin</title></head><body><article><h1>Le jardin partagé</h1>"
    + "<p>Les bénévoles du jardin partagé arrosent les légumes chaque matin, même en été, "
    "et la température du quartier baisse de deux degrés pendant les vagues de chaleur.</p>"
    * 4
    + "</article></body></html>"
)


def test_synthetic_warc_every_response_is_a_row_with_text_or_reason(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    _write_warc(
        path,
        [
            ("response", "https://a.example/ok", 200, "text/html; charset=utf-8", ARTICLE, []),
            (
                "response",
                "https://a.example/gz",
                200,
                "text/html",
                gzip.compress(ARTICLE),
                [("Content-Encoding", "gzip")],
            ),
            (
                "response",
                "https://a.example/fr",
                200,
                "text/html; charset=iso-8859-1",
                FRENCH.encode("latin-1"),
                [],
            ),
            ("response", "https://a.example/missing", 404, "text/html", b"<h1>Not found</h1>", []),
            ("response", "https://a.example/doc.pdf", 200, "application/pdf", b"%PDF-1.4", []),
            ("response", "https://a.example/robots.txt", 200, "text/plain", b"User-agent: *", []),
            ("revisit", "https://a.example/ok-again", 200, None, b"", []),
            ("response", "https://a.example/nav", 200, "text/html", MENU_ONLY, []),
        ],
    )
    docs = read_warc(path).set_index("url", drop=False)
    assert len(docs) == 8  # the warcinfo record is no unit
    assert docs.loc["https://a.example/ok", "title"] == "How Community Gardens Cool City Blocks"
    assert docs.loc["https://a.example/gz", "text"] == docs.loc["https://a.example/ok", "text"]
    assert "Les bénévoles du jardin partagé" in docs.loc["https://a.example/fr", "text"]
    assert docs.loc["https://a.example/missing", "reason"] == "HTTP status 404"
    assert docs.loc["https://a.example/doc.pdf", "reason"] == "not an HTML page: application/pdf"
    assert docs.loc["https://a.example/robots.txt", "text"] == "User-agent: *"
    assert docs["reason"][docs["record_type"] == "revisit"].str.startswith("revisit record").all()
    assert docs.loc["https://a.example/nav", "reason"] == "no main text found in the page"
    assert docs.loc["https://a.example/missing", "raw_preview"] == "<h1>Not found</h1>"

    frame, bad = to_ingest(read_warc(path))
    assert len(frame) + len(bad) == 8
    assert sorted(reason for _, reason, _ in bad)[0] == "HTTP status 404"
    canonical, problem = to_canonical(frame, {})
    assert problem is None
    assert (canonical["response"] == "").all()
    assert canonical["prompt"].str.contains("community garden").sum() == 2
    assert {"url", "title", "warc_record_id", "__line_no"} <= set(frame.columns)


def test_wet_conversion_records_are_text_already(tmp_path):
    path = tmp_path / "CC-MAIN-x.warc.wet.gz"
    _write_warc(
        path,
        [
            ("conversion", "https://b.example/1", None, "text/plain", b"First line.\nSecond.", []),
            ("conversion", "https://b.example/2", None, "text/plain", b"   ", []),
        ],
    )
    docs = read_documents(path)
    assert docs["text"].tolist()[0] == "First line.\nSecond."
    assert docs["reason"].tolist() == [None, "empty text record"]
    assert docs["title"].isna().all()


def test_a_truncated_warc_keeps_what_was_read(tmp_path):
    whole = (DATA / "crawl-sample.warc.gz").read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole[:6000])  # ends inside the second response record
    docs = read_warc(cut)
    assert docs["url"][0] == "https://soldaini.net/facts/" and docs["reason"][0] is None
    assert docs["reason"].iloc[-1].startswith("truncated WARC record: the file ends 10582 of")
    garbage = tmp_path / "garbage.warc"
    garbage.write_bytes(b"WARC/1.0\r\nnot a header at all\r\n\r\n")
    assert read_warc(garbage)["reason"].tolist() == ["unreadable WARC record: not a WARC record"]
    garbage.write_bytes(b"plain text, not an archive")
    assert read_warc(garbage)["reason"].tolist() == ["unreadable WARC record: not a WARC record"]
    garbage.write_bytes(b"")
    assert read_warc(garbage)["reason"].tolist() == [
        "unreadable WARC record: no WARC record in the file"
    ]


# --- document rules ----------------------------------------------------------------------------

CLEAN = read_html(DATA / "own-article.html")["text"][0]


def _fired(texts: list[str], rules: list) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("docs", pd.DataFrame({"prompt": texts}))
    cols = ", ".join(f"coalesce({r.condition}, TRUE) AS {r.name}" for r in rules)
    return con.sql(f"SELECT {cols} FROM docs").df()


def test_a_real_article_passes_every_document_rule():
    fired = _fired([CLEAN], rd.document_rules()).iloc[0]
    assert not fired.any(), fired[fired].index.tolist()


PROSE = "The volunteers water the beans and the tomatoes with care every morning."
FIRING = {
    "gopher_too_few_words": "The garden is open.",
    "gopher_mean_word_length": " ".join(["a an of to is it be"] * 20),
    "gopher_hash_ratio": CLEAN + " " + "#garden " * 40,
    "gopher_ellipsis_ratio": CLEAN + " " + "and then... " * 40,
    "gopher_bullet_lines": "\n".join(
        f"- item number {i} with the text and more" for i in range(60)
    ),
    "gopher_ellipsis_lines": "\n".join(f"{PROSE} Read more..." for _ in range(10)),
    "gopher_alpha_words": CLEAN + " " + " ".join(str(i) for i in range(200, 600)),
    "gopher_stop_words": " ".join(["Garden volunteers water beans carefully"] * 15),
    "gopher_dup_lines": "\n".join([PROSE, "Share this article", "Share this article"] * 5),
    "gopher_dup_paragraphs": "\n\n".join(
        [CLEAN, "Read the latest news from the city here.", CLEAN]
    ),
    "gopher_top_2gram": CLEAN + " " + "click here " * 120,
    "gopher_dup_5grams": CLEAN + "\n" + CLEAN,
    "c4_lorem_ipsum": CLEAN + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
    "c4_curly_bracket": CLEAN + "\nThe function is written as f(x) = {x + 1} for all values.",
    "c4_too_few_sentences": "The garden is open to all residents of the street. It opens at nine.",
    "fineweb_line_punct": "\n".join(
        f"Garden plot {i} with beans and the tomatoes" for i in range(30)
    ),
    "fineweb_short_lines": "\n".join(["Home", "News", "City", PROSE] * 10),
    "fineweb_dup_line_chars": CLEAN + "\n" + "\n".join(CLEAN.splitlines()[1:3]),
    "fineweb_list_like": "\n".join(["Fresh beans", "Ripe tomatoes."] * 20),
}


@pytest.mark.parametrize("name", sorted(FIRING))
def test_each_rule_fires_on_its_kind_of_page(name):
    rules = {r.name: r for r in rd.document_rules()}
    assert _fired([FIRING[name]], [rules[name]]).iloc[0, 0]


def test_thresholds_are_keyword_arguments():
    long_doc = " ".join([PROSE] * 20)
    assert _fired([long_doc], rd.gopher_quality_rules(max_doc_words=100))["gopher_too_many_words"][
        0
    ]
    assert not _fired([long_doc], rd.gopher_quality_rules())["gopher_too_many_words"][0]
    assert not _fired([FIRING["c4_too_few_sentences"]], rd.c4_rules(min_sentences=2)).iloc[0, -1]
    assert [r.name for r in rd.gopher_repetition_rules(max_dup_ngram_char_fractions=())][-1] == (
        "gopher_top_4gram"
    )


def test_rule_details_show_the_measured_value():
    rules = {r.name: r for r in rd.document_rules()}
    con = duckdb.connect()
    con.register("docs", pd.DataFrame({"prompt": [FIRING["gopher_too_few_words"]]}))
    detail = con.sql(f"SELECT {rules['gopher_too_few_words'].detail} FROM docs").fetchall()[0][0]
    assert detail == "words: 4"
    assert "0.1" in rules["fineweb_dup_line_chars"].reason


def _strip(token: str) -> str:
    def punct(c: str) -> bool:
        return unicodedata.category(c)[0] in "PS"

    start, end = 0, len(token)
    while start < end and punct(token[start]):
        start += 1
    while end > start and punct(token[end - 1]):
        end -= 1
    return token[start:end]


def _reference(text: str) -> dict[str, float]:
    """The measures in plain Python, written from the papers' definitions."""
    toks = text.split()
    words = [w for w in (_strip(t) for t in toks) if w]
    lines = [line for line in text.split("\n") if line.strip()]
    out = {
        "n_words": len(words),
        "n_lines": len(lines),
        "mean_word_length": sum(map(len, words)) / len(words),
        "alpha_words_ratio": sum(any(c.isalpha() for c in t) for t in toks) / len(toks),
        "stop_words": sum(w.lower() in rd.GOPHER_STOP_WORDS for w in words),
        "dup_line_fraction": (len(lines) - len(set(lines))) / len(lines),
    }
    for n in (2, 3, 4):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        best = max(grams.items(), key=lambda kv: (kv[1], len(" ".join(kv[0])) * kv[1]))
        out[f"top_{n}gram_char_fraction"] = len(" ".join(best[0])) * best[1] / len(text)
    for n in range(5, 11):
        seen, covered = set(), set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            if gram in seen:
                covered.update(range(i, i + n))
            seen.add(gram)
        out[f"dup_{n}gram_char_fraction"] = sum(len(words[j]) for j in covered) / len(text)
    return out


@pytest.mark.parametrize(
    "text",
    [
        CLEAN,
        CLEAN + "\n" + CLEAN,
        FIRING["gopher_top_2gram"],
        read_html(DATA / "sciencealert-europa.html.gz")["text"][0],
        read_warc(DATA / "crawl-sample.warc.gz")["text"][1],
    ],
)
def test_sql_measures_agree_with_a_python_reference(text):
    con = duckdb.connect()
    con.register("docs", pd.DataFrame({"prompt": [text]}))
    got = con.sql(f"SELECT {rd.document_stats_sql()} FROM docs").df().iloc[0]
    for name, value in _reference(text).items():
        assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def _warehouse_with(con, rows: list[tuple[str, str, str]]) -> None:
    """rows: (batch, file_format, prompt); one ingest batch per distinct batch."""
    ensure_tables(con)
    now = datetime(2024, 6, 1)
    for batch, fmt in sorted({(b, f) for b, f, _ in rows}):
        con.execute(
            "INSERT INTO ingest_batches VALUES (?, ?, ?, '', 0, 0, 0, ?, NULL)",
            [batch, batch, fmt, now],
        )
    for line_no, (batch, _, prompt) in enumerate(rows, start=1):
        con.execute(
            "INSERT INTO raw_scrapes VALUES (?, ?, ?, ?, ?, 'test', ?, ?, '{}', ?)",
            [f"{batch}:{line_no}", f"id{line_no}", batch, batch, line_no, prompt, "", now],
        )


def test_document_rules_run_in_the_filter_stage_only_on_web_documents(con):
    _warehouse_with(
        con,
        [
            ("crawl.warc.gz", "warc", CLEAN),
            ("crawl.warc.gz", "warc", "Subscribe now!"),
            ("crawl.warc.gz", "warc", FIRING["gopher_dup_5grams"]),
            ("pairs.jsonl", "jsonl", "Subscribe now!"),
        ],
    )
    run_filters(con, rd.only_where(rd.document_rules(), rd.DOCUMENT_BATCH_SQL))
    rejected = con.sql("SELECT record_id, rule, reason FROM rejections").df()
    by_record = rejected.groupby("record_id")["rule"].apply(set).to_dict()
    assert "crawl.warc.gz:1" not in by_record  # the real article
    assert "pairs.jsonl:4" not in by_record  # instruction data is not judged as a web page
    assert {"gopher_too_few_words", "c4_too_few_sentences"} <= by_record["crawl.warc.gz:2"]
    assert "gopher_dup_5grams" in by_record["crawl.warc.gz:3"]
    reason = rejected.query("rule == 'gopher_too_few_words'")["reason"].iloc[0]
    assert reason == "fewer than 50 words (Gopher): words: 2"
    kept = con.sql("SELECT record_id FROM filtered ORDER BY record_id").df()["record_id"]
    assert kept.tolist() == ["crawl.warc.gz:1", "pairs.jsonl:4"]
