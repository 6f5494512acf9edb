"""Jobs, the nightly schedule and the automation sensor (running out of the box)."""

import dagster as dg

from curation_assets.config import Settings
from curation_assets.stages.ingest import inbox_files, inbox_requests

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets("raw_scrapes", "quarantine"),
    partitions_def=inbox_files,
    description="Ingest one inbox file (one partition of raw_scrapes and quarantine).",
)

CURATED = dg.AssetSelection.assets("raw_scrapes").downstream(include_self=False)

curate_job = dg.define_asset_job(
    "curate_job",
    selection=CURATED,
    description=(
        "Everything after ingest: filter, queue, review, verify, fine-tune, evaluate and "
        "lineage, with every blocking check in between."
    ),
)

refresh_job = dg.define_asset_job(
    "refresh_job",
    selection=dg.AssetSelection.assets("filtered", "rejections", "review_queue"),
    description="Re-filter everything ingested and refresh the review queue.",
)

automation_sensor = dg.AutomationConditionSensorDefinition(
    "curation_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluates every asset's automation condition (running by default).",
)


def nightly_refresh(settings: Settings) -> dg.ScheduleDefinition:
    """At night: ingest new inbox files, then re-filter and refresh the review queue.

    New files become partitions and ingest runs; when there are none, the schedule runs
    ``refresh_job`` directly. After ingest runs, automation re-filters and refreshes the
    queue (and, once new decisions pass their checks, verified and the fine-tune).
    """

    @dg.schedule(
        name="nightly_refresh",
        cron_schedule=settings.nightly_cron,
        execution_timezone=settings.timezone,
        job=refresh_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly refresh at '{settings.nightly_cron}' ({settings.timezone}).",
    )
    def _nightly(context: dg.ScheduleEvaluationContext):
        ingest, _ = inbox_requests(context.instance, settings, None)
        if ingest.run_requests:
            ingest_runs = [
                dg.RunRequest(
                    job_name="ingest_job",
                    partition_key=r.partition_key,
                    run_key=f"nightly:{context.scheduled_execution_time}:{r.partition_key}",
                )
                for r in ingest.run_requests
            ]
            return dg.SensorResult(
                run_requests=ingest_runs,
                dynamic_partitions_requests=ingest.dynamic_partitions_requests,
            )
        return dg.RunRequest(run_key=f"nightly:{context.scheduled_execution_time}")

    return _nightly
