"""Benchmark the web-document path: extraction quality and speed, document rules, langid, PII.

    .venv/bin/python -m benchmarks.bench_documents            # everything, 100k docs for rules
    .venv/bin/python -m benchmarks.bench_documents --only pii --docs 20000

Needs ``../shared`` (the article-extraction benchmark's 181 pages and Dolma's WARC samples);
without it the benchmark says so and exits 0. Extraction quality is the benchmark's own
measure (word 4-gram shingles, precision and recall averaged over pages, F1 of the means),
plus a plain bag-of-words F1. The PII section also scores Presidio when it is installed.
"""

import gzip
import json
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402
from benchmarks.common import Timer  # noqa: E402

SHARED = common.SHARED_DATA
BENCH = common.ARTICLES
DOLMA = common.DOLMA
_TOKEN = re.compile(r"\w+")


def _grams(text: str, n: int) -> Counter:
    toks = _TOKEN.findall(text or "")
    if n == 1:
        return Counter(toks)
    return Counter(tuple(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1)) if toks)


def _prf(truth: str, pred: str, n: int) -> tuple[float | None, float | None]:
    a, b = _grams(truth, n), _grams(pred, n)
    tp = sum((a & b).values())
    fp, fn = sum(b.values()) - tp, sum(a.values()) - tp
    if fp == fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def score(truths: dict[str, str], preds: dict[str, str | None], n: int) -> dict[str, float]:
    """Mean precision and recall over pages (pages with nothing to score skipped), F1 of means."""
    ps, rs = [], []
    for key, truth in truths.items():
        p, r = _prf(truth, preds.get(key) or "", n)
        if p is not None:
            ps.append(p)
        if r is not None:
            rs.append(r)
    p, r = statistics.mean(ps), statistics.mean(rs)
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4)}


def bench_extraction() -> tuple[dict, list[str]]:
    from curation_assets.curation.ingest.documents import extract

    truth = common.article_truth()
    pages = {p.name.split(".")[0]: gzip.decompress(p.read_bytes()) for p in BENCH.glob("html/*.gz")}
    truths = {k: truth[k].get("articleBody", "") for k in pages}
    results, texts = {}, []
    extract(next(iter(pages.values())))  # imports and first-call set-up outside the timing
    for precision in (True, False):
        with Timer() as timer:
            found = {k: extract(html, favor_precision=precision) for k, html in pages.items()}
        seconds = timer.wall
        preds = {k: f.text for k, f in found.items()}
        results[f"favor_precision={precision}"] = {
            "pages": len(pages),
            "pages_per_s": round(len(pages) / seconds, 1),
            "MB_per_s": round(sum(map(len, pages.values())) / seconds / 1e6, 2),
            "shingle4": score(truths, preds, 4),
            "bag_of_words": score(truths, preds, 1),
            "no_text": sum(f.text is None for f in found.values()),
            "with_title": sum(bool(f.title) for f in found.values()),
        }
        if precision:
            texts = [t for t in preds.values() if t]
    return results, texts


def bench_warc() -> tuple[dict, list[str]]:
    from curation_assets.curation.ingest.documents import read_warc

    files = sorted(DOLMA.glob("*.warc.gz"))
    with Timer() as timer:
        frames = [read_warc(f) for f in files]
    seconds = timer.wall
    docs = sum(len(f) for f in frames)
    texts = [t for f in frames for t in f["text"].dropna()]
    return {
        "files": len(files),
        "documents": docs,
        "with_text": len(texts),
        "docs_per_s": round(docs / seconds, 1),
    }, texts


def bench_rules(pool: list[str], n_docs: int) -> dict:
    import duckdb
    import numpy as np
    import pandas as pd

    from curation_assets.curation.filtering import document_rules as rd

    rng = np.random.default_rng(0)
    sample = [pool[i] for i in rng.integers(0, len(pool), n_docs)]
    con = duckdb.connect()
    numbered = "row_number() OVER () AS record_id, prompt"
    common.create_table(con, "docs", pd.DataFrame({"prompt": sample}), numbered)
    common.create_table(con, "pool", pd.DataFrame({"prompt": pool}), numbered)
    threads = common.duckdb_threads(con)
    families = {
        "gopher_quality": rd.gopher_quality_rules(),
        "gopher_repetition": rd.gopher_repetition_rules(),
        "gopher_repetition_without_dup_ngrams": rd.gopher_repetition_rules(
            max_dup_ngram_char_fractions=()
        ),
        "c4": rd.c4_rules(),
        "fineweb": rd.fineweb_rules(),
        "all": rd.document_rules(),
    }
    out: dict = {"docs": n_docs, "pool": len(pool), "duckdb_threads": threads, "families": {}}
    for name, rules in families.items():
        flags = ", ".join(f"coalesce({r.condition}, TRUE) AS rule_{r.name}" for r in rules)
        with Timer() as timer:
            con.execute(f"CREATE OR REPLACE TABLE flags AS SELECT record_id, {flags} FROM docs")
        out["families"][name] = {
            "rules": len(rules),
            "seconds": round(timer.wall, 2),
            "docs_per_s": round(n_docs / timer.wall),
        }
    rules = rd.document_rules()
    flags = ", ".join(f"coalesce({r.condition}, TRUE) AS rule_{r.name}" for r in rules)
    rates = con.sql(
        f"SELECT {', '.join(f'avg(rule_{r.name}::INT) AS {r.name}' for r in rules)}, "
        f"avg(({' OR '.join(f'rule_{r.name}' for r in rules)})::INT) AS any_rule "
        f"FROM (SELECT {flags} FROM pool)"
    ).df()
    out["fire_rate_on_distinct_pool"] = {k: round(float(v), 3) for k, v in rates.iloc[0].items()}
    return out


