"""Benchmark near-duplicate detection and decontamination on real instruction data.

    python benchmarks/bench_dedup.py                 # quality + throughput on 100k records
    python benchmarks/bench_dedup.py --n 100000 --large 1000000   # + 1M run and 1% increment

Corpus: real records from ``../shared/data`` (alpaca-libre instructions, banking77
utterances). Background records are real records resampled with 30% of their words
replaced by words drawn from the corpus vocabulary (distinct documents with real length
and vocabulary); ``--dup-rate`` of them are light edits (1-3 word operations) of an earlier
background record, as a scrape would have. Planted pairs: an unedited real record and a
copy edited word by word (substitute, delete, insert, swap) until its exact word 5-gram
Jaccard falls in a target bin; the copy comes later. Recall = planted pairs whose copy
lands in the original's cluster. Exits 0 with a message when ``../shared`` is absent.
"""

import os
import random
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common  # noqa: E402
from benchmarks.common import Timer, create_table, log_json, peak_rss_gb  # noqa: E402
from curation_assets.curation.filtering import dedup  # noqa: E402
from curation_assets.curation.filtering.decontamination import (  # noqa: E402
    DecontaminationConfig,
    find_contamination,
)

SHARED = common.SHARED_DATA
BINS = [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0)]
NO_INPUT = {"", "<noinput>", "<no input>", "noinput", "none", "n/a", "null"}


# --------------------------------------------------------------------------- real data


