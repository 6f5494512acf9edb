"""Jobs, the nightly schedule and the automation sensor (running out of the box)."""

import dagster as dg

from curation_assets.config import Settings
from curation_assets.stages.ingest import inbox_requests
from curation_assets.stages.review import INTEGRITY

INGEST_KEYS = [dg.AssetKey("raw_scrapes"), dg.AssetKey("quarantine")]
REFRESH_KEYS = [dg.AssetKey("filtered"), dg.AssetKey("rejections"), dg.AssetKey("review_queue")]
INGEST = dg.AssetSelection.assets(*INGEST_KEYS)
REFRESH = dg.AssetSelection.assets(*REFRESH_KEYS)

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=INGEST,
    description="Ingest one inbox file (one partition of raw_scrapes and quarantine).",
)

CURATED = dg.AssetSelection.assets("raw_scrapes").downstream(include_self=False)
#: The decision store's integrity check runs with every curate run (it never blocks).
CURATED_AND_AUDITED = CURATED | dg.AssetSelection.checks(INTEGRITY)

curate_job = dg.define_asset_job(
    "curate_job",
    selection=CURATED_AND_AUDITED,
    description=(
        "Everything after ingest: filter, queue, review, verify, fine-tune, evaluate and "
        "lineage, with every blocking check in between, and the decision store's "
        "integrity check."
    ),
)

refresh_job = dg.define_asset_job(
    "refresh_job",
    selection=REFRESH,
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
        target=INGEST | REFRESH,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Nightly refresh at '{settings.nightly_cron}' ({settings.timezone}).",
    )
    def _nightly(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        ingest, _ = inbox_requests(context.instance, settings, None)
        for request in ingest.dynamic_partitions_requests:
            context.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys or [])
            )
        if ingest.run_requests:
            return [
                dg.RunRequest(
                    run_key=f"nightly:{tick}:{r.partition_key}",
                    partition_key=r.partition_key,
                    asset_selection=INGEST_KEYS,
                )
                for r in ingest.run_requests
            ]
        return dg.RunRequest(run_key=f"nightly:{tick}", asset_selection=list(REFRESH_KEYS))

    return _nightly
