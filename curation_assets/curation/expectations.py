"""Great Expectations 1.x on the DuckDB warehouse, the way GX users know it.

A stage declares its expectations as data next to the stage: a ``Validation`` is one
*expectation group* (a SQL query and the GX expectations its rows must meet). For an asset
``A``, group ``g`` becomes a GX suite named ``A.g`` (versioned by a hash of its
expectations), a query asset ``A.g`` of the SQL datasource ``warehouse``, a
``ValidationDefinition`` and a ``Checkpoint`` of the same name (see
:mod:`curation_assets.curation.gx_project`). GX computes every metric in DuckDB through its
SQLAlchemy execution engine, on the caller's own connection: an audit inside a stage's
open transaction sees the staged, uncommitted version, and no table is copied into pandas.
Rules GX has no built-in expectation for are proper GX expectation classes
(:mod:`curation_assets.curation.gx_rules`).

``run_validations`` runs each group's checkpoint, builds the local Data Docs for the new
results (when given a folder) and returns one summary with a result per group, which the
Dagster layer turns into one asset check per group plus the blocking audit.
GX takes ~3 s to import: nothing here imports it at module level.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

@dataclass(frozen=True)
class Expect:
    """One GX expectation by class name: one of :mod:`curation_assets.curation.gx_rules`'
    custom classes, else ``great_expectations.expectations.<kind>``."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    warn_only: bool = False  # severity "warning": reported, never blocking

    def build(self) -> Any:
        severity = "warning" if self.warn_only else "critical"
        return expectation_class(self.kind)(severity=severity, **self.kwargs)

    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items() if k != "value_set")
        return f"{self.kind}({args})"


def expectation_class(kind: str) -> type:
    """The GX expectation class named ``kind`` (the project's custom rules first)."""
    import great_expectations.expectations as gxe

    from curation_assets.curation import gx_rules

    found = getattr(gx_rules, kind, None) or getattr(gxe, kind, None)
    if found is None:
        raise ValueError(f"unknown expectation {kind!r}: neither a GX nor a project expectation")
    return found


def expect(kind: str, warn_only: bool = False, **kwargs: Any) -> Expect:
    return Expect(kind, kwargs, warn_only)


def labels_in(labels: tuple[str, ...], column: str = "response") -> list[Expect]:
    """``column`` holds one of ``labels``: one expectation, or none without a label set."""
    if not labels:
        return []
    return [expect("ExpectColumnValuesToBeInSet", column=column, value_set=list(labels))]


@dataclass(frozen=True)
class Validation:
    """One expectation group: a query whose rows must meet ``expectations``.

    ``row_id``: columns that identify a failing row in the samples (GX's
    ``unexpected_index_column_names``); every column of ``row_id`` must be in the query.
    """

    name: str
    sql: str
    expectations: list[Expect]
    row_id: tuple[str, ...] = ()

    def version(self) -> str:
        """A stable hash of the group's expectations (the GX suite's ``meta.version``)."""
        text = json.dumps(
            [[e.kind, e.kwargs, e.warn_only] for e in self.expectations],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class GroupResult:
    """The outcome of one expectation group (one GX checkpoint run)."""

    name: str
    suite: str  # the GX suite / checkpoint name, ``<asset>.<group>``
    version: str
    success: bool  # no critical expectation failed
    evaluated: int
    succeeded: int
    failures: list[dict[str, Any]]
    rows: int
    docs_url: str | None = None  # this result's Data Docs page

    @property
    def has_warnings(self) -> bool:
        return any(f["severity"] == "warning" for f in self.failures)


@dataclass
class SuiteResult:
    success: bool  # no critical expectation failed
    evaluated: int
    succeeded: int
    failures: list[dict[str, Any]]
    rows_validated: dict[str, int]
    groups: list[GroupResult] = field(default_factory=list)
    docs_url: str | None = None  # the Data Docs index

    @property
    def success_percent(self) -> float:
        return 100.0 * self.succeeded / self.evaluated if self.evaluated else 100.0

    @property
    def has_warnings(self) -> bool:
        return any(f["severity"] == "warning" for f in self.failures)

    def group(self, name: str) -> GroupResult | None:
        return next((g for g in self.groups if g.name == name), None)


def run_validations(
    con: duckdb.DuckDBPyConnection,
    validations: list[Validation],
    *,
    asset: str = "adhoc",
    docs_dir: Path | None = None,
) -> SuiteResult:
    """Validate every group of ``asset`` on ``con`` (its open transaction included) through
    GX checkpoints; with ``docs_dir``, keep the results there and update the Data Docs."""
    from curation_assets.curation import gx_project

    groups: list[GroupResult] = []
    identifiers: list[Any] = []
    with gx_project.borrowed(con):  # GX tests the connection when objects are declared
        project = gx_project.project(docs_dir)
        for validation in validations:
            suite = f"{asset}.{validation.name}"
            checkpoint, by_id = project.checkpoint(suite, validation)
            ((identifier, result),) = checkpoint.run().run_results.items()
            identifiers.append(identifier)
            groups.append(_group_result(con, validation, suite, result, by_id))
    docs_index = project.build_docs(identifiers) if docs_dir is not None and groups else None
    if docs_index is not None:
        for group, identifier in zip(groups, identifiers, strict=True):
            group.docs_url = project.page_url(identifier)
    failures = [f for g in groups for f in g.failures]
    return SuiteResult(
        success=all(g.success for g in groups),
        evaluated=sum(g.evaluated for g in groups),
        succeeded=sum(g.succeeded for g in groups),
        failures=failures,
        rows_validated={g.name: g.rows for g in groups},
        groups=groups,
        docs_url=docs_index,
    )


def _group_result(
    con: duckdb.DuckDBPyConnection,
    validation: Validation,
    suite: str,
    result: Any,
    by_id: dict[str, Expect],
) -> GroupResult:
    evaluated = succeeded = 0
    failures = []
    for outcome in result.results:
        evaluated += 1
        if outcome.success:
            succeeded += 1
            continue
        item = by_id[outcome.expectation_config.id]
        failures.append(_failure(con, validation, item, outcome))
    ((rows,),) = con.execute(f"SELECT count(*) FROM ({validation.sql})").fetchall()
    return GroupResult(
        name=validation.name,
        suite=suite,
        version=validation.version(),
        success=not any(f["severity"] == "critical" for f in failures),
        evaluated=evaluated,
        succeeded=succeeded,
        failures=failures,
        rows=int(rows),
    )


def _failure(
    con: duckdb.DuckDBPyConnection, validation: Validation, item: Expect, outcome: Any
) -> dict[str, Any]:
    from curation_assets.curation import gx_rules
    from curation_assets.curation.gx_project import SAMPLE_SIZE

    details = outcome.result or {}
    rows = details.get("partial_unexpected_index_list") or []
    observed = details.get("observed_value")
    cls = expectation_class(item.kind)
    if issubclass(cls, gx_rules.RowRule):  # a custom SQL rule: its own rows are the sample
        rows = gx_rules.sample_rows(con, cls, validation.sql, SAMPLE_SIZE)
        unexpected = observed
    else:
        unexpected = details.get("unexpected_count")
    return {
        "validation": validation.name,
        "expectation": item.label(),
        "severity": "warning" if item.warn_only else "critical",
        "unexpected_count": unexpected,
        "unexpected_percent": details.get("unexpected_percent"),
        "observed_value": observed,
        "sample": details.get("partial_unexpected_list", [])[:SAMPLE_SIZE],
        "sample_rows": [dict(r) for r in rows[:SAMPLE_SIZE]],
        "exception": (outcome.exception_info or {}).get("exception_message"),
    }
