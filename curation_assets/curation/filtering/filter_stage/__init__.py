"""The whole ``filtered`` stage as one plain function: annotate, deduplicate, filter.

Order of work on a warehouse holding ``raw_scrapes`` and ``ingest_batches``:

1. Per-record annotations that need Python libraries, for new records only: mojibake
   (ftfy; non-document records, the only ones a rule reads it for), language (fastText
   lid.176; web documents by their first ``language_document_chars`` characters).
2. Record-scope rules (lengths, labels, pair rules or document rules, language, mojibake):
   flags and reasons cached per record in ``record_flags`` and ``record_rejections`` (see
   ``rule_engine.update_record_flags``); each rule family is evaluated in its own SELECT over
   its own records.
3. Near-duplicates: the incremental MinHash LSH index (``dedup``) over the first record of
   each example that no record-scope rule rejected, so a rejected record never becomes the
   representative that removes a good one.
4. Decontamination against evaluation texts (user files and the validation split of
   ``verified``), re-run only when those texts change.
5. Corpus-scope rules (exact duplicates, conflicting labels, near duplicates,
   contamination) over ids and flags, and the derived tables ``filter_flags`` (flags, no
   text), ``filtered`` (updated in place: only rows that enter or leave are written) and
   ``rejections`` (cached record-rule reasons plus the corpus rules').
6. PII redaction (``pii``) of the kept records not scanned yet: ``filtered`` holds the
   masked text and ``pii_redactions`` every masked span (kind, place, keyed hash; never the
   value).

Every step costs the size of the new data, except the SQL passes of step 5 over ids, so a
nightly batch does not recompute the past. No Dagster here.

Modules: ``config`` (``FilterConfig`` and the rule set it selects), ``annotation``
(step 1), ``contamination`` (step 4), ``redaction`` (step 6) and ``run`` (``run_stage``:
every step in order, timed). This package exposes their public names
(``filter_stage.run_stage``, ``filter_stage.FilterConfig``, ...).
"""

from curation_assets.curation.filtering.filter_stage.annotation import (
    MOJIBAKE_VERSIONS,
    annotate_languages,
    annotate_mojibake,
)
from curation_assets.curation.filtering.filter_stage.config import (
    CONTAMINATION_TABLE,
    DOCUMENT_SQL,
    NON_DOCUMENT_SQL,
    FilterConfig,
    rules,
)
from curation_assets.curation.filtering.filter_stage.contamination import (
    decontaminate,
    evaluation_texts,
    read_eval_file,
)
from curation_assets.curation.filtering.filter_stage.redaction import (
    PII_SCANNED,
    PII_TABLE,
    W,
    pii_summary,
    redact,
)
from curation_assets.curation.filtering.filter_stage.run import StageReport, dedup_source, run_stage

__all__ = [
    "CONTAMINATION_TABLE",
    "DOCUMENT_SQL",
    "MOJIBAKE_VERSIONS",
    "NON_DOCUMENT_SQL",
    "PII_SCANNED",
    "PII_TABLE",
    "W",
    "FilterConfig",
    "StageReport",
    "annotate_languages",
    "annotate_mojibake",
    "decontaminate",
    "dedup_source",
    "evaluation_texts",
    "pii_summary",
    "read_eval_file",
    "redact",
    "rules",
    "run_stage",
]
