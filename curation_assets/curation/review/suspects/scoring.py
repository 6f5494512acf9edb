"""Suspicion of each example: confident learning on out-of-sample probabilities for
labelled data, a heuristic for the rest, with a reason a reviewer reads."""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curation_assets.curation.review import suspect_model

Encoder = Callable[[list[str]], np.ndarray]
Log = Callable[[str], None]

EMBEDDINGS_TABLE = "example_embeddings"
SCORES_TABLE = "suspect_scores"
MODELS_TABLE = "suspect_models"
FLAG_WEIGHT = 0.3  # suspicion added by one rule warning
LENGTH_Z = 2.0  # |z| of log length above which a length is an outlier
REFIT_GROWTH = 1.25  # refit when the data grew by this factor while the sample was not full
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


def flag_count(flags_json: Sequence[str | None]) -> np.ndarray:
    """Number of rule warnings in each JSON list (``[]`` or NULL: none)."""
    return np.array([len(json.loads(f)) if f else 0 for f in flags_json], dtype=int)


@dataclass(frozen=True)
class LengthStats:
    """Mean and spread of log lengths, fixed at fit time so later rows score the same way."""

    prompt_mean: float = 0.0
    prompt_std: float = 0.0
    response_mean: float = 0.0
    response_std: float = 0.0

    @classmethod
    def of(cls, prompt_lengths: np.ndarray, response_lengths: np.ndarray) -> "LengthStats":
        p, r = np.log1p(prompt_lengths), np.log1p(response_lengths)
        return cls(
            float(p.mean()) if len(p) else 0.0,
            float(p.std()) if len(p) else 0.0,
            float(r.mean()) if len(r) else 0.0,
            float(r.std()) if len(r) else 0.0,
        )

    def z(self, prompt_lengths: np.ndarray, response_lengths: np.ndarray) -> tuple:
        def one(lengths, mean, std):
            logs = np.log1p(np.asarray(lengths, dtype=float))
            return (logs - mean) / std if std > 0 else np.zeros(len(logs))

        return (
            one(prompt_lengths, self.prompt_mean, self.prompt_std),
            one(response_lengths, self.response_mean, self.response_std),
        )


def heuristic_score(n_flags: np.ndarray, z_prompt: np.ndarray, z_response: np.ndarray):
    """Suspicion from rule warnings and length outliers: ``1 - prod(1 - p_i)`` (vectorized)."""
    keep = (1 - FLAG_WEIGHT) ** np.asarray(n_flags, dtype=float)
    for z in (np.abs(z_prompt), np.abs(z_response)):
        keep = keep * np.where(z > LENGTH_Z, 1 - np.minimum(0.6, (z - LENGTH_Z) / 4 + 0.2), 1.0)
    return 1.0 - keep


def heuristic_reason(n_flags: int, z_prompt: float, z_response: float) -> str:
    """The reason text of a heuristic score (same wording as ``REASON_SQL``)."""
    parts = [f"{n_flags} rule warning(s)"] if n_flags else []
    for name, z in (("response", z_response), ("prompt", z_prompt)):
        if abs(z) > LENGTH_Z:
            parts.append(f"unusually {'long' if z > 0 else 'short'} {name} (z={z:+.1f})")
    return "suspect: " + "; ".join(parts) if parts else "no warning signs"


def score_frame(
    models: suspect_model.FittedModels | None,
    frame: pd.DataFrame,
    stats: LengthStats,
    *,
    labelled: bool,
    embeddings: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score columns (``RAW_COLUMNS``) of ``frame`` (example_id, prompt, response, flags)."""
    n = len(frame)
    prompts = frame["prompt"].fillna("").astype(str).tolist()
    responses = frame["response"].fillna("").astype(str).tolist()
    n_flags = flag_count(frame["flags"].tolist()) if "flags" in frame else np.zeros(n, int)
    z_prompt, z_response = stats.z(
        np.array([len(p) for p in prompts]), np.array([len(r) for r in responses])
    )
    heuristic = heuristic_score(n_flags, z_prompt, z_response)
    out = pd.DataFrame(
        {
            "example_id": frame["example_id"].astype(str).to_numpy(),
            "score": heuristic,
            "quality": np.nan,
            "given": responses if labelled else None,
            "suggested": None,
            "p_given": np.nan,
            "p_suggested": np.nan,
            "method": "heuristic",
            "flagged": False,
            "n_flags": n_flags,
            "z_prompt": z_prompt,
            "z_response": z_response,
            "quality_tfidf": np.nan,
            "quality_embeddings": np.nan,
        }
    )
    if not labelled or models is None or n == 0:
        return out
    texts = prompts
    scores = suspect_model.score(models, out["example_id"].tolist(), texts, responses, embeddings)
    modelled = ~np.isnan(scores.quality)
    keep = np.nan_to_num(scores.quality, nan=1.0) * (1 - FLAG_WEIGHT) ** n_flags
    out["score"] = np.where(modelled, 1.0 - keep, heuristic)
    out["quality"] = scores.quality
    out["suggested"] = np.where(modelled, scores.suggested, None)
    out["p_given"] = scores.p_given
    out["p_suggested"] = np.where(modelled, scores.p_suggested, np.nan)
    out["method"] = np.where(modelled, " + ".join(models.models), "heuristic")
    out["flagged"] = scores.flagged
    for name, values in scores.per_model_quality.items():
        out[f"quality_{name}"] = values
    return out


def score_examples(
    frame: pd.DataFrame,
    *,
    labelled: bool,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    config: suspect_model.FitConfig | None = None,
) -> pd.DataFrame:
    """Fit on ``frame`` and score every row of it (``SCORE_COLUMNS``; higher = worse).

    ``frame``: example_id, prompt, response and optionally ``flags`` (JSON list text).
    ``labelled``: the response is a class label. The warehouse path (``refresh_scores``)
    does the same, keeps the models and scores only new rows on later runs.
    """
    prompts = frame["prompt"].fillna("").astype(str)
    responses = frame["response"].fillna("").astype(str)
    stats = LengthStats.of(prompts.str.len().to_numpy(), responses.str.len().to_numpy())
    models = None
    if labelled and len(frame):
        config = config or suspect_model.FitConfig(
            encoder="given" if embeddings is not None else "", seed=seed
        )
        embed = (lambda rows: embeddings[rows]) if embeddings is not None else None
        models = suspect_model.fit(
            frame["example_id"].astype(str).tolist(),
            prompts.tolist(),
            responses.tolist(),
            config,
            embed,
        )
    raw = score_frame(models, frame, stats, labelled=labelled, embeddings=embeddings)
    raw["reason"] = [_reason(row) for row in raw.itertuples(index=False)]
    return raw[SCORE_COLUMNS]


def _reason(row) -> str:
    """Python twin of ``REASON_SQL`` (small frames only)."""
    heuristic = heuristic_reason(int(row.n_flags), float(row.z_prompt), float(row.z_response))
    if row.method == "heuristic":
        if row.given is not None and row.given == row.given:
            return f"label '{row.given}' too rare to model; " + heuristic
        return heuristic
    text = f"suspect: label '{row.given}' has quality {row.quality:.2f}"
    if row.suggested != row.given:
        text += f"; model prefers '{row.suggested}' (p={row.p_suggested:.2f})"
    if row.flagged:
        text += "; flagged by confident learning"
    if row.n_flags:
        text += f"; {int(row.n_flags)} rule warning(s)"
    return text
