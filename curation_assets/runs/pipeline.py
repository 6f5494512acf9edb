"""Run the whole graph in this process against the real instance (``DAGSTER_HOME``).

Used by ``curation demo``/``curation run`` and by the end-to-end tests: ingests every
inbox file as its partition, records the decision store's state, then executes
``curate_job`` (all later stages with their blocking checks) in one run.

The outcome is one of three states: ``ok``; ``waiting`` (every run did what it could and
the only thing missing is review work: ``verified`` has too few examples to train, which
is how every new dataset starts; see ``waiting``); ``failed`` (a held batch, a failed
audit, an error). The summary lines come from ``summary``, the console log from
``progress``; this module re-exports the names callers used from it.
"""

from typing import Any

import dagster as dg

from curation_assets.config import Settings
from curation_assets.curation.ingest import intake
from curation_assets.definitions import build_definitions
from curation_assets.defs.ingest.assets import inbox_files
from curation_assets.defs.review.decision_store import (
    recorded_decisions_marker,
    review_decisions_event,
)
from curation_assets.runs.progress import Emit, ProgressHandler, run_config, with_logging
from curation_assets.runs.recovery import recover_on_start, worker_tags
from curation_assets.runs.summary import (
    blocking_failures,
    check_name,
    failed_expectation_lines,
    held_lines,
    latest_per_check,
    stage_counts,
    step_errors,
)
from curation_assets.runs.waiting import (
    VERIFIED_CHECK,
    only_waiting,
    waiting_for_review,
    waiting_lines,
)

__all__ = [
    "START_STAGES",
    "TRAINING_ASSETS",
    "VERIFIED_CHECK",
    "Emit",
    "failed_expectation_lines",
    "held_lines",
    "run_everything",
    "waiting_lines",
]

#: Stages ``--from`` may start at (each runs with everything downstream of it).
START_STAGES = ("filtered", "review_queue", "reviewed", "verified")
#: Left out by ``skip_training`` (the fine-tune and what reads it).
TRAINING_ASSETS = ("fine_tuned_model", "model_evaluation", "quality_ladder", "example_lineage")
#: The names this module had before the split (tests reach them here).
_ProgressHandler = ProgressHandler
_waiting = waiting_for_review


def run_everything(
    settings: Settings,
    instance: dg.DagsterInstance | None = None,
    skip_training: bool = False,
    *,
    verbose: bool = False,
    from_stage: str | None = None,
    emit: Emit | None = print,
) -> dict[str, Any]:
    """Materialize every stage (from ``from_stage`` on, without re-ingesting, if given);
    return per-run outcomes, the state (ok / waiting / failed) and printable summary lines.

    ``verbose`` keeps Dagster's own console log at DEBUG; otherwise ``emit`` gets one
    line per finished stage (rows, seconds) and the stages' own INFO messages.
    """
    if from_stage is not None and from_stage not in START_STAGES:
        raise ValueError(f"--from takes one of {', '.join(START_STAGES)}, got {from_stage!r}")
    instance = instance or dg.DagsterInstance.get()
    recover_on_start(instance)  # a killed earlier run must not hold the duckdb slot
    tags = worker_tags()  # lets a later recovery tell that this process died
    defs = build_definitions(settings)
    lines, success, ingest_failed = [], True, []
    if from_stage is None:
        keys = [intake.batch_key(p) for p in intake.list_inbox(settings.inbox)]
        known = set(instance.get_dynamic_partitions(inbox_files.name))
        new = [k for k in keys if k not in known]
        if new:
            instance.add_dynamic_partitions(inbox_files.name, new)
        ingest_job = with_logging(defs.resolve_job_def("ingest_job"), verbose, emit)
        for key in keys:
            result = ingest_job.execute_in_process(
                instance=instance,
                partition_key=key,
                raise_on_error=False,
                tags=tags,
                run_config=run_config(verbose),
            )
            success &= result.success
            if not result.success:
                ingest_failed.append(key)
            lines.append(f"ingest {key}: {'ok' if result.success else 'FAILED'}")
            for c in blocking_failures(latest_per_check(result.get_asset_check_evaluations())):
                lines += [f"  {line}" for line in failed_expectation_lines(c)]
            lines += [f"  {step} failed: {message}" for step, message in step_errors(result)]
    event = review_decisions_event(settings.decision_store)
    if event.metadata["marker"].value != recorded_decisions_marker(instance):
        instance.report_runless_asset_event(event)
    job = with_logging(defs.resolve_job_def("curate_job"), verbose, emit)
    selection = _selection(defs, from_stage, skip_training)
    curate = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags=tags,
        run_config=run_config(verbose),
        asset_selection=selection,
    )
    success &= curate.success
    checks = latest_per_check(curate.get_asset_check_evaluations())
    failed_evals = blocking_failures(checks)
    failed = [check_name(c) for c in failed_evals]
    materialized = sorted(
        {e.asset_key.to_user_string() for e in curate.get_asset_materialization_events()}
    )
    waiting = waiting_for_review(settings, curate, failed_evals)
    curate_waits = waiting is not None and only_waiting(curate, failed_evals)
    if success:
        state = "ok"
    elif curate_waits and not ingest_failed:
        state = "waiting"
    else:
        state = "failed"
    curate_word = "ok" if curate.success else "waiting for review" if curate_waits else "FAILED"
    lines.append(f"curate run {curate.run_id[:8]}: {curate_word}")
    lines.append(f"materialized: {', '.join(materialized) or '(nothing)'}")
    lines.append(
        f"checks: {len(checks) - len(failed)} passed, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else "")
    )
    for c in failed_evals:
        if waiting is not None and check_name(c) == VERIFIED_CHECK:
            continue  # explained by the waiting lines below
        lines += [f"  {line}" for line in failed_expectation_lines(c)]
    for step, message in step_errors(curate):
        lines.append(f"  {step} failed: {message}")
    lines += stage_counts(curate)
    lines += held_lines(settings)
    if waiting is not None:
        lines += waiting_lines(waiting, settings)
    return {
        "success": success,
        "state": state,
        "waiting": waiting,
        "curate": curate,
        "failed_checks": failed,
        "materialized": materialized,
        "lines": lines,
    }


# --- selection --------------------------------------------------------------------------


def _selection(defs: dg.Definitions, from_stage: str | None, skip_training: bool):
    """The curate_job assets to run: all, or ``from_stage`` and its descendants."""
    if from_stage is None and not skip_training:
        return None
    graph = defs.resolve_asset_graph()
    in_job = {
        k
        for k in defs.resolve_job_def("curate_job").asset_layer.selected_asset_keys
        if not graph.get(k).is_partitioned
    }
    keys = set(in_job)
    if from_stage is not None:
        downstream = dg.AssetSelection.assets(from_stage).downstream().resolve(graph)
        keys = set(downstream) & in_job
    if skip_training:
        keys -= {dg.AssetKey(k) for k in TRAINING_ASSETS}
    return sorted(keys, key=lambda k: k.to_user_string())
