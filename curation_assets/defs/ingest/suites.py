"""The ingest stage's expectation suites (Great Expectations): what the rows of
``raw_scrapes`` and ``quarantine`` must satisfy, per batch (before a batch is published) or
over every batch (the whole-table audits)."""

from curation_assets.config import Settings
from curation_assets.curation.expectations import Validation, expect
from curation_assets.curation.warehouse import sql_literal

#: The expectation groups of each asset's suite (one Dagster check each): what they check.
GROUPS = {
    "raw_scrapes": {
        "records": "Record and example ids present, record ids unique, example ids of 16 "
        "characters, prompt and response present.",
        "batch_accounting": "Stored rows = the batch's loaded records; quarantine rate "
        "within its bound.",
    },
    "quarantine": {
        "quarantine_rows": "Batch, file and a reason on every quarantined record; a line "
        "number unless the whole file was refused.",
        "unit_accounting": "Units read = records + quarantined, and the quarantine rows "
        "stored match the batch's count.",
    },
}


def quarantine_expectations(batch: str | None = None) -> list[Validation]:
    """What the quarantine rows of a batch (``None``: of every batch) must satisfy."""
    where = f"WHERE b.batch = {sql_literal(batch)}" if batch is not None else ""
    return [
        Validation(
            "quarantine_rows",
            f"""SELECT q.batch, q.source_file, q.line_no, q.reason,
                      q.line_no IS NOT NULL OR b.units_read = 1 AS located
               FROM quarantine q JOIN ingest_batches b USING (batch) {where}""",
            [
                expect("ExpectColumnValuesToNotBeNull", column="batch"),
                expect("ExpectColumnValuesToNotBeNull", column="source_file"),
                expect("ExpectColumnValuesToNotBeNull", column="reason"),
                expect("ExpectColumnValueLengthsToBeBetween", column="reason", min_value=3),
                expect("ExpectQuarantineRowsToBeLocated"),
            ],
            row_id=("batch", "source_file", "line_no"),
        ),
        Validation(
            "unit_accounting",
            f"""SELECT b.batch, b.units_read,
                      b.records_loaded + b.records_quarantined AS accounted,
                      b.records_quarantined,
                      (SELECT count(*) FROM quarantine q WHERE q.batch = b.batch) AS stored
               FROM ingest_batches b {where}""",
            [
                expect(
                    "ExpectColumnPairValuesToBeEqual", column_A="units_read", column_B="accounted"
                ),
                expect(
                    "ExpectColumnPairValuesToBeEqual",
                    column_A="records_quarantined",
                    column_B="stored",
                ),
            ],
            row_id=("batch",),
        ),
    ]


def raw_scrapes_expectations(settings: Settings, batch: str | None = None) -> list[Validation]:
    """What every batch of raw_scrapes must satisfy (``batch``: that batch only)."""
    where = f"WHERE batch = {sql_literal(batch)}" if batch is not None else ""
    return [
        Validation(
            "records",
            f"SELECT record_id, example_id, batch, prompt, response FROM raw_scrapes {where}",
            [
                expect("ExpectColumnValuesToNotBeNull", column="record_id"),
                expect("ExpectColumnValuesToBeUnique", column="record_id"),
                expect("ExpectColumnValuesToNotBeNull", column="example_id"),
                expect("ExpectColumnValuesToNotBeNull", column="prompt"),
                expect("ExpectColumnValuesToNotBeNull", column="response"),
                expect(
                    "ExpectColumnValueLengthsToBeBetween",
                    column="example_id",
                    min_value=16,
                    max_value=16,
                ),
            ],
            row_id=("record_id",),
        ),
        Validation(
            "batch_accounting",
            f"""SELECT b.batch, b.units_read, b.records_loaded, b.records_quarantined,
                      (SELECT count(*) FROM raw_scrapes r WHERE r.batch = b.batch) AS stored,
                      -- a refused entry (hidden, link, folder) is recorded, not a bad batch
                      CASE WHEN b.file_format = 'refused' THEN 0
                           ELSE b.records_quarantined / greatest(b.units_read, 1)
                      END AS quarantine_rate
               FROM ingest_batches b {where}""",
            [
                expect(
                    "ExpectColumnPairValuesToBeEqual", column_A="records_loaded", column_B="stored"
                ),
                expect(
                    "ExpectColumnValuesToBeBetween",
                    column="quarantine_rate",
                    min_value=0,
                    max_value=settings.max_quarantine_rate,
                ),
            ],
            row_id=("batch",),
        ),
    ]
