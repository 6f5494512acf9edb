"""Great Expectations validations as Dagster asset checks.

Each asset's suite has expectation groups (``curation/expectations.py``). The asset gets
one blocking check ``expectations`` (the audit: did the version pass, was it published,
where is the Data Docs index) and one check per group, named after the group, that shows
which rule failed, its unexpected count, a sample of failing rows and the group's Data Docs
page. The group checks are not blocking: the audit already is, and a version is published
or held back as a whole.

Dataset assets audit their staged version inside their own step (write, audit, publish:
see ``curation/publish.py``) and declare the checks with :func:`audit_specs`; the results
are built by :func:`audit_checks`. Assets that are not published datasets (models, the
ladder) keep a separate check step made by :func:`gx_suite_check`.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings
from curation_assets.curation import publish
from curation_assets.curation.expectations import (
    GroupResult,
    SuiteResult,
    Validation,
    run_validations,
)
from curation_assets.curation.publish import Outcome
from curation_assets.defs.resources import DUCKDB_POOL, SettingsParam
from curation_assets.defs.shared.metadata import as_table

SuiteFactory = Callable[[Settings], list[Validation]]
#: The blocking audit check of every audited asset.
AUDIT = "expectations"


def gx_suite_check(
    asset: str, suite: SuiteFactory, description: str, *, blocking: bool = True
) -> dg.AssetChecksDefinition:
    """The checks of ``asset``'s suite in their own step: the audit ``expectations``
    (blocking unless told otherwise) and one check per expectation group."""
    groups = {v.name: f"Expectation group `{v.name}` of `{asset}`." for v in suite(Settings())}

    @dg.multi_asset_check(
        specs=audit_specs(asset, description, groups, blocking=blocking),
        name=f"{asset}_expectations",
        pool=DUCKDB_POOL,
        can_subset=True,  # the UI may run one group's check alone
    )
    def _check(
        context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource, settings: SettingsParam
    ) -> Iterable[dg.AssetCheckResult]:
        selected = {key.name for key in context.selected_asset_check_keys}
        validations = suite(settings)
        if AUDIT not in selected:  # only the selected groups need to run
            validations = [v for v in validations if v.name in selected]
        with duckdb.get_connection() as con:
            result = run_validations(con, validations, asset=asset, docs_dir=gx_dir(settings))
        summary = suite_result_to_check(result)
        audit = dg.AssetCheckResult(
            asset_key=asset,
            check_name=AUDIT,
            passed=summary.passed,
            severity=summary.severity,
            metadata=summary.metadata,
        )
        for check in [audit, *group_checks(asset, result, groups)]:
            if check.check_name in selected:
                yield check

    return _check


def audit_specs(
    asset: str, description: str, groups: Mapping[str, str], *, blocking: bool = True
) -> list[dg.AssetCheckSpec]:
    """The blocking audit ``expectations`` of ``asset`` and one check per expectation group
    (``groups``: name -> what it checks)."""
    return [
        dg.AssetCheckSpec(AUDIT, asset=asset, blocking=blocking, description=description),
        *(dg.AssetCheckSpec(name, asset=asset, description=text) for name, text in groups.items()),
    ]


def snapshot_dir(settings: Settings) -> Path:
    """Where the Parquet snapshot of the published tables lives (readers open it)."""
    return settings.data_dir / "published"


def gx_dir(settings: Settings) -> Path | None:
    """Where GX keeps validation results and the local Data Docs site (``data_docs/``);
    None when ``CURATION_DATA_DOCS`` is off."""
    return settings.data_dir / "gx" if settings.data_docs else None


def validate(con, settings: Settings, asset: str, validations: list[Validation]) -> SuiteResult:
    """Run ``asset``'s expectation groups on ``con``, results and Data Docs under
    :func:`gx_dir`."""
    return run_validations(con, validations, asset=asset, docs_dir=gx_dir(settings))


def audit_and_publish(
    con, settings: Settings, validations: list[Validation], tables: list[str]
) -> tuple[SuiteResult, Outcome]:
    """Inside the stage's open transaction: audit the staged ``tables``, then publish them
    (commit, then refresh their Parquet snapshot) or keep them as ``<table>__staged``."""
    audit = validate(con, settings, tables[0], validations)
    outcome = publish.finish(con, audit.success, tables)
    if outcome.published:
        for table in tables:
            publish.snapshot(con, snapshot_dir(settings), table)
    return audit, outcome


def publish_audited(
    con,
    settings: Settings,
    asset: str,
    validations: list[Validation],
    groups: Mapping[str, str],
    tables: list[str] = (),
) -> tuple[list[dg.AssetCheckResult], Outcome]:
    """:func:`audit_and_publish` for a single-table asset (plus its bookkeeping ``tables``):
    the check results of ``asset`` (:func:`audit_checks`) and what happened to its version."""
    audit, outcome = audit_and_publish(con, settings, validations, [asset, *tables])
    return audit_checks(asset, audit, outcome, groups), outcome


def audit_checks(
    asset: str,
    result: SuiteResult,
    outcome: Outcome,
    groups: Mapping[str, str],
    **kwargs: object,
) -> list[dg.AssetCheckResult]:
    """The audit (:func:`audit_result`, ``kwargs`` passed on) and the group checks."""
    return [audit_result(asset, result, outcome, **kwargs), *group_checks(asset, result, groups)]


def group_checks(
    asset: str, result: SuiteResult, groups: Mapping[str, str]
) -> list[dg.AssetCheckResult]:
    """One result per declared expectation group of ``asset``. A group the run did not
    evaluate (it applies to another task type) passes, saying so."""
    unknown = sorted({g.name for g in result.groups} - set(groups))
    if unknown:
        raise ValueError(f"{asset}: expectation groups {unknown} are not declared as checks")
    checks = []
    for name in groups:
        group = result.group(name)
        if group is None:
            checks.append(
                dg.AssetCheckResult(
                    asset_key=asset,
                    check_name=name,
                    passed=True,
                    metadata={"evaluated": False, "why": "not part of this run's suite"},
                )
            )
            continue
        checks.append(_group_check(asset, group))
    return checks


def _group_check(asset: str, group: GroupResult) -> dg.AssetCheckResult:
    only_warnings = group.success and group.has_warnings
    rows = [
        {
            "severity": f["severity"],
            "expectation": f["expectation"],
            "unexpected": f["unexpected_count"],
            "failing rows (sample)": f["sample_rows"] or f["sample"] or f["observed_value"],
        }
        for f in group.failures
    ]
    metadata: dict[str, object] = {
        "gx_suite": group.suite,
        "suite_version": group.version,
        "rows_validated": group.rows,
        "expectations_evaluated": group.evaluated,
        "expectations_failed": len(group.failures),
        "unexpected_count": sum(int(f["unexpected_count"] or 0) for f in group.failures),
        "failed_expectations": as_table(rows, empty="All expectations met.", limit=40),
        "failures": dg.MetadataValue.json(json.loads(json.dumps(group.failures, default=str))),
    }
    if group.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(group.docs_url)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=group.name,
        passed=group.success and not group.has_warnings,
        severity=dg.AssetCheckSeverity.WARN if only_warnings else dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


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
        check_name=AUDIT,
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
            **({"data_docs": dg.MetadataValue.url(result.docs_url)} if result.docs_url else {}),
        },
    )
