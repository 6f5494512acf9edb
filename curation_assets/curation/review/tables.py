"""The review stage's published tables (declared in ``tables.yaml`` beside this module):
the two review queues, what reviewers accepted, and what experts verified; and its
bookkeeping: reviewer agreement, the suspect models, their scores, the embeddings cache."""

from curation_assets.curation.schema import load_tables

(
    REVIEW_QUEUE,
    REVIEWED,
    VERIFIED,
    REVIEW_AGREEMENT,
    SUSPECT_MODELS,
    SUSPECT_SCORES,
    EXAMPLE_EMBEDDINGS,
) = load_tables(
    __file__,
    "review_queue",
    "reviewed",
    "verified",
    "review_agreement",
    "suspect_models",
    "suspect_scores",
    "example_embeddings",
)
