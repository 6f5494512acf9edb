"""What the filter stage's tables say: rejections per rule, and the per-batch accounting
(units read = kept + rejected + quarantined) that the stage's expectations validate."""

import duckdb

from curation_assets.curation.filtering.rule_engine.working_table import WORKING_TABLE


def rule_counts(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per-rule rejection counts (a record can count under several rules)."""
    return (
        con.sql(
            "SELECT rule, any_value(reason) AS example_reason, count(*) AS records "
            "FROM rejections GROUP BY rule ORDER BY records DESC"
        )
        .df()
        .to_dict("records")
    )


def batch_accounting(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Per batch: units read = kept + rejected + quarantined, and raw records = kept +
    rejected (``unaccounted_records``: the stage's invariants; kept counts the working
    table, held batches included)."""
    return con.sql(batch_accounting_sql())


def batch_accounting_sql() -> str:
    """The per-batch accounting query (also validated by the stage's expectations)."""
    return f"""
        SELECT b.batch, b.units_read,
               coalesce(k.kept, 0) AS kept,
               coalesce(j.rejected, 0) AS rejected,
               b.records_quarantined AS quarantined,
               b.units_read - coalesce(k.kept, 0) - coalesce(j.rejected, 0)
                   - b.records_quarantined AS unaccounted,
               coalesce(w.raw_records, 0) AS raw_records,
               coalesce(w.raw_records, 0) - coalesce(k.kept, 0) - coalesce(j.rejected, 0)
                   AS unaccounted_records,
               coalesce(j.rejected, 0) / nullif(b.records_loaded, 0) AS rejection_rate,
               b.records_quarantined / nullif(b.units_read, 0) AS quarantine_rate
        FROM ingest_batches b
        LEFT JOIN (SELECT batch, count(*) AS kept FROM {WORKING_TABLE} GROUP BY batch) k
            USING (batch)
        LEFT JOIN (SELECT batch, count(DISTINCT record_id) AS rejected
                   FROM rejections GROUP BY batch) j USING (batch)
        LEFT JOIN (SELECT batch, count(*) AS raw_records FROM raw_scrapes GROUP BY batch) w
            USING (batch)
        ORDER BY b.batch
        """
