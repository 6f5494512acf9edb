"""The stage's per-record annotations that need Python libraries, for new records only:
mojibake (ftfy, non-document records) and language (fastText, pairs and web documents)."""

import duckdb

from curation_assets.curation.filtering import annotators, language, rule_engine
from curation_assets.curation.filtering.filter_stage.config import (
    DOCUMENT_SQL,
    NON_DOCUMENT_SQL,
    FilterConfig,
)
from curation_assets.curation.filtering.tables import (
    ANNOTATIONS,
    ANNOTATIONS_VERSIONS,
    LANGUAGE_ANNOTATIONS,
)

#: The content (example_id) each mojibake flag of ``annotations`` was computed from.
MOJIBAKE_VERSIONS = ANNOTATIONS_VERSIONS.name


def annotate_languages(con: duckdb.DuckDBPyConnection, cfg: FilterConfig) -> int:
    """Language of new records: pairs by their first ``language_max_chars`` characters,
    web documents by their first ``language_document_chars``. Returns the records done."""
    table = language.LANGUAGE_TABLE
    LANGUAGE_ANNOTATIONS.create(con)
    rule_engine.drop_stale(con, table)
    missing = (
        f"NOT EXISTS (SELECT 1 FROM {table} a WHERE a.record_id = raw_scrapes.record_id "
        "AND a.example_id IS NOT DISTINCT FROM raw_scrapes.example_id)"
    )
    in_range = rule_engine.batch_range(con, missing)
    n = 0
    for family, max_chars in (
        (NON_DOCUMENT_SQL, cfg.language_max_chars),
        (DOCUMENT_SQL, cfg.language_document_chars),
    ):
        n += language.annotate_languages(
            con,
            source=f"(SELECT * FROM raw_scrapes WHERE {in_range} AND {family})",
            table=table,
            max_chars=max_chars,
        )
    return n


def annotate_mojibake(con: duckdb.DuckDBPyConnection) -> int:
    """Mojibake flags of new non-document records (only pair rules read them: web
    documents, nearly all with a non-ASCII character, never reach ftfy). Returns the
    number of records annotated."""
    table = annotators.ANNOTATIONS_TABLE
    ANNOTATIONS.create(con)
    # the annotations table has no content key: ``MOJIBAKE_VERSIONS`` records the example_id
    # each flag was computed from; a flag without a current version is stale
    ANNOTATIONS_VERSIONS.create(con)
    rule_engine.drop_stale(con, MOJIBAKE_VERSIONS)
    con.execute(
        f"DELETE FROM {table} WHERE record_id NOT IN (SELECT record_id FROM {MOJIBAKE_VERSIONS})"
    )
    missing = f"{NON_DOCUMENT_SQL} AND record_id NOT IN (SELECT record_id FROM {table})"
    new = f"(SELECT * FROM raw_scrapes WHERE {rule_engine.batch_range(con, missing)} AND {missing})"
    n = int(con.execute(f"SELECT count(*) FROM {new}").fetchall()[0][0])
    if n:
        # versions first (narrow columns), while ``missing`` still selects the new records
        con.execute(
            f"DELETE FROM {MOJIBAKE_VERSIONS} "
            f"WHERE record_id NOT IN (SELECT record_id FROM {table})"
        )
        con.execute(f"INSERT INTO {MOJIBAKE_VERSIONS} SELECT record_id, example_id FROM {new}")
        annotators.store_annotations(con, new, table, replace=False)
    return n
