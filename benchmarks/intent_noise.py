"""Real intent data with realistic label noise, for the review-stage benchmarks.

``intents()``: banking77 (train + test) and CLINC150 (in-scope train/val/test) from
``../shared/data``: about 35k distinct customer messages over 227 intents.

``with_confusable_noise()``: swaps a share of the labels to a *confusable* intent, near
the class boundary more often, the way hurried annotators err: each intent's confusable
intents are the two whose TF-IDF centroids are nearest to its own, and a row is swapped
with probability proportional to its similarity to that intent's centroid (plus a floor).

``scaled()``: the same rows resampled to any size, each copy made distinct (an opener, a
tail and a reference number, as in real support traffic) so that the exact-duplicate and
near-duplicate rules keep most of them; a copy keeps its original's true and given label.
"""

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks import common

BANKING = common.BANKING77
CLINC = common.SHARED_DATA / "clinc150/data_full.json"

_OPENERS = (
    "", "hi, ", "hello, ", "hey ", "good morning, ", "quick question: ", "please help, ",
    "urgent: ", "sorry to bother you, ", "excuse me, ", "hi team, ", "dear support, ",
)  # fmt: skip
_TAILS = (
    "", " thanks", " thank you", " please", " asap", " what should I do?", " any idea?",
    " can you check?", " this is annoying", " help!", " cheers", " ty",
)  # fmt: skip


def available() -> bool:
    return (BANKING / "train.csv").exists() and CLINC.exists()


def intents() -> pd.DataFrame:
    """Columns ``text``, ``label``, ``source`` (banking77 / clinc150); distinct texts."""
    frames = [common.banking77(split).assign(source="banking77") for split in ("train", "test")]
    clinc = json.loads(CLINC.read_text())
    rows = [row for split in ("train", "val", "test") for row in clinc[split]]
    frames.append(pd.DataFrame(rows, columns=["text", "label"]).assign(source="clinc150"))
    frame = pd.concat(frames, ignore_index=True)
    frame["text"] = frame["text"].astype(str).str.strip()
    return frame.drop_duplicates("text").reset_index(drop=True)


def with_confusable_noise(frame: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """``frame`` plus ``true_label``, ``noisy``; ``label`` swapped for ``rate`` of rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    rng = np.random.default_rng(seed)
    labels = np.asarray(sorted(frame["label"].unique()))
    index = {label: i for i, label in enumerate(labels)}
    y = frame["label"].map(index).to_numpy()
    x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2).fit_transform(
        frame["text"]
    )
    onehot = np.zeros((len(labels), len(y)), dtype=np.float32)
    onehot[y, np.arange(len(y))] = 1.0
    centroids = normalize(np.asarray((onehot @ x).astype(np.float32)))
    between = centroids @ centroids.T
    np.fill_diagonal(between, -1.0)
    confusable = np.argsort(-between, axis=1)[:, :2]  # two nearest intents per intent
    sims = np.asarray(x @ centroids.T)  # rows x intents
    options = confusable[y]  # rows x 2
    option_sims = np.take_along_axis(sims, options, axis=1)
    alt = options[np.arange(len(y)), option_sims.argmax(axis=1)]
    weight = option_sims.max(axis=1) + 0.02
    swapped = rng.choice(len(y), size=round(rate * len(y)), replace=False, p=weight / weight.sum())
    return swap_labels(frame, swapped, labels[alt[swapped]])


def swap_labels(
    frame: pd.DataFrame, rows: np.ndarray, labels: Sequence[str] | np.ndarray
) -> pd.DataFrame:
    """A copy of ``frame`` whose ``rows`` (index labels) get ``labels``; the labels it had
    become ``true_label``, and ``noisy`` says which rows now differ."""
    out = frame.copy()
    out["true_label"] = out["label"]
    out.loc[rows, "label"] = labels
    out["noisy"] = out["label"] != out["true_label"]
    return out


def scaled(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn from ``frame``: the originals first, then distinct variants."""
    rng = np.random.default_rng(seed)
    take = np.concatenate([rng.permutation(len(frame)), rng.integers(0, len(frame), n)])[:n]
    out = frame.iloc[take].reset_index(drop=True)
    first = np.zeros(n, dtype=bool)
    first[: min(n, len(frame))] = True
    openers = np.asarray(_OPENERS, dtype=object)[rng.integers(0, len(_OPENERS), n)]
    tails = np.asarray(_TAILS, dtype=object)[rng.integers(0, len(_TAILS), n)]
    refs = rng.integers(10_000, 99_999_999, n).astype(str)
    variant = openers + out["text"].to_numpy(dtype=object) + tails + " (ref " + refs + ")"
    out["text"] = np.where(first, out["text"].to_numpy(dtype=object), variant)
    return out
