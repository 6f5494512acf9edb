"""Great Expectations validations as Dagster asset checks.

Dataset assets audit their staged version inside their own step (write, audit, publish:
see ``curation/publish.py``) and declare the check with :func:`audit_spec`; the result is
built by :func:`audit_result`. Assets that are not published datasets (models, the
ladder) keep a separate check step made by :func:`gx_suite_check`.
"""

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish
from curation_assets.curation.expectations import SuiteResult, Validation, run_validations
from curation_assets.curation.publish import Outcome
from curation_assets.defs.resources import DUCKDB_POOL, SettingsParam
from curation_assets.defs.shared.metadata import as_table

SuiteFactory = Callable[[Settings], list[Validation]]


def gx_suite_check(
    asset: str, suite: SuiteFactory, description: str, *, blocking: bool = True
) -> dg.AssetChecksDefinition:
    """A blocking asset check named ``expectations`` that runs ``suite`` on ``asset``."""

    @dg.asset_check(
        asset=asset,
        name="expectations",
        blocking=blocking,
        description=description,
        pool=DUCKDB_POOL,
    )
    def _check(duckdb: DuckDBResource, settings: SettingsParam) -> dg.AssetCheckResult:
        with duckdb.get_connection() as con:
            result = run_validations(con, suite(settings))
        return suite_result_to_check(result)

    return _check


def audit_spec(asset: str, description: str) -> dg.AssetCheckSpec:
    """The blocking ``expectations`` check a dataset asset evaluates on its staged version."""
    return dg.AssetCheckSpec("expectations", asset=asset, blocking=True, description=description)


def snapshot_dir(settings: Settings) -> Path:
    """Where the Parquet snapshot of the published tables lives (readers open it)."""
    return settings.data_dir / "published"


def audit_and_publish(
    con, settings: Settings, validations: list[Validation], tables: list[str]
) -> tuple[SuiteResult, Outcome]:
    """Inside the stage's open transaction: audit the staged ``tables``, then publish them
    (commit, then refresh their Parquet snapshot) or keep them as ``<table>__staged``."""
    audit = run_validations(con, validations)
    outcome = publish.finish(con, audit.success, tables)
    if outcome.published:
        for table in tables:
            publish.snapshot(con, snapshot_dir(settings), table)
    return audit, outcome


def publish_audited(
    con, settings: Settings, asset: str, validations: list[Validation], tables: list[str] = ()
) -> tuple[dg.AssetCheckResult, Outcome]:
    """:func:`audit_and_publish` for a single-table asset (plus its bookkeeping ``tables``):
    the ``expectations`` check result of ``asset`` and what happened to its version."""
    audit, outcome = audit_and_publish(con, settings, validations, [asset, *tables])
    return audit_result(asset, audit, outcome), outcome


def audit_result(
    asset: str,
    result: SuiteResult,
    outcome: Outcome,
    *,
    override: dict | None = None,
    extra: dict | None = None,
) -> dg.AssetCheckResult:
    """The check result of an in-step audit: the GX summary, whether the version was
    published, and where the staged version is and how to fix or override it."""
    check = suite_result_to_check(result)
    metadata = dict(check.metadata)
    metadata["published"] = outcome.published
    passed, severity = check.passed, check.severity
    if override is not None:
        passed, severity = True, dg.AssetCheckSeverity.WARN
        metadata["accepted_by_override"] = dg.MetadataValue.json(override)
    if not outcome.published:
        staged = ", ".join(f"`{t}`" for t in outcome.staged_tables) or "(none)"
        metadata["staged_tables"] = dg.MetadataValue.json(outcome.staged_tables)
        metadata["how_to_fix"] = dg.MetadataValue.md(
            f"The new version of `{asset}` failed its audit and was **not published**: "
            f"readers still see the previous version. The staged rows are in {staged} "
            "(query them in the warehouse). Fix the input (replace the file, correct the "
            "decisions or settings) and materialize again"
            + (
                ", or accept the batch on purpose: `curation batches accept BATCH "
                "--reason '...'` (recorded with your name in the audit trail)."
                if asset == "raw_scrapes"
                else "."
            )
        )
    metadata.update(extra or {})
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name="expectations",
        passed=passed,
        severity=severity,
        metadata=metadata,
    )


def suite_result_to_check(result: SuiteResult) -> dg.AssetCheckResult:
    """Map a GX summary to a check result: critical failures are ERROR, warnings WARN."""
    only_warnings = result.success and result.has_warnings
    severity = dg.AssetCheckSeverity.WARN if only_warnings else dg.AssetCheckSeverity.ERROR
    rows = [
        {
            "severity": f["severity"],
            "validation": f["validation"],
            "expectation": f["expectation"],
            "unexpected": f["unexpected_count"],
            "observed / sample": (
                f["observed_value"] if f["observed_value"] is not None else f["sample"]
            ),
        }
        for f in result.failures
    ]
    return dg.AssetCheckResult(
        passed=result.success and not result.has_warnings,
        severity=severity,
        metadata={
            "success_percent": dg.MetadataValue.float(round(result.success_percent, 2)),
            "expectations_evaluated": result.evaluated,
            "expectations_failed": len(result.failures),
            "failed_expectations": as_table(rows, empty="All expectations met.", limit=80),
            # the same, machine-readable (the CLI's "which rule failed" lines read it)
            "failures": dg.MetadataValue.json(json.loads(json.dumps(result.failures, default=str))),
            "unexpected_counts": dg.MetadataValue.json(
                {f["expectation"]: f["unexpected_count"] for f in result.failures}
            ),
            "rows_validated": dg.MetadataValue.json(result.rows_validated),
        },
    )