def load_pool() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real (prompt, response) records, and held-out evaluation texts (banking77 test)."""
    rows = []
    for item in common.alpaca_raw_records():
        prompt, extra = item.get("instruction") or "", item.get("input") or ""
        if extra.strip().lower() not in NO_INPUT:
            prompt = f"{prompt}\n\n{extra}"
        if prompt.strip() and (item.get("output") or "").strip():
            rows.append(("alpaca", prompt, item["output"]))
    train = common.banking77("train")
    rows += [("banking77", t, c) for t, c in zip(train["text"], train["label"], strict=True)]
    pool = pd.DataFrame(rows, columns=["source", "prompt", "response"])
    pool = pool.drop_duplicates(["prompt", "response"], ignore_index=True)
    test = common.banking77("test")
    evaluation = pd.DataFrame(
        {"eval_id": [f"b77-test-{i}" for i in range(len(test))], "text": test["text"]}
    )
    return pool, evaluation


def py_words(text: str) -> list[str]:
    """Words as the pipeline sees them (NFC, lower case, letters/digits/underscore)."""
    return re.findall(r"[^\W]+", unicodedata.normalize("NFC", text).lower())


def py_jaccard(a: str, b: str, n: int = 5) -> float:
    """Independent, plain-Python word n-gram Jaccard (checks the vectorized one)."""

    def grams(text: str) -> set[tuple[str, ...]]:
        w = py_words(text)
        return (
            {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}
            if len(w) >= n
            else {tuple(w)}
            if w
            else set()
        )

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


# --------------------------------------------------------------------------- generation


class Generator(common.WordEdits):
    """Background records, light edits and planted pairs from the real pool."""

    def __init__(self, pool: pd.DataFrame, seed: int) -> None:
        self.prompts = [p.split() for p in pool["prompt"]]
        self.responses = [r.split() for r in pool["response"]]
        vocab = [w for toks in self.prompts + self.responses for w in toks]
        super().__init__(random.Random(seed), vocab)

    def edit(self, tokens: list[str]) -> list[str]:
        """One random word operation: substitute, delete, insert or swap."""
        out = list(tokens)
        op = self.rng.randrange(4)
        if not out:
            return [self.word()]
        i = self.rng.randrange(len(out))
        if op == 0:
            out[i] = self.word()
        elif op == 1 and len(out) > 1:
            del out[i]
        elif op == 2:
            out.insert(i, self.word())
        elif len(out) > 1:
            j = min(i + 1, len(out) - 1) if i + 1 < len(out) else i - 1
            out[i], out[j] = out[j], out[i]
        return out

    def background(self, n: int, dup_rate: float, min_words: int = 0) -> list[tuple[str, str, str]]:
        """(kind, prompt, response): distinct records, ``dup_rate`` light edits of earlier.

        With ``min_words``, a record joins several real records until it is that long.
        """
        out: list[tuple[str, str, str]] = []
        for _ in range(n):
            if out and self.rng.random() < dup_rate:
                _, p, r = out[self.rng.randrange(len(out))]
                pt, rt = p.split(), r.split()
                for _ in range(self.rng.randint(1, 3)):
                    if self.rng.random() < 0.7 or not rt:
                        pt = self.edit(pt)
                    else:
                        rt = self.edit(rt)
                out.append(("light_dup", " ".join(pt), " ".join(rt)))
            else:
                pt, rt = [], []
                while not pt or len(pt) + len(rt) < min_words:
                    k = self.rng.randrange(len(self.prompts))
                    pt, rt = pt + self.prompts[k], rt + self.responses[k]
                p = " ".join(self.substitute(pt, 0.3))
                r = " ".join(self.substitute(rt, 0.3))
                out.append(("background", p, r))
        return out

    def planted(self, pool: pd.DataFrame, per_bin: int) -> pd.DataFrame:
        """Pairs (original, edited copy) with known exact Jaccard, ``per_bin`` per bin.

        An original is one real record or, when the bin needs a longer text (one edit
        changes up to 5 shingles, so J >= 0.9 needs ~100 words), several real records
        joined (prompts with prompts, responses with responses). No real record is used
        twice, so originals do not overlap each other.
        """
        order = list(range(len(pool)))
        self.rng.shuffle(order)
        pairs, counts = [], dict.fromkeys(BINS, 0)
        while order and not all(c >= per_bin for c in counts.values()):
            open_bins = [b for b, c in counts.items() if c < per_bin]
            lo, hi = open_bins[self.rng.randrange(len(open_bins))]
            need = (5 * (1 + lo) / (1 - lo) + 5) * self.rng.uniform(1.0, 2.0)
            p, r = [], []
            while order and len(p) + len(r) < need:
                k = order.pop()
                p, r = p + self.prompts[k], r + self.responses[k]
            target = self.rng.uniform(lo, hi)
            text = " ".join(p) + " " + " ".join(r)
            ep, er = p, r
            for _ in range(500):
                if self.rng.random() < len(p) / (len(p) + len(r) + 1e-9):
                    ep = self.edit(ep)
                else:
                    er = self.edit(er)
                j = py_jaccard(text, " ".join(ep) + " " + " ".join(er))
                if j < target:
                    break
            pairs.append((" ".join(p), " ".join(r), " ".join(ep), " ".join(er)))
            for b in BINS:
                if b[0] <= j < b[1]:
                    counts[b] += 1
        frame = pd.DataFrame(pairs, columns=["orig_prompt", "orig_response", "prompt", "response"])
        truth = dedup.jaccard_of_texts(
            (frame["orig_prompt"] + " " + frame["orig_response"]).tolist(),
            (frame["prompt"] + " " + frame["response"]).tolist(),
        )
        frame["true_jaccard"] = truth
        frame["bin"] = pd.cut(
            frame["true_jaccard"],
            [b[0] for b in BINS] + [1.0001],
            right=False,
            labels=[f"{lo:.1f}-{hi:.1f}" for lo, hi in BINS],
        )
        frame = frame.dropna(subset=["bin"])
        return frame.groupby("bin", observed=True).head(per_bin).reset_index(drop=True)


def build_corpus(
    n: int, dup_rate: float, per_bin: int, seed: int, cache: Path, min_words: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corpus table (record_id, prompt, response, ...) and its planted pairs."""
    path = cache / f"corpus_{n}_{dup_rate}_{per_bin}_{seed}_{min_words}.parquet"
    pairs_path = path.with_suffix(".pairs.parquet")
    if path.exists() and pairs_path.exists():
        return pd.read_parquet(path), pd.read_parquet(pairs_path)
    pool, _ = load_pool()
    gen = Generator(pool, seed)
    planted = gen.planted(pool, per_bin) if per_bin else pd.DataFrame()
    n_background = n - 2 * len(planted)
    records = gen.background(n_background, dup_rate, min_words)
    kinds = [k for k, _, _ in records]
    prompts = [p for _, p, _ in records]
    responses = [r for _, _, r in records]
    m = len(records)
    # Planted originals and copies; the copy always comes later in the order.
    for row in planted.itertuples():
        kinds += ["planted_original", "planted_copy"]
        prompts += [row.orig_prompt, row.prompt]
        responses += [row.orig_response, row.response]
    if len(planted):
        planted["orig_index"] = m + 2 * np.arange(len(planted))
        planted["copy_index"] = planted["orig_index"] + 1
    rng = np.random.default_rng(seed)
    position = rng.permutation(len(kinds))  # position of record i in ingest order
    if len(planted):
        a = planted["orig_index"].to_numpy(int)
        b = planted["copy_index"].to_numpy(int)
        swap = position[a] > position[b]
        position[a[swap]], position[b[swap]] = position[b[swap]], position[a[swap]]
    corpus = pd.DataFrame(
        {
            "record_id": [f"r{p:07d}" for p in position],
            "kind": kinds,
            "prompt": prompts,
            "response": responses,
            "batch": "b0",
            "line_no": position,
            "ingested_at": pd.Timestamp("2026-11-01"),
        }
    )
    if len(planted):
        planted["orig_id"] = corpus["record_id"].to_numpy()[planted["orig_index"].to_numpy(int)]
        planted["copy_id"] = corpus["record_id"].to_numpy()[planted["copy_index"].to_numpy(int)]
    corpus = corpus.sort_values("line_no", ignore_index=True)
    cache.mkdir(parents=True, exist_ok=True)
    corpus.to_parquet(path)
    planted.to_parquet(pairs_path)
    return corpus, planted


