"""Fold models behind the suspect queue: fit once on a capped sample, score any row later.

Confident learning needs out-of-sample probabilities: no row may be scored by a model that
saw it. Every example gets a fixed fold from a hash of its id (``FOLDS`` folds). Fold
model ``k`` is trained on a stratified sample (at most ``max_per_label`` rows per label,
``max_rows`` in all) of the rows *outside* fold ``k``, and scores the rows of fold ``k``:
the ones present at fit time and any row that arrives later. So fitting costs the same
at 10K and at 1M rows, scoring streams in chunks, and a new row is scored without a refit
while every old score stays what it was.

Two cheap model kinds, each calibrated, then pooled:

* ``tfidf+nb``: complement naive Bayes on TF-IDF word 1-2-grams and character 2-5-grams
  (vocabularies capped, fitted on the sample). Measured against logistic regression on
  the same features (today's model): the same precision for 1/20 of the fit time;
* ``embeddings+logreg``: logistic regression on sentence embeddings (static by default,
  see ``static_embeddings``), when an encoder is configured.

Each model's probabilities are temperature-scaled (the temperature that minimizes the
out-of-fold log loss of the given labels on the sample), then pooled by a normalized
geometric mean: a model that is sure a label is wrong is not averaged away by one that
has no opinion. ``quality`` = the pooled probability of the given label (cleanlab's
self-confidence); ``flagged`` = cleanlab's confident-learning rule: another label's
probability reaches that label's threshold (its mean self-confidence on the sample).
No Dagster here.
"""

import hashlib
import io
import json
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FOLDS = 5
FORMAT_VERSION = 1  # bump when a stored model can no longer be read or means something else
TEMPERATURES = (0.1, 0.15, 0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 4.0, 6.0)


def fold_of(example_ids: Sequence[str], folds: int = FOLDS) -> np.ndarray:
    """The fixed fold of each example (first 8 hex digits of its id's SHA-256, mod folds).

    Same value as the SQL ``fold_sql`` computes in the warehouse.
    """
    return np.array(
        [int(hashlib.sha256(e.encode()).hexdigest()[:8], 16) % folds for e in example_ids],
        dtype=np.int64,
    )


def fold_sql(column: str = "example_id", folds: int = FOLDS) -> str:
    """SQL for ``fold_of`` (DuckDB)."""
    return f"(('0x' || substr(sha256({column}), 1, 8))::UBIGINT % {int(folds)})::INTEGER"


