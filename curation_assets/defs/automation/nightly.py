"""The nightly refresh schedule (at ``CURATION_NIGHTLY_CRON``, running out of the box)."""

import dagster as dg

from curation_assets.config import Settings
from curation_assets.defs.automation.jobs import INGEST, INGEST_KEYS, REFRESH, REFRESH_KEYS
from curation_assets.defs.ingest.assets import inbox_requests


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


@dg.definitions
def nightly_schedule() -> dg.Definitions:
    """The nightly schedule, at the environment's ``CURATION_NIGHTLY_CRON``."""
    return dg.Definitions(schedules=[nightly_refresh(Settings.from_env())])
