"""Which examples are most likely wrong: the ranking behind the suspect queue.

Labelled data (classification): confident learning on out-of-sample probabilities of two
cheap models (``suspect_model``: fold models fitted once on a capped, stratified sample,
then scoring every row in chunks; new rows are scored later without a refit). ``quality``
is the pooled probability of the given label (cleanlab's self-confidence), ``suspicion =
1 - quality``, and each rule warning multiplies the quality by ``1 - FLAG_WEIGHT``.

Unlabelled data (instruction pairs) and labels too rare to model: a heuristic,
``1 - prod(1 - p_i)`` over the signals present: each rule warning ``p = 0.3``; a response
or prompt length far from the typical one (|z| of log length above 2) up to ``p = 0.6``.

``refresh_scores`` keeps ``suspect_scores`` in the warehouse up to date: it fits (or
refits, for a reason it records) the models and scores only the rows that have no score
from the current model. Embeddings: static (model2vec format, thousands of texts per
CPU-second) by default; a transformer encoder's are cached in ``example_embeddings``.
No Dagster here.

Modules: ``scoring`` (suspicion of a frame: confident learning and the heuristic, with
reasons), ``embeddings`` (sentence encoders and the embedding cache), ``refresh`` (the
warehouse path: fit once, score what is new). This package exposes their public names.
"""

from curation_assets.curation.review.suspects.embeddings import (
    EncoderChoice,
    SentenceEncoder,
    cached_embeddings,
    default_cache_dir,
    encoder_for,
)
from curation_assets.curation.review.suspects.refresh import (
    REASON_SQL,
    Embedder,
    RefreshConfig,
    refit_reason,
    refresh_scores,
)
from curation_assets.curation.review.suspects.scoring import (
    EMBEDDINGS_TABLE,
    FLAG_WEIGHT,
    LENGTH_Z,
    MODELS_TABLE,
    REFIT_GROWTH,
    SCORE_COLUMNS,
    SCORES_TABLE,
    Encoder,
    LengthStats,
    Log,
    flag_count,
    heuristic_reason,
    heuristic_score,
    score_examples,
    score_frame,
)

__all__ = [
    "EMBEDDINGS_TABLE",
    "Embedder",
    "Encoder",
    "EncoderChoice",
    "FLAG_WEIGHT",
    "LENGTH_Z",
    "LengthStats",
    "Log",
    "MODELS_TABLE",
    "REASON_SQL",
    "REFIT_GROWTH",
    "RefreshConfig",
    "SCORES_TABLE",
    "SCORE_COLUMNS",
    "SentenceEncoder",
    "cached_embeddings",
    "default_cache_dir",
    "encoder_for",
    "flag_count",
    "heuristic_reason",
    "heuristic_score",
    "refit_reason",
    "refresh_scores",
    "score_examples",
    "score_frame",
]
