"""Stage 1, ingest: each file dropped in the inbox is a partition of ``raw_scrapes``."""

import json
import os
from datetime import UTC, datetime

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import overrides, publish, warehouse
from curation_assets.curation.ingest import intake
from curation_assets.curation.ingest import tables as ingest_tables
from curation_assets.curation.warehouse import sql_literal
from curation_assets.defs.ingest.suites import (
    GROUPS,
    quarantine_expectations,
    raw_scrapes_expectations,
)
from curation_assets.defs.resources import DUCKDB_POOL, DecisionStoreResource, SettingsParam
from curation_assets.defs.shared.checks import audit_checks, audit_specs, snapshot_dir, validate
from curation_assets.defs.shared.datasets import dataset
from curation_assets.defs.shared.metadata import as_table
from curation_assets.defs.shared.sensors import running_sensor

inbox_files = dg.DynamicPartitionsDefinition(name="inbox_files")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "raw_scrapes",
            description=(
                "Every record of every dropped file, mapped to the canonical record "
                "(example_id, prompt, response, source, batch, original fields). One "
                "partition per inbox file; re-ingesting a file replaces its rows."
            ),
            **dataset(ingest_tables.RAW_SCRAPES),
            tags={"stage": "ingest"},
            skippable=True,  # a batch that fails its audit is held back, not published
        ),
        dg.AssetSpec(
            "quarantine",
            description=(
                "Lines and files that could not become records (malformed JSON or CSV, "
                "wrong encoding, missing fields, empty or oversized records, unreadable "
                "files) and inbox entries that are refused (hidden names, folders, links "
                "out of the inbox, special files), each with file, line and reason. "
                "Nothing is dropped silently."
            ),
            **dataset(ingest_tables.QUARANTINE),
            tags={"stage": "ingest"},
            skippable=True,
        ),
    ],
    check_specs=[
        *audit_specs(
            "raw_scrapes",
            "Audit of this batch before it is published (Great Expectations): ids present "
            "and unique, prompt/response present, stored rows match the batch's accounting, "
            "quarantine rate within the bound. A failing batch is held back alone.",
            GROUPS["raw_scrapes"],
        ),
        *audit_specs(
            "quarantine",
            "Audit of this batch's quarantine rows: batch, file and a reason on every row, "
            "a line number on every row but a whole-file refusal, and every unit of the "
            "file accounted for (units read = records + quarantined, as stored).",
            GROUPS["quarantine"],
        ),
    ],
    partitions_def=inbox_files,
    pool=DUCKDB_POOL,
)
def ingest_inbox_file(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
):
    """Read one inbox file into ``raw_scrapes`` and ``quarantine``."""
    path = settings.inbox / context.partition_key
    if not os.path.lexists(path):  # lexists: a dangling link is refused, not "gone"
        raise dg.Failure(
            f"inbox file {path} is gone: partition {context.partition_key!r} cannot be "
            "re-ingested; put the file back or delete the partition"
        )
    batch = context.partition_key
    in_batch = f"batch = {sql_literal(batch)}"
    with duckdb.get_connection() as con:
        ingest_tables.ensure_tables(con)
        publish.ensure_held_table(con)
        result = _unchanged(con, settings, path, batch)
        unchanged = result is not None
        if result is None:
            result = intake.read_file(
                path, settings.column_mapping, settings.max_record_bytes, settings.inbox
            )
        with publish.transaction(con):
            if not unchanged:
                intake.store_batch(
                    con, result, datetime.now(UTC).replace(tzinfo=None), atomic=False
                )
            audit = validate(
                con, settings, "raw_scrapes", raw_scrapes_expectations(settings, batch)
            )
            quarantine_audit = validate(con, settings, "quarantine", quarantine_expectations(batch))
            override = None
            if not audit.success:
                override = overrides.accepted(
                    decision_store.batch_overrides(), batch, result.sha256
                )
            reasons = con.execute(
                "SELECT reason, count(*) AS n FROM quarantine WHERE batch = ? "
                "GROUP BY reason ORDER BY n DESC LIMIT 20",
                [batch],
            ).fetchall()
            sample = warehouse.preview(
                con,
                f"SELECT record_id, example_id, prompt, response, source FROM raw_scrapes "
                f"WHERE {in_batch} ORDER BY line_no",
            )
            ok = (audit.success or override is not None) and quarantine_audit.success
            if ok:
                publish.set_hold(con, "raw_scrapes", batch, None)
            outcome = publish.finish(con, ok, ["raw_scrapes", "quarantine"], where=in_batch)
        if not ok:
            failed = [("raw_scrapes", audit)] if not audit.success else []
            failed += [("quarantine", quarantine_audit)] if not quarantine_audit.success else []
            publish.set_hold(
                con,
                "raw_scrapes",
                batch,
                {
                    "sha256": result.sha256,
                    "records": len(result.records),
                    "reason": "; ".join(
                        f"{name}:expectations failed: {_failures(a)}" for name, a in failed
                    )[:2000],
                    "staged_table": publish.staged_name("raw_scrapes"),
                },
            )
        if not unchanged or not outcome.published:
            _snapshot_batch(con, settings, batch, published=outcome.published)
    loaded, quarantined = len(result.records), len(result.quarantine)
    context.log.info(
        f"{path.name}: {result.units_read} read = {loaded} records + {quarantined} quarantined"
        + (" (unchanged since the last ingest: rows kept)" if unchanged else "")
        + ("" if outcome.published else "; audit failed, batch held back (not published)")
    )
    checks = audit_checks("raw_scrapes", audit, outcome, GROUPS["raw_scrapes"], override=override)
    checks += audit_checks("quarantine", quarantine_audit, outcome, GROUPS["quarantine"])
    if not outcome.published:
        yield from checks  # a failed blocking check: the step fails, nothing downstream runs
        return
    yield dg.MaterializeResult(
        asset_key="raw_scrapes",
        metadata={
            "dagster/row_count": loaded,
            "units_read": result.units_read,
            "records_loaded": loaded,
            "records_quarantined": quarantined,
            "file_format": result.file_format,
            "unchanged": unchanged,
            "sha256": result.sha256,
            "source_file": dg.MetadataValue.path(str(path)),
            "preview": as_table(sample),
        },
        data_version=dg.DataVersion(result.sha256),
    )
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            "dagster/row_count": quarantined,
            "quarantine_rate": round(quarantined / max(result.units_read, 1), 4),
            "reasons": as_table([{"reason": r, "rows": n} for r, n in reasons]),
        },
    )
    yield from checks


