"""The decision store in the graph: the external asset ``review_decisions``, the sensor that
records a new version of it when decisions arrive, and its integrity check."""

from pathlib import Path

import dagster as dg

from curation_assets.curation.review import decisions
from curation_assets.defs.resources import DecisionStoreResource, SettingsParam
from curation_assets.defs.review.suites import review_decisions_expectations
from curation_assets.defs.shared.checks import (
    suite_result_to_check,
    validate,
)
from curation_assets.defs.shared.sensors import running_sensor

review_decisions = dg.AssetSpec(
    "review_decisions",
    description=(
        "Append-only decisions (accept / reject / edit) by reviewers and experts, in the "
        "SQLite decision store (not the warehouse). Written by the review app or by "
        "`curation decisions import FILE`; observed by the `decisions_sensor`."
    ),
    kinds={"sqlite"},
)


@running_sensor(
    name="decisions_sensor",
    every_seconds=30,
    description=(
        "Records a new version of `review_decisions` when decisions arrive in the store, "
        "so that automation refreshes review_queue, reviewed and verified."
    ),
)
def decisions_sensor(context: dg.SensorEvaluationContext, decision_store: DecisionStoreResource):
    """Record a new version of ``review_decisions`` only when the store changed since the
    version the instance last recorded (by this sensor, ``curation run`` or the demo), so
    a fresh UI after the demo starts nothing."""
    event = review_decisions_event(decision_store.file)
    count = event.metadata["decisions"].value
    if count == 0:
        return dg.SkipReason(f"the decision store {decision_store.path} is empty")
    marker = event.metadata["marker"].value
    if marker in (context.cursor, recorded_decisions_marker(context.instance)):
        context.update_cursor(marker)
        return dg.SkipReason(f"no new decisions ({count} in the store)")
    context.update_cursor(marker)
    return dg.SensorResult(asset_events=[event])


def review_decisions_event(store: Path) -> dg.AssetMaterialization:
    """A version of ``review_decisions``: the size and newest decision of ``store``."""
    count, newest = decisions.high_water_mark(store)
    return dg.AssetMaterialization(
        asset_key="review_decisions",
        metadata={
            "decisions": count,
            "newest_recorded_at": str(newest),
            "marker": f"{count}:{newest}",
            "store": dg.MetadataValue.path(str(store)),
        },
    )


def recorded_decisions_marker(instance: dg.DagsterInstance) -> str | None:
    """The marker of the newest ``review_decisions`` version the instance recorded."""
    records = instance.fetch_materializations(dg.AssetKey("review_decisions"), limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("marker")
    return value.value if value is not None else None


INTEGRITY = dg.AssetCheckKey(dg.AssetKey("review_decisions"), "integrity")


@dg.asset_check(
    asset="review_decisions",
    name="integrity",
    blocking=False,  # the store is written outside Dagster: this reports, never gates
    description=(
        "The decision store is well formed and append-only: known decisions and roles, "
        "example ids and reviewers present, edits carry an allowed label "
        "(classification), every row still matches the content hash stored when it was "
        "inserted, decision ids have no gaps, and the rows seen by the previous "
        "evaluation are unchanged (chained digest in this check's metadata)."
    ),
)
def review_decisions_check(
    context: dg.AssetCheckExecutionContext,
    decision_store: DecisionStoreResource,
    settings: SettingsParam,
) -> dg.AssetCheckResult:
    previous = _previous_audit(context)
    trail = decision_store.audit_trail(previous)
    con = trail.connection()
    try:
        result = validate(
            con, settings, "review_decisions", review_decisions_expectations(settings)
        )
    finally:
        con.close()
    check = suite_result_to_check(result)
    return dg.AssetCheckResult(
        passed=check.passed,
        severity=check.severity,
        metadata={
            **check.metadata,
            "decisions": trail.count,
            "digest": trail.digest,
            "compared_with_decisions": previous[0] if previous else 0,
            "store": decision_store.metadata(),
        },
    )


def _previous_audit(context: dg.AssetCheckExecutionContext) -> tuple[int, str] | None:
    """(decisions, digest) of the latest completed evaluation of this check in an
    earlier run (the event log is outside the store, so a forger cannot rewrite both)."""
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        INTEGRITY, limit=5
    )
    for record in history:
        evaluation = record.evaluation
        if record.run_id == context.run.run_id or not isinstance(
            evaluation, dg.AssetCheckEvaluation
        ):
            continue  # this run's own planned evaluation, or one that never completed
        if "decisions" in evaluation.metadata and "digest" in evaluation.metadata:
            found = evaluation.metadata
            return int(found["decisions"].value), str(found["digest"].value)
    return None
