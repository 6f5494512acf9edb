"""Jobs and the automation sensor (running out of the box)."""

import dagster as dg

from curation_assets.defs.review.decision_store import INTEGRITY

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
