"""The code location: every stage's assets, checks, sensors, schedules and resources."""

import dagster as dg

from curation_assets.automation import (
    automation_sensor,
    curate_job,
    ingest_job,
    nightly_refresh,
    refresh_job,
)
from curation_assets.config import Settings
from curation_assets.recovery import crash_recovery_sensor
from curation_assets.resources import build_resources
from curation_assets.stages import filtered, ingest, ladder, lineage, review, training


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """Definitions for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    return dg.Definitions(
        assets=[
            ingest.ingest_inbox_file,
            filtered.filter_raw_scrapes,
            review.review_decisions,
            review.review_queue,
            review.reviewed,
            review.verified,
            training.fine_tuned_model,
            training.model_evaluation,
            lineage.example_lineage,
            ladder.quality_ladder,
        ],
        asset_checks=[
            training.fine_tuned_model_check,
            training.model_evaluation_check,
            ladder.quality_ladder_check,
            review.review_decisions_check,
        ],
        jobs=[ingest_job, curate_job, refresh_job],
        schedules=[nightly_refresh(settings)],
        sensors=[
            ingest.inbox_sensor,
            review.decisions_sensor,
            automation_sensor,
            crash_recovery_sensor,
        ],
        resources={
            **build_resources(settings),
            "training_client": dg.PipesSubprocessClient(),
        },
        # One process per run, not per step: a re-import per step costs ~20 s each here.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
