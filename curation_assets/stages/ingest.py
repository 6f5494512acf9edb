"""Stage 1, ingest: each file dropped in the inbox is a partition of ``raw_scrapes``."""

import json
from datetime import UTC, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.checks import gx_suite_check
from curation_assets.config import Settings
from curation_assets.core import ingest, warehouse
from curation_assets.core.expectations import Validation, expect
from curation_assets.metadata import md_table
from curation_assets.resources import DUCKDB_POOL, SettingsParam

GROUP = "ingest"
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
            group_name=GROUP,
            kinds={"duckdb", "table"},
            owners=["team:curation"],
            tags={"stage": "ingest"},
        ),
        dg.AssetSpec(
            "quarantine",
            description=(
                "Lines and files that could not become records (malformed JSON, wrong "
                "encoding, missing fields, empty or oversized records, unreadable files), "
                "each with file, line and reason. Nothing is dropped silently."
            ),
            group_name=GROUP,
            kinds={"duckdb", "table"},
            owners=["team:curation"],
            tags={"stage": "ingest"},
        ),
    ],
    partitions_def=inbox_files,
    pool=DUCKDB_POOL,
)
def ingest_inbox_file(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, settings: SettingsParam
):
    """Read one inbox file into ``raw_scrapes`` and ``quarantine``."""
    path = settings.inbox / context.partition_key
    if not path.exists():
        raise dg.Failure(
            f"inbox file {path} is gone: partition {context.partition_key!r} cannot be "
            "re-ingested; put the file back or delete the partition"
        )
    result = ingest.read_file(path, settings.column_mapping, settings.max_record_bytes)
    with duckdb.get_connection() as con:
        ingest.store_batch(con, result, datetime.now(UTC).replace(tzinfo=None))
        reasons = con.execute(
            "SELECT reason, count(*) AS n FROM quarantine WHERE batch = ? "
            "GROUP BY reason ORDER BY n DESC LIMIT 20",
            [context.partition_key],
        ).fetchall()
        sample = warehouse.preview(
            con,
            f"SELECT record_id, example_id, prompt, response, source FROM raw_scrapes "
            f"WHERE batch = '{_sql_str(context.partition_key)}' ORDER BY line_no",
        )
    loaded, quarantined = len(result.records), len(result.quarantine)
    context.log.info(
        f"{path.name}: {result.units_read} read = {loaded} records + {quarantined} quarantined"
    )
    yield dg.MaterializeResult(
        asset_key="raw_scrapes",
        metadata={
            "dagster/row_count": loaded,
            "units_read": result.units_read,
            "records_loaded": loaded,
            "records_quarantined": quarantined,
            "file_format": result.file_format,
            "sha256": result.sha256,
            "source_file": dg.MetadataValue.path(str(path)),
            "preview": md_table(sample),
        },
        data_version=dg.DataVersion(result.sha256),
    )
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            "dagster/row_count": quarantined,
            "quarantine_rate": round(quarantined / max(result.units_read, 1), 4),
            "reasons": md_table([{"reason": r, "rows": n} for r, n in reasons]),
        },
    )


def raw_scrapes_expectations(settings: Settings) -> list[Validation]:
    """What every batch of raw_scrapes must satisfy."""
    return [
        Validation(
            "records",
            "SELECT record_id, example_id, batch, prompt, response FROM raw_scrapes",
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
        ),
        Validation(
            "batch_accounting",
            """SELECT b.batch, b.units_read, b.records_loaded, b.records_quarantined,
                      (SELECT count(*) FROM raw_scrapes r WHERE r.batch = b.batch) AS stored,
                      b.records_quarantined / greatest(b.units_read, 1) AS quarantine_rate
               FROM ingest_batches b""",
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
        ),
    ]


raw_scrapes_check = gx_suite_check(
    "raw_scrapes",
    raw_scrapes_expectations,
    "Great Expectations suite: ids present and unique, prompt/response present, each "
    "batch's stored rows match its accounting, quarantine rate within the bound.",
)


@dg.sensor(
    name="inbox_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
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
    for path in ingest.list_inbox(settings.inbox):
        key = ingest.batch_key(path)
        if key in known and not track_changes:
            continue
        digest = ingest.fingerprint(path)
        if key in known and seen.setdefault(key, digest) == digest:
            continue  # already ingested with this content (or first time this sensor sees it)
        seen[key] = digest
        if key not in known:
            new_keys.append(key)
        runs.append(dg.RunRequest(partition_key=key, run_key=f"{key}:{digest}"))
    adds = [inbox_files.build_add_request(new_keys)] if new_keys else []
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=adds), seen


def _sql_str(value: str) -> str:
    return value.replace("'", "''")
