"""The cross-run gate: refuse to build on data whose blocking checks did not pass.

Inside one run Dagster already skips everything downstream of a failed blocking check.
A run that materializes a downstream asset alone (from the UI, say) must not ignore an
earlier failure, so gated assets read the latest evaluation of every blocking check on
their upstream path from the instance (public APIs only) and refuse, naming the check,
when one failed, never completed, or evaluated an older materialization than the newest.

Checks of partitioned assets (``raw_scrapes``: one per inbox batch) are not part of the
gate: each judges its own batch, a failing batch is held back alone and never reaches
the published tables, so it must not stop the clean ones.
"""

import dagster as dg
from dagster_shared.check import CheckError


def upstream_blocking_check_problems(
    instance: dg.DagsterInstance, asset_graph, asset_key: dg.AssetKey
) -> list[str]:
    """Human-readable problems with the blocking checks upstream of ``asset_key``."""
    ancestors = {
        key
        for key in asset_graph.get_ancestor_asset_keys(asset_key)
        if not asset_graph.get(key).is_partitioned
    }
    check_keys = [
        key
        for key in asset_graph.get_check_keys_for_assets(ancestors)
        if asset_graph.get_check_spec(key).blocking
    ]
    problems = []
    for key in sorted(check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        problem = _problem(instance, key)
        if problem:
            problems.append(problem)
    return problems


def _problem(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> str | None:
    name = f"{key.asset_key.to_user_string()}:{key.name}"
    record = instance.get_latest_asset_check_evaluation_record(key)
    if record is None:
        return f"{name} has never been evaluated (materialize {key.asset_key.to_user_string()})"
    evaluation = record.evaluation
    if evaluation is None:
        return f"{name} did not complete in run {record.run_id[:8]} (re-run it)"
    if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
        failed = evaluation.metadata.get("unexpected_counts")
        names = ", ".join(sorted(failed.value)) if failed is not None else "see the check"
        return (
            f"{name} FAILED in run {record.run_id[:8]} ({names}); the version it audited "
            "was not published"
        )
    target = evaluation.target_materialization_data
    newest = instance.fetch_materializations(key.asset_key, limit=1).records
    if target is not None and newest and newest[0].storage_id > target.storage_id:
        return (
            f"{name} last evaluated an older materialization of "
            f"{key.asset_key.to_user_string()} (materialize it again)"
        )
    return None


def full_asset_graph(context: dg.AssetExecutionContext):
    """The code location's whole asset graph (a run's own graph lacks unselected checks).

    Runs launched from the UI, a schedule or a sensor carry the repository; a run made in
    this process (``execute_in_process``: ``curation run``, the tests) does not, and then
    the job's graph leads to the whole graph it was selected from.
    """
    try:
        return context.repository_def.asset_graph
    except CheckError:
        graph = context.job_def.asset_layer.asset_graph
        return getattr(graph, "source_asset_graph", graph)


def require_upstream_checks_passed(context: dg.AssetExecutionContext) -> None:
    """Raise a non-retryable ``Failure`` if any upstream blocking check did not pass."""
    problems = upstream_blocking_check_problems(
        context.instance, full_asset_graph(context), context.asset_key
    )
    if problems:
        raise dg.Failure(
            description=(
                f"Refusing to materialize {context.asset_key.to_user_string()}: its inputs "
                "have not passed their blocking checks.\n- " + "\n- ".join(problems)
            ),
            metadata={"problems": dg.MetadataValue.json(problems)},
            allow_retries=False,
        )
    context.log.info("gate: every upstream blocking check passed on the current data")
