"""The cross-run gate: refuse to train unless every upstream blocking check passed.

Blocking checks stop downstream steps only inside one run. A run that materializes the
fine-tune alone (from the UI, say) must not ignore an earlier failure, so the fine-tune
reads the latest evaluation of every blocking check on its upstream path from the
instance and fails with a clear message when one failed, is missing, or evaluated an
older materialization than the current one.
"""

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus,
)


def upstream_blocking_check_problems(
    instance: dg.DagsterInstance, asset_graph, asset_key: dg.AssetKey
) -> list[str]:
    """Human-readable problems with the blocking checks upstream of ``asset_key``."""
    ancestors = asset_graph.get_ancestor_asset_keys(asset_key)
    check_keys = [
        key
        for key in asset_graph.get_check_keys_for_assets(ancestors)
        if asset_graph.get_check_spec(key).blocking
    ]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    problems = []
    for key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        record = latest.get(key)
        if record is None or record.status == AssetCheckExecutionRecordStatus.PLANNED:
            problems.append(f"{name} has no completed evaluation (run it first)")
            continue
        evaluation = record.evaluation
        if record.status == AssetCheckExecutionRecordStatus.FAILED and (
            evaluation is None or evaluation.severity == dg.AssetCheckSeverity.ERROR
        ):
            problems.append(f"{name} FAILED in run {record.run_id[:8]}")
            continue
        target = evaluation.target_materialization_data if evaluation else None
        newest = instance.fetch_materializations(key.asset_key, limit=1).records
        if target is not None and newest and newest[0].storage_id > target.storage_id:
            problems.append(
                f"{name} last evaluated an older materialization of "
                f"{key.asset_key.to_user_string()} (re-run the check)"
            )
    return problems


def _full_asset_graph(context: dg.AssetExecutionContext):
    """The code location's whole asset graph (a run's own graph lacks unselected checks)."""
    try:
        return context.repository_def.asset_graph
    except Exception:  # noqa: BLE001 - in-process runs carry no repository definition
        graph = context.job_def.asset_layer.asset_graph
        return getattr(graph, "source_asset_graph", graph)


def require_upstream_checks_passed(context: dg.AssetExecutionContext) -> None:
    """Raise a non-retryable ``Failure`` if any upstream blocking check did not pass."""
    problems = upstream_blocking_check_problems(
        context.instance, _full_asset_graph(context), context.asset_key
    )
    if problems:
        raise dg.Failure(
            description=(
                f"Refusing to materialize {context.asset_key.to_user_string()}: the upstream "
                "data has not passed its blocking checks.\n- " + "\n- ".join(problems)
            ),
            metadata={"problems": dg.MetadataValue.json(problems)},
            allow_retries=False,
        )
    context.log.info("gate: every upstream blocking check passed on the current data")
