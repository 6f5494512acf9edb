"""Great Expectations 1.x, run on DuckDB query results.

A stage declares its expectations as data (``Validation``: a SQL query and the GX
expectations its result must meet), next to the stage. ``run_validations`` builds the GX
objects lazily (GX takes ~3 s to import), validates each query result as a pandas batch
and returns one summary that the Dagster layer turns into an asset check result.
"""

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class Expect:
    """One GX expectation by class name (``great_expectations.expectations.<kind>``)."""

    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    warn_only: bool = False  # severity "warning": reported, never blocking

    def build(self) -> Any:
        import great_expectations.expectations as gxe

        severity = "warning" if self.warn_only else "critical"
        return getattr(gxe, self.kind)(severity=severity, **self.kwargs)

    def label(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items() if k != "value_set")
        return f"{self.kind}({args})"


def expect(kind: str, warn_only: bool = False, **kwargs: Any) -> Expect:
    return Expect(kind, kwargs, warn_only)


def labels_in(labels: tuple[str, ...], column: str = "response") -> list[Expect]:
    """``column`` holds one of ``labels``: one expectation, or none without a label set."""
    if not labels:
        return []
    return [expect("ExpectColumnValuesToBeInSet", column=column, value_set=list(labels))]


@dataclass(frozen=True)
class Validation:
    """A query whose result must meet ``expectations``."""

    name: str
    sql: str
    expectations: list[Expect]


@dataclass
class SuiteResult:
    success: bool  # no critical expectation failed
    evaluated: int
    succeeded: int
    failures: list[dict[str, Any]]
    rows_validated: dict[str, int]

    @property
    def success_percent(self) -> float:
        return 100.0 * self.succeeded / self.evaluated if self.evaluated else 100.0

    @property
    def has_warnings(self) -> bool:
        return any(f["severity"] == "warning" for f in self.failures)


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        import great_expectations as gx

        _CONTEXT = gx.get_context(mode="ephemeral")
        try:  # progress bars would flood the Dagster run logs
            from great_expectations.data_context.types.base import ProgressBarsConfig

            _CONTEXT.variables.progress_bars = ProgressBarsConfig(globally=False)
        except Exception:  # noqa: BLE001 - cosmetic only
            pass
    return _CONTEXT


def run_validations(con: duckdb.DuckDBPyConnection, validations: list[Validation]) -> SuiteResult:
    """Run every validation's query and expectations; collect a single summary."""
    import great_expectations as gx

    ctx = _context()
    run_id = uuid.uuid4().hex[:8]
    source = ctx.data_sources.add_pandas(f"duckdb_{run_id}")
    evaluated = succeeded = 0
    failures: list[dict[str, Any]] = []
    rows: dict[str, int] = {}
    for validation in validations:
        frame = con.sql(validation.sql).df()
        rows[validation.name] = len(frame)
        asset = source.add_dataframe_asset(f"{validation.name}_{run_id}")
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{validation.name}_{run_id}"))
        by_id = {}
        for item in validation.expectations:
            by_id[suite.add_expectation(item.build()).id] = item
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{validation.name}_{run_id}", data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        for outcome in result.results:
            item = by_id[outcome.expectation_config.id]
            evaluated += 1
            if outcome.success:
                succeeded += 1
                continue
            details = outcome.result or {}
            failures.append(
                {
                    "validation": validation.name,
                    "expectation": item.label(),
                    "severity": "warning" if item.warn_only else "critical",
                    "unexpected_count": details.get("unexpected_count"),
                    "unexpected_percent": details.get("unexpected_percent"),
                    "observed_value": details.get("observed_value"),
                    "sample": details.get("partial_unexpected_list", [])[:5],
                    "exception": (outcome.exception_info or {}).get("exception_message"),
                }
            )
    critical = any(f["severity"] == "critical" for f in failures)
    return SuiteResult(not critical, evaluated, succeeded, failures, rows)
