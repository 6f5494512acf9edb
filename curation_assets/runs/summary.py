"""Readable outcomes of a finished run: failed expectations (expected, observed), failed
steps, per-stage row counts and the batches held back, as summary lines.

``run_everything`` (``pipeline``) prints them; ``progress`` and ``waiting`` share the
step-failure and check-name helpers.
"""

import re
from typing import Any

import dagster as dg

from curation_assets.config import Settings

#: The error class of a step that failed its blocking audit (a check, not an error).
AUDIT_FAILURE = "DagsterAssetCheckFailedError"

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_LONG_FLOAT = re.compile(r"\d+\.\d{4,}")


def check_name(evaluation: dg.AssetCheckEvaluation) -> str:
    """``asset:check``, the name a check goes by in the summary."""
    return f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"


def latest_per_check(evaluations) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per check (the last one of the run)."""
    by_name = {}
    for evaluation in evaluations:
        by_name[check_name(evaluation)] = evaluation
    return list(by_name.values())


def blocking_failures(evaluations) -> list[dg.AssetCheckEvaluation]:
    """The evaluations that failed a blocking check (ERROR severity). The per-group checks
    of a suite are not blocking: their failures are listed by the audit's own lines."""
    return [
        c
        for c in evaluations
        if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR and c.blocking is not False
    ]


def is_audit_failure(error: Any) -> bool:
    """True when a step's error is its failed blocking audit."""
    return error is not None and error.cls_name == AUDIT_FAILURE


def failure_message(data: Any, default: str) -> str:
    """What a step failure says: the user's description, else the error, else ``default``."""
    user, error = data.user_failure_data, data.error
    return (user.description if user and user.description else None) or (
        error.message if error else default
    )


def failed_expectation_lines(evaluation: dg.AssetCheckEvaluation) -> list[str]:
    """One line per failed expectation of a check: expectation, expected, observed."""
    name = check_name(evaluation)
    failures = _failures(evaluation)
    if not failures:
        return [f"{name}: failed (details in the UI: Assets > {evaluation.asset_key.path[-1]})"]
    out = []
    for f in failures:
        kind, expected = _split_label(f["expectation"])
        observed = f.get("observed")
        parts = [f"expected {expected}" if expected else ""]
        if f.get("unexpected") not in (None, ""):
            parts.append(f"{f['unexpected']} unexpected")
        if observed not in (None, "", "[]"):
            parts.append(f"observed {_LONG_FLOAT.sub(_short_float, str(observed))}")
        detail = ", ".join(p for p in parts if p)
        out.append(f"{name} [{f['validation']}] {kind}: {detail}")
    return out


def _short_float(match: re.Match) -> str:
    return f"{float(match.group()):.4g}"


def _split_label(label: str) -> tuple[str, str]:
    """``ExpectTableRowCountToBeBetween(min_value=30)`` -> (table row count to be
    between, min_value=30)."""
    kind, _, args = label.partition("(")
    words = _CAMEL.sub(" ", kind.removeprefix("Expect")).lower()
    return words, args.removesuffix(")")


def _failures(evaluation: dg.AssetCheckEvaluation) -> list[dict[str, Any]]:
    """The failed expectations of a check, from its ``failures`` metadata."""
    failures = evaluation.metadata.get("failures")
    return [
        {
            "validation": f.get("validation", ""),
            "expectation": f.get("expectation", ""),
            "unexpected": f.get("unexpected_count"),
            "observed": f["observed_value"]
            if f.get("observed_value") is not None
            else f.get("sample"),
        }
        for f in (failures.value if failures is not None else [])
    ]


def step_errors(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """Steps that failed with an error (not a failed audit: those are listed as checks)."""
    out = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if is_audit_failure(data.error):
            continue
        message = failure_message(data, "unknown error")
        out.append((event.step_key or "?", message.strip().replace("\n", " ")[:400]))
    return out


def stage_counts(result: dg.ExecuteInProcessResult) -> list[str]:
    """Rows written per materialized asset, and the evaluation's accuracy and macro-F1."""
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


def held_lines(settings: Settings) -> list[str]:
    """The batches held back now (at ingest or at filtered), and what to do about them."""
    from curation_assets.curation import publish
    from curation_assets.defs.shared.checks import snapshot_dir

    con = publish.open_snapshot(snapshot_dir(settings))
    try:
        held = publish.held(con)
    except Exception:  # noqa: BLE001 - a summary line must not fail the run
        held = []
    finally:
        con.close()
    lines = [
        f"held back: {row['batch']} at {row['stage']} ({row['records']} records): {row['reason']}"
        for row in held
    ]
    if lines:
        lines.append(
            "  the other batches go on; fix or replace the file, or accept it on purpose: "
            "curation batches list / curation batches accept BATCH --reason '...'"
        )
    return lines
