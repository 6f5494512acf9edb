"""The compact console log of a command-line run: one line per finished stage (rows,
seconds), the stages' own INFO messages and the training's rate; or, with ``verbose``,
Dagster's own console log at DEBUG.
"""

import logging
import re
import time
from collections.abc import Callable
from typing import Any

import dagster as dg

from curation_assets.runs.summary import failure_message, is_audit_failure

Emit = Callable[[str], None]

_TRAIN_STEP = re.compile(r"^step (\d+)/(\d+)\b")
_NOT_EXECUTING = re.compile(r"^Dependencies for step \S+ .*Not executing\.$")


def run_config(verbose: bool) -> dict[str, Any]:
    """The run config selecting the logger ``with_logging`` set up."""
    if verbose:
        return {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    return {"loggers": {"progress": {"config": {}}}}


def with_logging(job: dg.JobDefinition, verbose: bool, emit: Emit | None) -> dg.JobDefinition:
    """The job with Dagster's console log (``verbose``) or the compact progress log."""
    if verbose:
        return job
    return job.with_logger_defs({"progress": progress_logger(emit)})


class ProgressHandler(logging.Handler):
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
            if is_audit_failure(data.error):
                return f"✗ {where}: audit failed, the new version was not published"
            text = failure_message(data, "failed")
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


def progress_logger(emit: Emit | None) -> dg.LoggerDefinition:
    """A Dagster logger that sends a run's records through a ``ProgressHandler``."""

    @dg.logger(description="one line per finished stage, and the stages' INFO messages")
    def progress(init_context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger(f"curation.progress.{id(init_context)}", level=logging.DEBUG)
        logger.addHandler(ProgressHandler(emit))
        return logger

    return progress
