"""The stage's PII step: mask PII in the kept records not scanned yet (``filtered`` holds
the masked text), record every masked span in ``pii_redactions`` (kind, place, keyed hash;
never the value), and summarize what was masked."""

import hashlib

import duckdb
import pandas as pd

from curation_assets.curation.filtering import pii, rule_engine, tables
from curation_assets.curation.filtering.filter_stage.config import FilterConfig
from curation_assets.curation.filtering.tables import PII_REDACTIONS

PII_TABLE = PII_REDACTIONS.name
PII_SCANNED = tables.PII_SCANNED.name  # records already scanned for PII (found or not)
W = rule_engine.WORKING_TABLE  # the stage writes here; ``filtered`` is published from it
#: Every PII kind needs an "@", a URL marker or a digit: cheap pre-selection of candidates.
_PII_HINT = r"@|://|www\.|\d"


def redact(con: duckdb.DuckDBPyConnection, cfg: FilterConfig) -> int:
    """Mask PII in ``filtered`` (prompt and response), recording each span. Scans the
    rows not scanned under the current settings (their text in ``filtered`` is still the
    original)."""
    PII_REDACTIONS.create(con)
    tables.PII_SCANNED.create(con)
    # the content a scan was made of: a record dropped again with new text is scanned again
    # (a scan without it, from before the column existed, counts as stale)
    tables.add_columns(con, tables.PII_SCANNED, "example_id")
    setting = hashlib.sha256(repr((cfg.pii_kinds, cfg.pii_key)).encode()).hexdigest()[:16]
    stale = f"""SELECT record_id FROM {PII_SCANNED} s WHERE digest <> ? OR NOT EXISTS (
                    SELECT 1 FROM raw_scrapes r
                    WHERE r.record_id = s.record_id AND r.example_id = s.example_id)"""
    # ``filtered`` keeps its masked rows from run to run: records masked under other
    # settings (or from other content) get their original text back before a new scan
    for column in ("prompt", "response"):
        con.execute(
            f"""UPDATE {W} SET {column} = r.{column} FROM raw_scrapes r
                WHERE {W}.record_id = r.record_id AND {W}.record_id IN ({stale})""",
            [setting],
        )
    con.execute(f"DELETE FROM {PII_SCANNED} WHERE record_id IN ({stale})", [setting])
    con.execute(
        f"""DELETE FROM {PII_TABLE} WHERE record_id NOT IN (SELECT record_id FROM {PII_SCANNED})
            OR record_id NOT IN (SELECT record_id FROM raw_scrapes)"""
    )
    n = _scan_new(con, cfg, setting) if cfg.pii_kinds else 0
    # apply the stored redactions to the rows of ``filtered`` not masked yet (new ones)
    for column in ("prompt", "response"):
        con.execute(
            f"""UPDATE {W} SET {column} = p.redacted
                FROM (SELECT DISTINCT record_id, redacted FROM {PII_TABLE}
                      WHERE "column" = '{column}') p
                WHERE {W}.record_id = p.record_id
                  AND {W}.{column} IS DISTINCT FROM p.redacted"""
        )
    return n


def _scan_new(con: duckdb.DuckDBPyConnection, cfg: FilterConfig, setting: str) -> int:
    """Scan the kept records not in ``pii_scanned``: store their spans and mark them
    scanned under ``setting``. Returns the records scanned."""
    unscanned = f"record_id NOT IN (SELECT record_id FROM {PII_SCANNED})"
    in_range = rule_engine.batch_range(con, unscanned, W)
    new = con.sql(
        f"SELECT record_id, example_id, prompt, response FROM {W} WHERE {in_range} AND {unscanned}"
    ).df()
    candidates = new[
        new["prompt"].str.contains(_PII_HINT, regex=True, na=False)
        | new["response"].str.contains(_PII_HINT, regex=True, na=False)
    ]
    spans = []
    for column in ("prompt", "response"):
        redacted, found = pii.redact_column(
            candidates, column, kinds=cfg.pii_kinds, key=cfg.pii_key
        )
        found = found.merge(
            pd.DataFrame({"record_id": candidates["record_id"], "redacted": redacted}),
            on="record_id",
        )
        spans.append(found)
    rows = pd.concat(spans, ignore_index=True)
    con.register("_spans", rows)
    con.register("_scanned", new[["record_id", "example_id"]])
    try:
        if len(rows):
            con.execute(f"INSERT INTO {PII_TABLE} SELECT * FROM _spans")
        con.execute(
            f"INSERT INTO {PII_SCANNED} (record_id, digest, example_id) "
            "SELECT record_id, ?, example_id FROM _scanned",
            [setting],
        )
    finally:
        con.unregister("_spans")
        con.unregister("_scanned")
    return len(new)


def pii_summary(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Masked values per kind among kept records."""
    return (
        con.sql(
            f"""SELECT kind, count(*) AS masked, count(DISTINCT record_id) AS records
                FROM {PII_TABLE} WHERE record_id IN (SELECT record_id FROM {W})
                GROUP BY kind ORDER BY masked DESC"""
        )
        .df()
        .to_dict("records")
    )
