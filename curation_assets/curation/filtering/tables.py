"""The filter stage's published tables: what was kept, why the rest was rejected, and the
PII spans masked in what was kept."""

from curation_assets.curation.schema import (
    BATCH,
    EXAMPLE_ID,
    LINE_NO,
    RECORD_ID,
    SOURCE,
    Column,
    Table,
)

FILTERED = Table(
    "filtered",
    "Raw records no filter rule fired on, one row per distinct example, PII masked.",
    (
        Column("example_id", "VARCHAR", "Hash of the normalized content.", "PRIMARY KEY"),
        RECORD_ID,
        BATCH,
        LINE_NO,
        SOURCE,
        Column("prompt", "VARCHAR", "Prompt, PII masked (spans in pii_redactions)."),
        Column("response", "VARCHAR", "Response, PII masked."),
        Column("prompt_chars", "INTEGER", "Length of the prompt in characters."),
        Column("response_chars", "INTEGER", "Length of the response in characters."),
    ),
)

REJECTIONS = Table(
    "rejections",
    "One row per (raw record, rule that fired), with the rule's reason.",
    (
        RECORD_ID,
        EXAMPLE_ID,
        BATCH,
        LINE_NO,
        Column("rule", "VARCHAR", "Name of the rule that fired."),
        Column("reason", "VARCHAR", "Why the rule rejects it (with the record's detail)."),
    ),
)

PII_REDACTIONS = Table(
    "pii_redactions",
    "One row per PII span masked in filtered: where it was and how it was replaced.",
    (
        RECORD_ID,
        Column("column", "VARCHAR", "prompt or response."),
        Column("kind", "VARCHAR", "What was found (email, phone, iban, ...)."),
        Column("start", "INTEGER", "Start offset in the original text."),
        Column("end", "INTEGER", "End offset in the original text."),
        Column("out_start", "INTEGER", "Start offset of the mask in the masked text."),
        Column("out_end", "INTEGER", "End offset of the mask in the masked text."),
        Column("value_hash", "VARCHAR", "Keyed hash of the value (the key is not stored)."),
        Column("redacted", "VARCHAR", "The mask put in its place."),
    ),
)