def _unchanged(con, settings: Settings, path, batch: str) -> intake.IngestResult | None:
    """The stored batch when the entry and the reading settings are what it was read
    with and it is not held back: re-ingesting would rewrite the same rows (only
    ``ingested_at`` would move), so the rows are kept. None when it must be read."""
    sha = intake.fingerprint(path, settings.inbox)
    key = intake.read_key(sha, settings.column_mapping, settings.max_record_bytes)
    row = con.execute(
        "SELECT file_format, units_read, records_loaded, records_quarantined, source_file "
        "FROM ingest_batches WHERE batch = ? AND read_key = ?",
        [batch, key],
    ).fetchall()
    if not row or any(h["batch"] == batch for h in publish.held(con, "raw_scrapes")):
        return None
    fmt, units, loaded, quarantined, source_file = row[0]
    return intake.IngestResult(  # row counts only: the rows stay where they are
        records=pd.DataFrame(index=range(loaded)),
        quarantine=pd.DataFrame(index=range(quarantined)),
        file_format=fmt,
        sha256=sha,
        units_read=units,
        batch=batch,
        source_file=source_file,
        read_key=key,
    )


def _failures(audit) -> str:
    """One line naming the failed expectations and what they observed."""
    return "; ".join(
        f"{f['validation']}.{f['expectation']}"
        + (f" observed {f['observed_value']}" if f.get("observed_value") is not None else "")
        + (f" ({f['unexpected_count']} unexpected)" if f.get("unexpected_count") else "")
        for f in audit.failures
    )[:2000]


def _snapshot_batch(con, settings: Settings, batch: str, published: bool) -> None:
    """Refresh the readers' snapshot: this batch's rows (if published) and the small tables."""
    out = snapshot_dir(settings)
    if published:
        where = f"batch = {sql_literal(batch)}"
        for table in ("raw_scrapes", "quarantine"):
            publish.snapshot(con, out, table, where=where, part=batch)
    publish.snapshot(con, out, "ingest_batches")
    publish.snapshot(con, out, publish.HELD_TABLE)


@running_sensor(
    name="inbox_sensor",
    every_seconds=30,
    job_name="ingest_job",
    description="Adds a partition for every new or changed file in the inbox and ingests it.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, settings: SettingsParam):
    """New file -> new partition + run; a changed file (new hash) is re-ingested."""
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    result, seen = inbox_requests(context.instance, settings, seen)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return result


def inbox_requests(
    instance: dg.DagsterInstance, settings: Settings, seen: dict[str, str] | None
) -> tuple[dg.SensorResult, dict[str, str]]:
    """Partition adds and ingest runs for inbox files.

    With ``seen`` (file name -> sha256 already requested) files whose content changed are
    re-ingested too; without it (the nightly schedule) only files with no partition yet.
    """
    known = set(instance.get_dynamic_partitions(inbox_files.name))
    track_changes = seen is not None
    seen = dict(seen or {})
    new_keys, runs = [], []
    for path in intake.list_inbox(settings.inbox):
        key = intake.batch_key(path)
        if key in known and not track_changes:
            continue
        digest = intake.fingerprint(path, settings.inbox)
        if key in known and seen.setdefault(key, digest) == digest:
            continue  # already ingested with this content (or first time this sensor sees it)
        seen[key] = digest
        if key not in known:
            new_keys.append(key)
        runs.append(dg.RunRequest(partition_key=key, run_key=f"{key}:{digest}"))
    adds = [inbox_files.build_add_request(new_keys)] if new_keys else []
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=adds), seen
