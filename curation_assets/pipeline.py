"""Run the whole graph in this process against the real instance (``DAGSTER_HOME``).

Used by ``curation demo``/``curation run`` and by the end-to-end tests: ingests every
inbox file as its partition, records the decision store's state, then executes
``curate_job`` (all later stages with their blocking checks) in one run.
"""

from typing import Any

import dagster as dg

from curation_assets.config import Settings
from curation_assets.core import ingest
from curation_assets.definitions import build_definitions
from curation_assets.recovery import recover_on_start, worker_tags
from curation_assets.stages.ingest import inbox_files
from curation_assets.stages.review import recorded_decisions_marker, review_decisions_event


def run_everything(
    settings: Settings,
    instance: dg.DagsterInstance | None = None,
    skip_training: bool = False,
) -> dict[str, Any]:
    """Materialize every stage; return per-run outcomes and printable summary lines."""
    instance = instance or dg.DagsterInstance.get()
    recover_on_start(instance)  # a killed earlier run must not hold the duckdb slot
    tags = worker_tags()  # lets a later recovery tell that this process died
    defs = build_definitions(settings)
    keys = [ingest.batch_key(p) for p in ingest.list_inbox(settings.inbox)]
    known = set(instance.get_dynamic_partitions(inbox_files.name))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(inbox_files.name, new)
    lines, success = [], True
    ingest_job = defs.resolve_job_def("ingest_job")
    for key in keys:
        result = ingest_job.execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False, tags=tags
        )
        success &= result.success
        lines.append(f"ingest {key}: {'ok' if result.success else 'FAILED'}")
    event = review_decisions_event(settings)
    if event.metadata["marker"].value != recorded_decisions_marker(instance):
        instance.report_runless_asset_event(event)
    job = defs.resolve_job_def("curate_job")
    if skip_training:
        curate = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags=tags,
            asset_selection=[
                dg.AssetKey(k)
                for k in ("filtered", "rejections", "review_queue", "reviewed", "verified")
            ],
        )
    else:
        curate = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags)
    success &= curate.success
    checks = curate.get_asset_check_evaluations()
    failed = [
        f"{c.asset_key.to_user_string()}:{c.check_name}"
        for c in checks
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    materialized = sorted(
        {e.asset_key.to_user_string() for e in curate.get_asset_materialization_events()}
    )
    lines.append(f"curate run {curate.run_id[:8]}: {'ok' if curate.success else 'FAILED'}")
    lines.append(f"materialized: {', '.join(materialized)}")
    lines.append(
        f"checks: {len(checks) - len(failed)} passed, {len(failed)} failed "
        + (f"({', '.join(failed)})" if failed else "")
    )
    for c in checks:
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR:
            table = c.metadata.get("failed_expectations")
            lines.append(f"  {c.asset_key.to_user_string()}:{c.check_name} failed:")
            lines.append("    " + (str(table.value) if table else "").replace("\n", "\n    "))
    lines += _stage_counts(curate)
    return {
        "success": success,
        "curate": curate,
        "failed_checks": failed,
        "materialized": materialized,
        "lines": lines,
    }


def _stage_counts(result: dg.ExecuteInProcessResult) -> list[str]:
    out = []
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        meta = mat.metadata
        key = mat.asset_key.to_user_string()
        if "dagster/row_count" in meta:
            out.append(f"  {key}: {meta['dagster/row_count'].value} rows")
        for name in ("accuracy", "macro_f1"):
            if name in meta:
                out.append(f"  {key} {name}: {meta[name].value:.3f}")
    return out
