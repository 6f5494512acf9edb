"""The filter stage's tables (declared in ``tables.yaml`` beside this module): the published
``filtered``, ``rejections`` and ``pii_redactions``; and its bookkeeping: the MinHash index
(``minhash_*``, ``near_duplicates``), the decontamination matches, the PII scans, the
mojibake and language annotations, and the rule engine's caches.

``record_rejections`` and the working table ``filtered__working`` have the columns of
``rejections`` and ``filtered`` (created from ``REJECTIONS.ddl()`` / ``FILTERED.ddl()``)."""

import duckdb

from curation_assets.curation.schema import Table, load_tables

(
    FILTERED,
    REJECTIONS,
    PII_REDACTIONS,
    MINHASH_META,
    MINHASH_DOCS,
    MINHASH_INDEX,
    NEAR_DUPLICATES,
    CONTAMINATION,
    CONTAMINATION_META,
    PII_SCANNED,
    ANNOTATIONS,
    ANNOTATIONS_VERSIONS,
    LANGUAGE_ANNOTATIONS,
    FILTER_GENERATIONS,
    RECORD_FLAGS_RULESET,
) = load_tables(
    __file__,
    "filtered",
    "rejections",
    "pii_redactions",
    "minhash_meta",
    "minhash_docs",
    "minhash_index",
    "near_duplicates",
    "contamination",
    "contamination_meta",
    "pii_scanned",
    "annotations",
    "annotations_versions",
    "language_annotations",
    "filter_generations",
    "record_flags_ruleset",
)


def add_columns(con: duckdb.DuckDBPyConnection, table: Table, *names: str) -> None:
    """Add the declared columns ``names`` (the last ones of ``table``) to a table made
    before they existed; a table that has them is left alone."""
    for column in table.columns:
        if column.name in names:
            con.execute(
                f'ALTER TABLE {table.name} ADD COLUMN IF NOT EXISTS "{column.name}" {column.type}'
            )