def bench_langid(pool: list[str], n_docs: int) -> dict:
    import numpy as np

    from curation_assets.curation.filtering.language import DEFAULT_MAX_CHARS, detect

    sample = (pool * (n_docs // len(pool) + 1))[:n_docs]
    detect(sample[:10])
    out = {"docs": n_docs, "mean_chars": round(float(np.mean([len(t) for t in sample])))}
    for max_chars in (200, DEFAULT_MAX_CHARS, 100_000):
        with Timer() as timer:
            detect(sample, max_chars=max_chars)
        out[f"max_chars={max_chars}"] = {"docs_per_s": round(n_docs / timer.wall)}
    langs, scores = detect(pool)
    out["pool_languages"] = dict(Counter(langs).most_common(8))
    out["pool_en_with_score_0.65"] = round(float(np.mean((langs == "en") & (scores >= 0.65))), 3)
    return out


#: Hand-labelled PII: (text, [(kind, value), ...]); kinds as in ``curation.filtering.pii``.
LABELLED = [
    (
        "Write to plots@maple-row.example.org before Friday.",
        [("email", "plots@maple-row.example.org")],
    ),
    (
        "Contact Jane at jane.oneil+news@mail.co.uk or 020 7946 0958.",
        [("email", "jane.oneil+news@mail.co.uk"), ("phone", "020 7946 0958")],
    ),
    ("Call the volunteer line at (415) 555-0132 today.", [("phone", "(415) 555-0132")]),
    ("Tel: +44 20 7946 0958 (London office)", [("phone", "+44 20 7946 0958")]),
    (
        "Tel: +32 (0)2 790 75 75 Fax: +32 (0)2 790 75 85",
        [("phone", "+32 (0)2 790 75 75"), ("phone", "+32 (0)2 790 75 85")],
    ),
    (
        "Ring 212.555.0187 for tickets, or 1-800-555-0199 toll free.",
        [("phone", "212.555.0187"), ("phone", "1-800-555-0199")],
    ),
    ("Our office: +49 30 901820, Berlin.", [("phone", "+49 30 901820")]),
    ("Paid with 4111 1111 1111 1111 yesterday.", [("credit_card", "4111 1111 1111 1111")]),
    ("Card: 5500-0000-0000-0004, exp 12/27.", [("credit_card", "5500-0000-0000-0004")]),
    ("Amex 378282246310005 on file", [("credit_card", "378282246310005")]),
    ("Discover 6011111111111117 was declined.", [("credit_card", "6011111111111117")]),
    ("The server at 192.168.10.254 stopped responding.", [("ip", "192.168.10.254")]),
    (
        "Earlier versions used the IPs 38.107.191.66 through 38.107.191.119.",
        [("ip", "38.107.191.66"), ("ip", "38.107.191.119")],
    ),
    ("Ping 2001:db8:85a3::8a2e:370:7334 now.", [("ip", "2001:db8:85a3::8a2e:370:7334")]),
    ("Link-local fe80::1ff:fe23:4567:890a is up.", [("ip", "fe80::1ff:fe23:4567:890a")]),
    (
        "The report is at https://climate-office.example.gov/reports/gardens-2024.",
        [("url", "https://climate-office.example.gov/reports/gardens-2024")],
    ),
    (
        "Visit www.riverside-ledger.example.org for more.",
        [("url", "www.riverside-ledger.example.org")],
    ),
    (
        "See (https://en.wikipedia.org/wiki/Foo_(bar)) for background.",
        [("url", "https://en.wikipedia.org/wiki/Foo_(bar)")],
    ),
    (
        "Admin at http://192.168.0.1/admin, mail admin@example.com.",
        [("url", "http://192.168.0.1/admin"), ("email", "admin@example.com")],
    ),
    (
        "Follow Tariq at tmalik@space.com or https://twitter.com/tariqjmalik.",
        [("email", "tmalik@space.com"), ("url", "https://twitter.com/tariqjmalik")],
    ),
    ("The meeting is on 2024-06-12 at 19:30:00.", []),
    ("Prices rose 1,234,567.89 dollars from 1990-2000.", []),
    ("ISBN 978-3-16-148410-0 and order number 12345678.", []),
    ("Version 1.2.3 of the tool, and 10.0.0.256 is no address.", []),
    ("In C++ use std::vector and a::b, or a MAC like 00:1A:2B:3C:4D:5E.", []),
    ("4111 1111 1111 1112 fails the checksum; 1234 5678 9012 3456 has no network.", []),
    ("The tram leaves at 10:45 and the email@ sign is not an address.", []),
    ("Population 8,336,817 (2019 census), area 783.8 km2.", []),
    ("Lot numbers 2019-0412-7781 and 2020-1130-0098 were recalled.", []),
    ("The file name is report.final.v2.pdf and the domain example.com.", []),
]


def _presidio_finder():
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
    except ImportError:
        return None

    class BlankEngine(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    engine = BlankEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
    kinds = {
        "EMAIL_ADDRESS": "email",
        "PHONE_NUMBER": "phone",
        "CREDIT_CARD": "credit_card",
        "IP_ADDRESS": "ip",
        "URL": "url",
    }

    def find(text: str) -> list[tuple[str, int, int]]:
        found = analyzer.analyze(text, language="en", entities=list(kinds))
        return [(kinds[r.entity_type], r.start, r.end) for r in found]

    return find


def _ours(text: str) -> list[tuple[str, int, int]]:
    from curation_assets.curation.filtering.pii import find_pii

    return [("ip" if k.startswith("ip") else k, s, e) for k, s, e in find_pii(text)]


def score_pii(find) -> dict:
    """Precision and recall over labelled values: a finding is right when its kind matches
    and its span overlaps the labelled value; extra findings are false positives."""
    tp = fp = fn = 0
    for text, labels in LABELLED:
        gold = []
        for kind, value in labels:
            start = text.index(value)
            gold.append((kind, start, start + len(value)))
        found = find(text)
        matched = set()
        for kind, s, e in found:
            hit = next(
                (i for i, g in enumerate(gold) if g[0] == kind and s < g[2] and g[1] < e), None
            )
            if hit is None or hit in matched:
                fp += 1
            else:
                matched.add(hit)
                tp += 1
        fn += len(gold) - len(matched)
    return {
        "precision": round(tp / max(tp + fp, 1), 3),
        "recall": round(tp / max(tp + fn, 1), 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def bench_pii(pool: list[str], n_docs: int) -> dict:
    from curation_assets.curation.filtering.pii import redact_many

    sample = (pool * (n_docs // len(pool) + 1))[:n_docs]
    with Timer() as timer:
        _, spans = redact_many(sample)
    out: dict = {
        "docs": n_docs,
        "mean_chars": round(sum(map(len, sample)) / n_docs),
        "ours": {
            "docs_per_s": round(n_docs / timer.wall),
            "M_chars_per_s": round(sum(map(len, sample)) / timer.wall / 1e6, 1),
            "labelled_set": score_pii(_ours),
            "findings_in_pool": dict(
                Counter(s.kind for found in spans[: len(pool)] for s in found)
            ),
        },
    }
    presidio = _presidio_finder()
    if presidio is not None:
        subset = sample[: min(2000, n_docs)]
        with Timer() as timer:
            for text in subset:
                presidio(text)
        out["presidio_blank_spacy"] = {
            "docs_per_s": round(len(subset) / timer.wall),
            "labelled_set": score_pii(presidio),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--docs", type=int, default=100_000, help="resampled docs for the rules")
    parser.add_argument("--small-docs", type=int, default=20_000, help="docs for langid and PII")
    parser.add_argument("--only", choices=["extraction", "rules", "langid", "pii"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if common.missing(f"skipped: {SHARED} not found (the benchmark needs ../shared)", BENCH, DOLMA):
        return 0
    results: dict = {}
    pool: list[str] = []
    if args.only in (None, "extraction", "rules", "langid", "pii"):
        if args.only in (None, "extraction"):
            results["extraction"], bench_texts = bench_extraction()
            results["warc"], warc_texts = bench_warc()
        else:  # the texts still come from the same pages, untimed
            from curation_assets.curation.ingest.documents import extract

            bench_texts = [
                t
                for p in BENCH.glob("html/*.gz")
                if (t := extract(gzip.decompress(p.read_bytes())).text)
            ]
            warc_texts = common.warc_texts(DOLMA.glob("*.warc.gz"))
        pool = bench_texts + warc_texts + common.dolma_texts(DOLMA.glob("cc_en_head-*.jsonl"))
    if args.only in (None, "rules"):
        results["rules"] = bench_rules(pool, args.docs)
    if args.only in (None, "langid"):
        results["langid"] = bench_langid(pool, args.small_docs)
    if args.only in (None, "pii"):
        results["pii"] = bench_pii(pool, args.small_docs)
    print(json.dumps(results, indent=2, ensure_ascii=False))
    if args.json:
        common.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
