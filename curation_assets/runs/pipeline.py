"""Run the whole graph in this process against the real instance (``DAGSTER_HOME``).

Used by ``curation demo``/``curation run`` and by the end-to-end tests: ingests every
inbox file as its partition, records the decision store's state, then executes
``curate_job`` (all later stages with their blocking checks) in one run.

The outcome is one of three states: ``ok``; ``waiting`` (every run did what it could and
the only thing missing is review work: ``verified`` has too few examples to train, which
is how every new dataset starts); ``failed`` (a held batch, a failed audit, an error).
"""

import logging
import re
import time
from collections.abc import Callable
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
from curation_assets.defs.review.suites import verified_expectations
from curation_assets.runs.recovery import recover_on_start, worker_tags

#: Stages ``--from`` may start at (each runs with everything downstream of it).
START_STAGES = ("filtered", "review_queue", "reviewed", "verified")
#: Left out by ``skip_training`` (the fine-tune and what reads it).
TRAINING_ASSETS = ("fine_tuned_model", "model_evaluation", "quality_ladder", "example_lineage")
#: The check whose "not enough verified examples" failure means "waiting for review".
VERIFIED_CHECK = "verified:expectations"
#: Queue statuses that still need a person (coverage items need an expert after reviewers).
_OPEN = ("pending", "in_review", "needs_expert")

