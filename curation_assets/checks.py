"""Turns a stage's declared Great Expectations validations into a Dagster asset check."""

from collections.abc import Callable

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.core.expectations import SuiteResult, Validation, run_validations
from curation_assets.metadata import cell
from curation_assets.resources import DUCKDB_POOL, SettingsParam

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


def suite_result_to_check(result: SuiteResult) -> dg.AssetCheckResult:
    """Map a GX summary to a check result: critical failures are ERROR, warnings WARN."""
    only_warnings = result.success and result.has_warnings
    severity = dg.AssetCheckSeverity.WARN if only_warnings else dg.AssetCheckSeverity.ERROR
    lines = [
        f"| {f['severity']} | {f['validation']} | `{f['expectation']}` | "
        f"{f['unexpected_count'] if f['unexpected_count'] is not None else ''} | "
        f"{cell(f['observed_value'] if f['observed_value'] is not None else f['sample'], 80)} |"
        for f in result.failures
    ]
    table = (
        "| severity | validation | expectation | unexpected | observed / sample |\n"
        "|---|---|---|---|---|\n" + "\n".join(lines)
        if lines
        else "All expectations met."
    )
    return dg.AssetCheckResult(
        passed=result.success and not result.has_warnings,
        severity=severity,
        metadata={
            "success_percent": dg.MetadataValue.float(round(result.success_percent, 2)),
            "expectations_evaluated": result.evaluated,
            "expectations_failed": len(result.failures),
            "failed_expectations": dg.MetadataValue.md(table),
            "unexpected_counts": dg.MetadataValue.json(
                {f["expectation"]: f["unexpected_count"] for f in result.failures}
            ),
            "rows_validated": dg.MetadataValue.json(result.rows_validated),
        },
    )