@dataclass(frozen=True)
class FitConfig:
    """What a fit uses; its ``fingerprint`` says when a stored model no longer applies."""

    max_rows: int = 20_000  # training sample, all labels together
    max_per_label: int = 400  # at most this many rows of one label in the sample
    max_word_features: int = 4_000
    max_char_features: int = 4_000
    nb_alpha: float = 0.3
    logreg_c: float = 10.0
    encoder: str = ""  # cache key of the embedding model; "" = TF-IDF only
    seed: int = 0

    def fingerprint(self) -> str:
        text = json.dumps({**self.__dict__, "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class FittedModels:
    """Everything needed to score a row later (picklable; stored in the warehouse)."""

    classes: list[str]
    config: FitConfig
    vectorizers: tuple[Any, Any]  # word, char TfidfVectorizer
    tfidf_models: list[Any]  # one per fold
    embedding_models: list[Any] | None  # one per fold, or None
    temperatures: dict[str, float]
    thresholds: np.ndarray  # per class: mean self-confidence on the sample
    sample_rows: int
    rows_at_fit: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def models(self) -> tuple[str, ...]:
        return ("tfidf+nb",) + (("embeddings+logreg",) if self.embedding_models else ())


def stratified_sample(
    labels: np.ndarray, max_rows: int, max_per_label: int, seed: int
) -> np.ndarray:
    """Row indices: up to ``max_per_label`` per label, ``max_rows`` in all, all labels kept."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"label": labels, "r": rng.random(len(labels))})
    frame["rank"] = frame.groupby("label")["r"].rank(method="first")
    per_label = max(2, min(max_per_label, max_rows // max(frame["label"].nunique(), 1)))
    chosen = frame[frame["rank"] <= per_label]
    return np.sort(chosen.index.to_numpy())


def _tfidf(texts: Sequence[str], config: FitConfig) -> tuple[Any, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(
        ngram_range=(1, 2),
        sublinear_tf=True,
        max_features=config.max_word_features,
        dtype=np.float32,
    )
    chars = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(2, 5),
        sublinear_tf=True,
        min_df=2 if len(texts) > 20 else 1,
        max_features=config.max_char_features,
        dtype=np.float32,
    )
    texts = [t or "" for t in texts]
    words.fit(texts)
    chars.fit(texts)
    return words, chars


def _features(vectorizers: tuple[Any, Any], texts: Sequence[str]) -> Any:
    from scipy.sparse import hstack

    texts = [t or "" for t in texts]
    return hstack([v.transform(texts) for v in vectorizers]).tocsr()


def _full_proba(model: Any, x: Any, n_classes: int) -> np.ndarray:
    out = np.zeros((x.shape[0], n_classes), dtype=np.float64)
    out[:, model.classes_] = model.predict_proba(x)
    return out


def _temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def _best_temperature(probs: np.ndarray, y: np.ndarray) -> float:
    rows = np.arange(len(y))
    losses = [-np.log(_temper(probs, t)[rows, y] + 1e-12).mean() for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def pool(probs: Sequence[np.ndarray]) -> np.ndarray:
    """Normalized geometric mean of calibrated probability matrices."""
    if len(probs) == 1:
        return probs[0]
    logs = np.mean([np.log(np.clip(p, 1e-12, 1.0)) for p in probs], axis=0)
    logs -= logs.max(axis=1, keepdims=True)
    out = np.exp(logs)
    return out / out.sum(axis=1, keepdims=True)


def fit(
    example_ids: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[str],
    config: FitConfig,
    embed: Any = None,
    log: Any = None,
) -> FittedModels | None:
    """Fit the fold models on a stratified sample; None if fewer than two labels qualify.

    ``embed``: callable ``indices -> embeddings`` for rows of the input (None: TF-IDF only).
    Labels with fewer than two rows are left out (their rows are scored by heuristics).
    """
    import time

    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    labels_arr = np.asarray([str(x) for x in labels], dtype=object)
    counts = pd.Series(labels_arr).value_counts()
    classes = sorted(counts[counts >= 2].index)
    if len(classes) < 2:
        return None
    eligible = np.flatnonzero(np.isin(labels_arr, classes))
    pick = eligible[
        stratified_sample(labels_arr[eligible], config.max_rows, config.max_per_label, config.seed)
    ]
    index = {label: i for i, label in enumerate(classes)}
    y = np.array([index[v] for v in labels_arr[pick]])
    folds = fold_of([example_ids[i] for i in pick])
    sample_texts = [texts[i] for i in pick]
    vectorizers = _tfidf(sample_texts, config)
    x = _features(vectorizers, sample_texts)
    timings = {"sample_and_features_s": time.perf_counter() - started}
    emb = np.asarray(embed(pick), dtype=np.float32) if embed is not None else None
    timings["sample_embeddings_s"] = time.perf_counter() - started - sum(timings.values())
    oof = {"tfidf": np.zeros((len(y), len(classes)))}
    if emb is not None:
        oof["embeddings"] = np.zeros((len(y), len(classes)))
    tfidf_models, embedding_models = [], []
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        if len(np.unique(y[train])) < 2:  # a tiny sample: fall back to every other row
            train = np.ones(len(y), dtype=bool)
        nb = ComplementNB(alpha=config.nb_alpha).fit(x[train], y[train])
        tfidf_models.append(nb)
        if test.any():
            oof["tfidf"][test] = _full_proba(nb, x[test], len(classes))
        if emb is not None:
            with threadpool_limits(1):  # BLAS threads only contend on problems this small
                lr = LogisticRegression(C=config.logreg_c, max_iter=500).fit(emb[train], y[train])
            embedding_models.append(lr)
            if test.any():
                oof["embeddings"][test] = _full_proba(lr, emb[test], len(classes))
        if log:
            log(f"suspect models: fold {k + 1}/{FOLDS} fitted on {int(train.sum()):,} rows")
    timings["fit_s"] = time.perf_counter() - started - sum(timings.values())
    temperatures = {name: _best_temperature(p, y) for name, p in oof.items()}
    pooled = pool([_temper(p, temperatures[name]) for name, p in oof.items()])
    self_conf = pooled[np.arange(len(y)), y]
    thresholds = np.array(
        [self_conf[y == c].mean() if (y == c).any() else 1.0 for c in range(len(classes))]
    )
    return FittedModels(
        classes=list(classes),
        config=config,
        vectorizers=vectorizers,
        tfidf_models=tfidf_models,
        embedding_models=embedding_models or None,
        temperatures=temperatures,
        thresholds=thresholds,
        sample_rows=len(pick),
        rows_at_fit=len(labels_arr),
        timings={k: round(v, 2) for k, v in timings.items()},
    )


@dataclass(frozen=True)
class ChunkScores:
    """Scores of one chunk (rows in input order); NaN/None where the label is unknown."""

    quality: np.ndarray
    suggested: np.ndarray
    p_given: np.ndarray
    p_suggested: np.ndarray
    flagged: np.ndarray
    per_model_quality: dict[str, np.ndarray]


def score(
    models: FittedModels,
    example_ids: Sequence[str],
    texts: Sequence[str],
    labels: Sequence[str],
    embeddings: np.ndarray | None = None,
) -> ChunkScores:
    """Out-of-sample scores of a chunk: each row by the model of its fold."""
    n = len(example_ids)
    n_classes = len(models.classes)
    index = {label: i for i, label in enumerate(models.classes)}
    y = np.array([index.get(str(v), -1) for v in labels], dtype=np.int64)
    known = y >= 0
    folds = fold_of(example_ids)
    x = _features(models.vectorizers, texts)
    parts = {"tfidf": np.zeros((n, n_classes))}
    use_embeddings = models.embedding_models is not None and embeddings is not None
    if use_embeddings:
        parts["embeddings"] = np.zeros((n, n_classes))
    for k in range(FOLDS):
        rows = np.flatnonzero(folds == k)
        if not len(rows):
            continue
        parts["tfidf"][rows] = _full_proba(models.tfidf_models[k], x[rows], n_classes)
        if use_embeddings:
            emb = np.asarray(embeddings[rows], dtype=np.float32)  # type: ignore[index]
            parts["embeddings"][rows] = _full_proba(models.embedding_models[k], emb, n_classes)  # type: ignore[index]
    calibrated = {name: _temper(p, models.temperatures[name]) for name, p in parts.items()}
    pooled = pool(list(calibrated.values()))
    safe_y = np.where(known, y, 0)
    rows = np.arange(n)
    best = pooled.argmax(axis=1)
    p_given = np.where(known, pooled[rows, safe_y], np.nan)
    above = pooled >= models.thresholds[None, :]
    above[rows, safe_y] = False
    flagged = known & above.any(axis=1)
    return ChunkScores(
        quality=p_given,
        suggested=np.asarray(models.classes, dtype=object)[best],
        p_given=p_given,
        p_suggested=pooled[rows, best],
        flagged=flagged,
        per_model_quality={
            name: np.where(known, p[rows, safe_y], np.nan) for name, p in calibrated.items()
        },
    )


def dumps(models: FittedModels) -> bytes:
    buffer = io.BytesIO()
    pickle.dump(models, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.getvalue()


def loads(blob: bytes) -> FittedModels:
    """A stored model (only ever one this product wrote into its own warehouse)."""
    return pickle.loads(blob)  # noqa: S301


def chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