Emit = Callable[[str], None]


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
        ingest_job = _with_logging(defs.resolve_job_def("ingest_job"), verbose, emit)
        for key in keys:
            result = ingest_job.execute_in_process(
                instance=instance,
                partition_key=key,
                raise_on_error=False,
                tags=tags,
                run_config=_run_config(verbose),
            )
            success &= result.success
            if not result.success:
                ingest_failed.append(key)
            lines.append(f"ingest {key}: {'ok' if result.success else 'FAILED'}")
            for c in _latest_per_check(result.get_asset_check_evaluations()):
                if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR:
                    lines += [f"  {line}" for line in failed_expectation_lines(c)]
            lines += [f"  {step} failed: {message}" for step, message in _step_errors(result)]
    event = review_decisions_event(settings)
    if event.metadata["marker"].value != recorded_decisions_marker(instance):
        instance.report_runless_asset_event(event)
    job = _with_logging(defs.resolve_job_def("curate_job"), verbose, emit)
    selection = _selection(defs, from_stage, skip_training)
    curate = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags=tags,
        run_config=_run_config(verbose),
        asset_selection=selection,
    )
    success &= curate.success
    checks = _latest_per_check(curate.get_asset_check_evaluations())
    failed_evals = [c for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    failed = [_check_name(c) for c in failed_evals]
    materialized = sorted(
        {e.asset_key.to_user_string() for e in curate.get_asset_materialization_events()}
    )
    waiting = _waiting(settings, curate, failed_evals)
    curate_waits = waiting is not None and _only_waiting(curate, failed_evals)
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
        if waiting is not None and _check_name(c) == VERIFIED_CHECK:
            continue  # explained by the waiting lines below
        lines += [f"  {line}" for line in failed_expectation_lines(c)]
    for step, message in _step_errors(curate):
        lines.append(f"  {step} failed: {message}")
    lines += _stage_counts(curate)
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


# --- the "waiting for review" state ------------------------------------------------------


def _shortfall_expectations(settings: Settings) -> set[str]:
    """Labels of the ``verified`` expectations that only count examples: failing them
    means more verified examples are needed (too few rows, an empty or small split)."""
    labels = set()
    for validation in verified_expectations(settings):
        for item in validation.expectations:
            counts_rows = item.kind == "ExpectTableRowCountToBeBetween"
            split_size = validation.name == "splits" and item.kwargs.get("column") in (
                "validation",
                "train",
            )
            if counts_rows or split_size:
                labels.add(item.label())
    return labels


def _waiting(settings: Settings, curate, failed_evals) -> dict[str, Any] | None:
    """What review work is missing, or None when the data is not short of verified rows."""
    audit = next((c for c in failed_evals if _check_name(c) == VERIFIED_CHECK), None)
    if audit is None:
        return None
    unexpected = audit.metadata.get("unexpected_counts")
    failing = set(unexpected.value) if unexpected is not None else set()
    if not failing or not failing <= _shortfall_expectations(settings):
        return None  # verified failed for another reason: a real failure
    rows = audit.metadata.get("rows_validated")
    have = int((rows.value if rows is not None else {}).get("rows", 0))
    waiting = {
        "verified": have,
        "min_verified_examples": settings.min_verified_examples,
        "more_needed": max(settings.min_verified_examples - have, 0),
        "min_validation_examples": settings.min_validation_examples,
        "validation": _staged_validation_rows(settings),
    }
    waiting.update(_queue_counts(settings))
    return waiting


def _only_waiting(curate, failed_evals) -> bool:
    """True when the one problem of the curate run is the verified shortfall: no other
    blocking check failed and no step failed except ``verified`` on its audit."""
    if any(_check_name(c) != VERIFIED_CHECK for c in failed_evals):
        return False
    for event in curate.get_step_failure_events():
        error = event.step_failure_data.error
        if event.step_key != "verified" or error is None:
            return False
        if error.cls_name != "DagsterAssetCheckFailedError":
            return False
    return True


def _queue_counts(settings: Settings) -> dict[str, int]:
    """Items of the published review queues that still wait for a person."""
    from curation_assets.curation import publish, warehouse
    from curation_assets.defs.shared.checks import snapshot_dir

    counts = {"coverage_open": 0, "coverage_need_expert": 0, "suspect_open": 0}
    con = publish.open_snapshot(snapshot_dir(settings))
    try:
        if not warehouse.table_exists(con, "review_queue"):
            return counts
        open_list = ", ".join(f"'{s}'" for s in _OPEN)
        row = con.execute(
            f"""SELECT
                count(*) FILTER (WHERE queue = 'coverage'
                                 AND review_status IN ({open_list}, 'reviewed')),
                count(*) FILTER (WHERE queue = 'coverage'
                                 AND review_status IN ('needs_expert', 'reviewed')),
                count(*) FILTER (WHERE queue = 'suspect' AND review_status IN ({open_list}))
            FROM review_queue"""
        ).fetchall()[0]
    except Exception:  # noqa: BLE001 - the counts decorate a message, never fail the run
        return counts
    finally:
        con.close()
    return dict(zip(counts, map(int, row), strict=True))


def _staged_validation_rows(settings: Settings) -> int | None:
    """Validation rows of the staged (unpublished) ``verified``, if the warehouse is free."""
    import duckdb

    try:
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            return int(
                con.execute(
                    "SELECT count(*) FROM verified__staged WHERE split = 'validation'"
                ).fetchall()[0][0]
            )
    except Exception:  # noqa: BLE001 - locked by another process, or no staged table
        return None


def waiting_lines(waiting: dict[str, Any], settings: Settings) -> list[str]:
    """The "what to do next" lines of the waiting state."""
    coverage, suspects = waiting["coverage_open"], waiting["suspect_open"]
    total = coverage + suspects
    experts = waiting["coverage_need_expert"]
    lines = [
        "waiting for review (not a failure): "
        + (
            f"{total} items wait in the review queues (coverage {coverage}"
            + (f", {experts} of them for an expert" if experts else "")
            + f", suspects {suspects})"
            if total
            else "the review queues have no open item"
        ),
        "  open the review app (./scripts/review) or import decisions "
        "(curation decisions import FILE), then: curation run --from review_queue",
    ]
    have, need = waiting["verified"], waiting["more_needed"]
    if need:
        lines.append(
            f"  {need} more verified examples are needed before training (have {have} of "
            f"min_verified_examples={waiting['min_verified_examples']}); experts verify "
            "items of the coverage queue"
        )
    else:
        validation = waiting["validation"]
        lines.append(
            f"  {have} verified examples, but the validation split is too small"
            + (f" ({validation}" if validation is not None else " (")
            + f" of min_validation_examples={waiting['min_validation_examples']}): "
            "verify more coverage items"
        )
    return lines


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


# --- readable failures ------------------------------------------------------------------


def failed_expectation_lines(evaluation: dg.AssetCheckEvaluation) -> list[str]:
    """One line per failed expectation of a check: expectation, expected, observed."""
    name = _check_name(evaluation)
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


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_LONG_FLOAT = re.compile(r"\d+\.\d{4,}")


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


def _step_errors(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """Steps that failed with an error (not a failed audit: those are listed as checks)."""
    out = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            continue
        user = event.step_failure_data.user_failure_data
        message = (user.description if user and user.description else None) or (
            error.message if error else "unknown error"
        )
        out.append((event.step_key or "?", message.strip().replace("\n", " ")[:400]))
    return out


def _check_name(evaluation: dg.AssetCheckEvaluation) -> str:
    return f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"


def _latest_per_check(evaluations) -> list[dg.AssetCheckEvaluation]:
    """One evaluation per check (the last one of the run)."""
    by_name = {}
    for evaluation in evaluations:
        by_name[_check_name(evaluation)] = evaluation
    return list(by_name.values())


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


# --- logging ----------------------------------------------------------------------------


def _run_config(verbose: bool) -> dict[str, Any]:
    if verbose:
        return {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    return {"loggers": {"progress": {"config": {}}}}


def _with_logging(job: dg.JobDefinition, verbose: bool, emit: Emit | None) -> dg.JobDefinition:
    """The job with Dagster's console log (``verbose``) or the compact progress log."""
    if verbose:
        return job
    return job.with_logger_defs({"progress": _progress_logger(emit)})


_TRAIN_STEP = re.compile(r"^step (\d+)/(\d+)\b")
_NOT_EXECUTING = re.compile(r"^Dependencies for step \S+ .*Not executing\.$")


class _ProgressHandler(logging.Handler):
    """Turns a run's log records into short lines: the stages' INFO messages, and one
    line per finished step (the rows it wrote and its duration)."""

    def __init__(self, emit: Emit | None) -> None:
        super().__init__(level=logging.DEBUG)  # events arrive at DEBUG; filtered below
        self._out = emit
        self._rows: dict[str, list[str]] = {}
        self._steps: dict[str, tuple[float, int]] = {}  # step -> (first time, first step)
        self._shown: dict[str, int] = {}  # step -> tenth of the training last shown

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102 - logging.Handler API
        try:
            line = self._line(record)
        except Exception:  # noqa: BLE001 - a log line must never break a run
            line = None
        if line and self._out is not None:
            self._out(line)

    def _line(self, record: logging.LogRecord) -> str | None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or meta.get("job_name") or "run"
        partition = (meta.get("job_tags") or {}).get("dagster/partition")
        where = f"{step}[{partition}]" if partition else step
        event = meta.get("dagster_event")
        if event is None:
            if record.levelno < logging.INFO:
                return None
            message = str(meta.get("orig_message", record.getMessage()))
            if _NOT_EXECUTING.match(message):  # the engine skipping a step after a failure
                return None if step.endswith("_expectations") else f"- {where}: not run"
            rate = self._rate(step, message)
            if rate is None:
                return None  # a training step between two progress lines
            if message.startswith(f"{step}:"):  # the stage named itself already
                return f"  {message}{rate}"
            return f"  {where}: {message}{rate}"
        kind = event.event_type_value
        data = event.event_specific_data
        if kind == "ASSET_MATERIALIZATION":
            mat = data.materialization
            count = mat.metadata.get("dagster/row_count")
            if count is not None:
                name = mat.asset_key.to_user_string()
                self._rows.setdefault(step, []).append(f"{name} {count.value:,} rows")
            return None
        if kind == "STEP_SUCCESS":
            rows = "; ".join(self._rows.pop(step, [])) or "done"
            return f"✓ {where}: {rows} ({data.duration_ms / 1000:.1f} s)"
        if kind == "STEP_FAILURE":
            error = data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                return f"✗ {where}: audit failed, the new version was not published"
            user = data.user_failure_data
            text = (user.description if user and user.description else None) or (
                error.message if error else "failed"
            )
            return f"✗ {where}: FAILED: {text.strip().splitlines()[0][:300]}"
        if kind == "STEP_SKIPPED":
            return f"- {where}: skipped (an input did not pass its checks)"
        return None

    def _rate(self, step: str, message: str) -> str | None:
        """For training progress lines (``step N/M ...``): steps per second and time left,
        one line per tenth of the training (None for the lines in between)."""
        match = _TRAIN_STEP.match(message)
        if not match:
            return ""
        done, total = int(match.group(1)), int(match.group(2))
        now = time.monotonic()
        first = self._steps.setdefault(step, (now, done))
        tenth = 10 * done // max(total, 1)
        if step in self._shown and tenth <= self._shown[step] and done < total:
            return None
        self._shown[step] = tenth
        elapsed, progressed = now - first[0], done - first[1]
        if elapsed <= 0 or progressed <= 0:
            return ""
        rate = progressed / elapsed
        return f" ({rate:.1f} steps/s, about {max(total - done, 0) / rate:.0f} s left)"


def _progress_logger(emit: Emit | None) -> dg.LoggerDefinition:
    @dg.logger(description="one line per finished stage, and the stages' INFO messages")
    def progress(init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger(f"curation.progress.{id(init_context)}", level=logging.DEBUG)
        logger.addHandler(_ProgressHandler(emit))
        return logger

    return progress
