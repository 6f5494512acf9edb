"""The lineage table: where each raw record ended up, across every stage."""

from curation_assets.curation.schema import (
    BATCH,
    EXAMPLE_ID,
    LINE_NO,
    RECORD_ID,
    SOURCE_FILE,
    Column,
    Table,
)

EXAMPLE_LINEAGE = Table(
    "example_lineage",
    "One row per raw record: filter verdict, queue, decisions, verification and models.",
    (
        RECORD_ID,
        EXAMPLE_ID,
        BATCH,
        SOURCE_FILE,
        LINE_NO,
        Column("filter_status", "VARCHAR", "kept, rejected or held."),
        Column("rejected_by", "VARCHAR", "Rules that fired, comma separated."),
        Column("rejection_reasons", "VARCHAR", "Their reasons."),
        Column("queue_priority", "BIGINT", "Priority in the review queue (NULL: not queued)."),
        Column("review_status", "VARCHAR", "Its status in the review queue."),
        Column("decisions", "BIGINT", "Decisions recorded on its example."),
        Column("last_decision", "VARCHAR", "Who decided what last."),
        Column("verified", "BOOLEAN", "Its example is in verified."),
        Column("split", "VARCHAR", "Its split in verified."),
        Column("trained_in", "VARCHAR", "Models trained on it, with the split."),
        Column("held_reason", "VARCHAR", "Why its batch is held, if it is."),
    ),
)
