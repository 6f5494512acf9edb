"""The review stage's published tables: the two review queues, what reviewers accepted, and
what experts verified (the only table a fine-tune reads)."""

from curation_assets.curation.schema import (
    BATCH,
    EXAMPLE_ID,
    RECORD_ID,
    SOURCE,
    Column,
    Table,
)

_PROMPT = Column("prompt", "VARCHAR", "Prompt as filtered (PII masked).")
_N_DECISIONS = Column("n_decisions", "BIGINT", "Decisions recorded on the example.")
_N_REVIEWERS = Column("n_reviewers", "BIGINT", "Distinct people who decided on it.")
_ORIGINAL = Column("original_response", "VARCHAR", "Response before any reviewer's edit.")
_EDITED = Column("edited", "BOOLEAN", "A reviewer corrected the response.")
_FROM_QUEUE = Column("from_queue", "VARCHAR", "coverage, suspect or unqueued.")

REVIEW_QUEUE = Table(
    "review_queue",
    "Two queues over filtered (coverage sample, likely-mislabelled suspects), by priority.",
    (
        EXAMPLE_ID,
        RECORD_ID,
        BATCH,
        SOURCE,
        _PROMPT,
        Column("response", "VARCHAR", "Response as filtered."),
        Column("queue", "VARCHAR", "coverage or suspect."),
        Column("priority", "BIGINT", "Order within the queue (1 first)."),
        Column("queue_reason", "VARCHAR", "Why it is in the queue, in words."),
        Column("score", "DOUBLE", "Suspect score (coverage: NULL)."),
        Column("suggested_response", "VARCHAR", "Label the suspect model suggests instead."),
        Column("review_status", "VARCHAR", "pending, in_review, needs_expert, reviewed, ..."),
        _N_DECISIONS,
        _N_REVIEWERS,
        Column("reviews_required", "INTEGER", "Reviews it needs before it is agreed."),
        Column("flags", "VARCHAR", "Rule warnings on the example (not rejections)."),
        Column("pii", "VARCHAR", "Kinds of PII masked in it."),
        Column("near_duplicates", "VARCHAR", "Kept near duplicates, for the reviewer."),
    ),
)

REVIEWED = Table(
    "reviewed",
    "Examples accepted (or corrected) by agreed reviewers or an expert.",
    (
        EXAMPLE_ID,
        RECORD_ID,
        BATCH,
        SOURCE,
        _PROMPT,
        Column("response", "VARCHAR", "Response after the deciding edit, if any."),
        _ORIGINAL,
        _EDITED,
        Column("decision", "VARCHAR", "accept or edit."),
        Column("decided_by", "VARCHAR", "Who made the deciding decision."),
        Column("decided_by_role", "VARCHAR", "reviewer or expert."),
        Column("decided_at", "TIMESTAMP WITH TIME ZONE", "When the deciding decision was made."),
        Column("decision_id", "BIGINT", "The deciding decision in the decision store."),
        _N_DECISIONS,
        _N_REVIEWERS,
        Column("resolution", "VARCHAR", "expert (an expert decided) or agreed (reviewers)."),
        _FROM_QUEUE,
    ),
)

VERIFIED = Table(
    "verified",
    "Expert-verified examples with a fixed train/validation split: what the fine-tune reads.",
    (
        EXAMPLE_ID,
        _PROMPT,
        Column("response", "VARCHAR", "Response as the expert verified it."),
        _ORIGINAL,
        _EDITED,
        Column("verified_by", "VARCHAR", "The expert."),
        Column("verified_at", "TIMESTAMP WITH TIME ZONE", "When the expert decided."),
        BATCH,
        SOURCE,
        _FROM_QUEUE,
        Column("expert_seconds", "DOUBLE", "All expert time spent on the example."),
        Column("split", "VARCHAR", "train, validation or excluded (overlaps validation)."),
        Column("near_validation", "VARCHAR", "The validation example an excluded row overlaps."),
    ),
)