# --------------------------------------------------------------------------- measuring


def clusters(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute("SELECT record_id, cluster_id FROM minhash_docs").fetchall()
    return dict(rows)


def quality(con, corpus, planted, configs, thresholds) -> list[dict]:
    """Recall per true-Jaccard bin and precision, per (config, threshold)."""
    out = []
    for name, cfg in configs.items():
        for t in thresholds:
            with Timer() as timer:
                res = dedup.near_duplicates(con, "corpus", t, order_by="line_no", config=cfg)
            cl = clusters(con)
            same = np.array(
                [
                    cl[a] == cl[b]
                    for a, b in zip(planted["orig_id"], planted["copy_id"], strict=True)
                ]
            )
            row = {
                "config": name,
                "threshold": t,
                "seconds": round(timer.wall, 2),
                "candidates": res.candidate_pairs,
                "confirmed": res.confirmed_pairs,
                "flagged": res.new_near_duplicates,
            }
            for lo, hi in BINS:
                sel = (planted["true_jaccard"] >= lo) & (planted["true_jaccard"] < hi)
                row[f"found {lo:.1f}-{hi:.1f}"] = round(float(same[sel.to_numpy()].mean()), 3)
            above = (planted["true_jaccard"] >= t).to_numpy()
            row["recall (J>=t)"] = round(float(same[above].mean()), 3)
            j = planted["true_jaccard"].to_numpy()[above]
            row["S-curve (J>=t)"] = round(float((1 - (1 - j**cfg.rows) ** cfg.bands).mean()), 3)
            row["planted below t merged"] = round(float(same[~above].mean()), 3)
            # Precision: every flagged record re-checked with plain-Python Jaccard
            # against the record it was matched to (a sample of 2,000).
            flagged = con.sql(
                "SELECT n.record_id, n.matched_record_id, n.matched_jaccard, "
                "a.prompt || ' ' || a.response AS x, b.prompt || ' ' || b.response AS y "
                "FROM near_duplicates n JOIN corpus a ON a.record_id = n.record_id "
                "JOIN corpus b ON b.record_id = n.matched_record_id USING SAMPLE 2000 ROWS"
            ).df()
            check = np.array([py_jaccard(x, y) for x, y in zip(flagged.x, flagged.y, strict=True)])
            row["precision (py check)"] = (
                round(float((check >= t - 1e-9).mean()), 4) if len(check) else None
            )
            row["max |J diff|"] = (
                round(float(np.abs(check - flagged.matched_jaccard).max()), 4)
                if len(check)
                else None
            )
            out.append(row)
            log_json(row)
    return out


def throughput(con, table: str, n: int, cfg: dedup.MinHashConfig) -> dict:
    chars, words = con.execute(
        f"SELECT avg(length(prompt || ' ' || response)), "
        f"avg(len(string_split(prompt || ' ' || response, ' '))) FROM {table}"
    ).fetchall()[0]
    with Timer() as timer:
        res = dedup.near_duplicates(con, table, cfg.threshold, order_by="line_no", config=cfg)
    return {
        "records": n,
        "avg_chars": round(chars),
        "avg_words": round(words, 1),
        "wall_s": round(timer.wall, 1),
        "cpu_s": round(timer.cpu, 1),
        "records_per_s": round(n / timer.wall),
        "records_per_cpu_s": round(n / timer.cpu),
        "flagged": res.new_near_duplicates,
        "candidates": res.candidate_pairs,
        "stages_s": {k: round(v, 2) for k, v in res.seconds.items()},
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }


def incremental(
    con,
    corpus: pd.DataFrame,
    gen: Generator,
    full: dict,
    cfg: dedup.MinHashConfig,
    seed: int,
    min_words: int = 0,
) -> dict:
    """Add a 1% batch (10% of it light edits of old records) to the built index."""
    n_new = max(1, len(corpus) // 100)
    rng = random.Random(seed + 1)
    records, truth = [], []
    for i in range(n_new):
        if rng.random() < 0.1:
            k = rng.randrange(len(corpus))
            pt = gen.edit(corpus.at[k, "prompt"].split())
            records.append(("cross_batch_dup", " ".join(pt), corpus.at[k, "response"]))
            truth.append((i, corpus.at[k, "record_id"]))
        else:
            records += gen.background(1, 0.0, min_words)
    start = int(corpus["line_no"].max()) + 1
    batch = pd.DataFrame(
        {
            "record_id": [f"n{i:07d}" for i in range(n_new)],
            "kind": [k for k, _, _ in records],
            "prompt": [p for _, p, _ in records],
            "response": [r for _, _, r in records],
            "batch": "b1",
            "line_no": np.arange(start, start + n_new),
            "ingested_at": pd.Timestamp("2026-11-08"),
        }
    )
    with common.registered(con, "_batch", batch):
        con.execute("INSERT INTO corpus SELECT * FROM _batch")
    before = con.execute(
        "SELECT count(*), sum(hash(record_id, cluster_id)) FROM minhash_docs "
    ).fetchall()[0]
    with Timer() as timer:
        res = dedup.dedup_new_records(con, "corpus", order_by="line_no", config=cfg)
    after_old = con.execute(
        "SELECT count(*), sum(hash(record_id, cluster_id)) FROM minhash_docs "
        "WHERE record_id NOT LIKE 'n%'"
    ).fetchall()[0]
    cl = clusters(con)
    found = np.array([cl[f"n{i:07d}"] == cl[old] for i, old in truth])
    by_id = corpus.set_index("record_id")
    true_j = np.array(
        dedup.jaccard_of_texts(
            [by_id.at[old, "prompt"] + " " + by_id.at[old, "response"] for _, old in truth],
            [records[i][1] + " " + records[i][2] for i, _ in truth],
        )
    )
    above = true_j >= cfg.threshold
    return {
        "batch_records": n_new,
        "wall_s": round(timer.wall, 2),
        "cpu_s": round(timer.cpu, 2),
        "ratio_to_full": round(timer.wall / full["wall_s"], 4),
        "flagged": res.new_near_duplicates,
        "planted_cross_batch_dups": len(truth),
        "planted_with_true_j_above_threshold": int(above.sum()),
        "recall_above_threshold": round(float(found[above].mean()), 4) if above.any() else None,
        "found_below_threshold": int(found[~above].sum()),
        "old_rows_untouched": before == after_old,
        "stages_s": {k: round(v, 2) for k, v in res.seconds.items()},
    }


def decontamination(con, evaluation: pd.DataFrame, n_plant: int, seed: int) -> dict:
    """Plant eval texts into training records; count what is caught and what else is.

    A planted record wraps an evaluation text in other words and upper-cases it, so only
    n-gram or contained-sequence matching can catch it; texts under ``min_words`` words
    match only an identical prompt by design.
    """
    cfg = DecontaminationConfig()
    rng = random.Random(seed)
    picks = rng.sample(range(len(evaluation)), n_plant)
    corpus_ids = [
        r[0]
        for r in con.execute(
            f"SELECT record_id FROM corpus USING SAMPLE {n_plant} ROWS (reservoir, {seed})"
        ).fetchall()
    ]
    planted = pd.DataFrame(
        {
            "record_id": corpus_ids,
            "eval_id": evaluation["eval_id"].to_numpy()[picks],
            "text": evaluation["text"].to_numpy()[picks],
        }
    )
    with common.registered(con, "_planted", planted):
        con.execute(
            "CREATE OR REPLACE TABLE decon_train AS SELECT c.record_id, "
            "CASE WHEN p.text IS NULL THEN c.prompt ELSE 'Customer wrote: ' || upper(p.text) || "
            "' Classify the intent.' END AS prompt, c.response FROM corpus c "
            "LEFT JOIN _planted p USING (record_id)"
        )
    n = common.scalar(con, "SELECT count(*) FROM decon_train")
    with Timer() as timer:
        found = find_contamination(con, evaluation, "decon_train", config=cfg)
    keys = set(zip(found.record_id, found.eval_id, strict=True))
    caught = np.array(
        [(r, e) in keys for r, e in zip(planted.record_id, planted.eval_id, strict=True)]
    )
    long_enough = np.array([len(py_words(t)) >= cfg.min_words for t in planted.text])
    planted_ids = set(planted.record_id)
    other = found[~found.record_id.isin(planted_ids)]
    return {
        "train_records": n,
        "eval_texts": len(evaluation),
        "wall_s": round(timer.wall, 2),
        "records_per_s": round(n / timer.wall),
        "planted": n_plant,
        "planted_caught": round(float(caught.mean()), 4),
        f"planted_caught_{cfg.min_words}plus_words": round(float(caught[long_enough].mean()), 4),
        "planted_under_min_words": int((~long_enough).sum()),
        "other_records_flagged": int(other.record_id.nunique()),
        "other_by_match": other.groupby("match").size().to_dict(),
        "other_examples": other.head(5).to_dict("records"),
    }


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="quality/throughput corpus")
    parser.add_argument("--large", type=int, default=0, help="also a full run + 1%% batch")
    parser.add_argument("--dup-rate", type=float, default=0.1)
    parser.add_argument("--per-bin", type=int, default=500, help="planted pairs per bin")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--large-min-words", type=int, default=0, help="join real records to this length"
    )
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bench_dedup")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args()
    if common.missing(
        f"skipped: {SHARED} not found (the benchmark needs the shared real data)", SHARED
    ):
        return 0
    results: dict = {"cores": os.cpu_count()}
    cfg = dedup.MinHashConfig()
    warm = duckdb.connect()  # import rensa/scipy once, outside the timings
    create_table(
        warm,
        "corpus",
        pd.DataFrame(
            {
                "record_id": ["a", "b"],
                "prompt": ["x y z"] * 2,
                "response": ["q", "q r"],
                "line_no": [0, 1],
            }
        ),
    )
    dedup.near_duplicates(warm, "corpus", order_by="line_no")
    warm.close()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        if not args.skip_quality:
            corpus, planted = build_corpus(
                args.n, args.dup_rate, args.per_bin, args.seed, args.cache
            )
            create_table(con, "corpus", corpus)
            words = con.execute(
                "SELECT avg(length(prompt || ' ' || response)), "
                "avg(len(string_split(prompt || ' ' || response, ' '))) "
                "FROM corpus"
            ).fetchall()[0]
            results["corpus"] = {
                "records": len(corpus),
                "avg_chars": round(words[0]),
                "avg_words": round(words[1], 1),
                "kinds": corpus["kind"].value_counts().to_dict(),
                "planted_per_bin": planted["bin"].value_counts().to_dict(),
            }
            log_json(results["corpus"])
            results["throughput_n"] = throughput(con, "corpus", len(corpus), cfg)
            log_json(results["throughput_n"])
            configs = {"14x8 (FineWeb)": cfg, "20x5": dedup.MinHashConfig(bands=20, rows=5)}
            results["quality"] = quality(con, corpus, planted, configs, [0.7, 0.8, 0.9])
            _, evaluation = load_pool()
            results["decontamination"] = decontamination(con, evaluation, 1000, args.seed)
            log_json(results["decontamination"])
        if args.large:
            con.close()
            common.remove_database(Path(tmp) / "bench.duckdb")
            con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
            with Timer() as gen_timer:
                corpus, _ = build_corpus(
                    args.large, args.dup_rate, 0, args.seed, args.cache, args.large_min_words
                )
            print(f"corpus {len(corpus)} ready in {gen_timer.wall:.0f}s", flush=True)
            create_table(con, "corpus", corpus)
            results["throughput_large"] = throughput(con, "corpus", len(corpus), cfg)
            log_json(results["throughput_large"])
            pool, _ = load_pool()
            gen = Generator(pool, args.seed + 2)
            results["incremental"] = incremental(
                con, corpus, gen, results["throughput_large"], cfg, args.seed, args.large_min_words
            )
            log_json(results["incremental"])
            results["index_file_mb"] = round(os.path.getsize(Path(tmp) / "bench.duckdb") / 1e6)
        con.close()
    results["peak_rss_gb"] = round(peak_rss_gb(), 2)
    if args.json:
        common.write_json(args.json, results)
    log_json({"peak_rss_gb": results["peak_rss_gb"]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
