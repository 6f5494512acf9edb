"""Crash recovery: fail runs whose process is provably dead and free their pool slots.

A run killed with SIGKILL (OOM killer, ``kill -9``, a reboot) never writes its failure:
it stays STARTED in the instance and keeps its slot of the ``duckdb`` pool, so every
later run waits forever ("Step blocked by limit for pool duckdb"). Dagster's run
monitoring does not catch it with the ``DefaultRunLauncher`` (1.13: the launcher does not
support ``check_run_worker_health``, so the daemon only checks start/cancel timeouts),
and an in-process run (``curation run``) has no launcher at all.

A run is dead only when that is provable on this host:

* runs started by :func:`curation_assets.runs.pipeline.run_everything` carry
  :func:`worker_tags`: host name, pid and that process's start time. Dead: this host, and
  the pid is gone, a zombie, or now belongs to a process started at another time (reuse);
* runs launched by the webserver or daemon (``DefaultRunLauncher``): the run worker logs
  an engine event "Started process for run (pid: N)" with ``pid`` in its metadata. Dead:
  the code server is local (its gRPC address is a socket or a loopback/own host name) and
  the pid is gone, a zombie, or started after that event (reuse), or the host rebooted
  since.

Anything else (another host, no pid recorded yet) is reported as "cannot tell" and left
alone. A dead STARTED/STARTING/NOT_STARTED run is marked FAILURE, a dead CANCELING run
CANCELED; then its concurrency slots (claimed and pending) are freed. Slots still held by
runs that already finished (e.g. failed by the code server, which does not free them) are
freed too.

Called by ``curation run``/``demo``/``review`` on start and by the ``crash_recovery``
sensor every minute where the daemon runs.
"""

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass

import dagster as dg
import psutil

#: The tag Dagster puts on launched runs with their code server's address (the same
#: value as Dagster's internal ``GRPC_INFO_TAG``; this layer uses public APIs only).
GRPC_INFO_TAG = ".dagster/grpc_info"
HOST_TAG = "curation/worker_host"
PID_TAG = "curation/worker_pid"
STARTED_TAG = "curation/worker_started"  # the process's start time (epoch seconds)

#: Prefix of the failure message (tests and users grep for it).
MESSAGE_PREFIX = "Crash recovery:"

#: Statuses in which a run has (or is about to have) a live worker.
_WATCHED = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
_FINISHED = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}
#: Slack when comparing process start times (psutil's are exact to ~10 ms on Linux).
_CLOCK_SLACK_S = 1.0


@dataclass(frozen=True)
class Outcome:
    run_id: str
    job_name: str
    status: str  # the run's status when it was checked
    verdict: str  # "recovered", "cannot tell" or "freed slots"
    reason: str

    def line(self) -> str:
        return (
            f"{self.verdict}: run {self.run_id[:8]} ({self.job_name}, {self.status}): {self.reason}"
        )


def _process_start(pid: int) -> float:
    return psutil.Process(pid).create_time()


def worker_tags() -> dict[str, str]:
    """Tags naming the current process as a run's worker (for in-process runs)."""
    pid = os.getpid()
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(pid),
        STARTED_TAG: f"{_process_start(pid):.3f}",
    }


def _this_host(name: str) -> bool:
    return name in _LOCAL_NAMES or name in {socket.gethostname(), socket.getfqdn()}


def _pid_state(pid: int) -> tuple[psutil.Process | None, str]:
    """(process, "") when the pid runs a live process, else (None, why it is not)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None, "has exited (a zombie)"
        return proc, ""
    except psutil.NoSuchProcess:
        return None, "no longer exists"


def _pid_verdict(pid: int, who: str, reused) -> tuple[bool | None, str]:
    """Dead (True) when ``pid`` is gone, a zombie, or ``reused(start_time)`` says the pid
    now belongs to another process; alive (False); None when it cannot be read."""
    proc, why = _pid_state(pid)
    if proc is None:
        return True, f"{who} {why}"
    try:
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return True, f"{who} no longer exists"
    except psutil.Error as exc:
        return None, f"cannot read pid {pid}: {exc}"
    if reused(started):
        return True, f"{who} no longer exists (the pid now belongs to another process)"
    return False, f"pid {pid} is alive"


def _judge_tagged(tags) -> tuple[bool | None, str]:
    host, pid, started = tags[HOST_TAG], tags.get(PID_TAG), tags.get(STARTED_TAG)
    if not _this_host(host):
        return None, f"its worker runs on host {host!r}, not here"
    try:
        pid_n, started_at = int(pid), float(started)
    except (TypeError, ValueError):
        return None, f"unreadable worker tags {PID_TAG}={pid!r} {STARTED_TAG}={started!r}"
    return _pid_verdict(
        pid_n,
        f"its process (pid {pid_n} on {host})",
        lambda now_started: abs(now_started - started_at) > _CLOCK_SLACK_S,
    )


def _engine_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, event time) of the latest "Started process for run" engine event."""
    entries = instance.event_log_storage.get_logs_for_run(
        run_id, of_type={dg.DagsterEventType.ENGINE_EVENT}
    )
    for entry in reversed(list(entries)):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None and "Started process" in (entry.user_message or event.message or ""):
            with contextlib.suppress(TypeError, ValueError):
                return int(pid.value), entry.timestamp
    return None


def _judge_launched(instance, run) -> tuple[bool | None, str]:
    found = _engine_pid(instance, run.run_id)
    if found is None:
        return None, "no worker pid recorded (not started yet, or run elsewhere)"
    pid, since = found
    grpc = run.tags.get(GRPC_INFO_TAG)
    if grpc is None:
        return None, f"pid {pid} recorded but not the host of its code server"
    try:
        info = json.loads(grpc)
    except ValueError:
        return None, f"unreadable {GRPC_INFO_TAG} tag"
    host = str(info.get("host") or "")
    if not info.get("socket") and not _this_host(host):
        return None, f"its worker runs on host {host!r}, not here"
    if psutil.boot_time() > since + _CLOCK_SLACK_S:
        return True, f"its run worker (pid {pid}) no longer exists (this host rebooted since)"
    return _pid_verdict(
        pid, f"its run worker (pid {pid})", lambda started: started > since + _CLOCK_SLACK_S
    )


def judge(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[bool | None, str]:
    """(True: dead, False: alive, None: cannot tell, reason)."""
    if HOST_TAG in run.tags:
        return _judge_tagged(run.tags)
    return _judge_launched(instance, run)


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> None:
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def _slot_holders(instance: dg.DagsterInstance) -> set[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return set()
    holders = set(storage.get_concurrency_run_ids())
    keys = storage.get_concurrency_keys()
    if keys:
        for info in storage.get_concurrency_infos(keys).values():
            holders |= {slot.run_id for slot in info.claimed_slots}
    return holders


def recover_dead_runs(instance: dg.DagsterInstance) -> list[Outcome]:
    """Fail runs whose worker is provably dead and free their slots; report the rest.

    Returns one :class:`Outcome` per run that was recovered, could not be judged, or
    (already finished) still held pool slots. Live runs are not listed.
    """
    outcomes: list[Outcome] = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=list(_WATCHED))):
        run = record.dagster_run
        dead, reason = judge(instance, run)
        status = run.status.value
        if dead is None:
            outcomes.append(Outcome(run.run_id, run.job_name, status, "cannot tell", reason))
            continue
        if not dead:
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status != run.status:  # it moved on meanwhile
            continue
        marked = "canceled" if run.status == dg.DagsterRunStatus.CANCELING else "failed"
        message = (
            f"{MESSAGE_PREFIX} the run died without finishing: {reason}; it was killed "
            f"(SIGKILL, the OOM killer or a reboot). Marked {marked} and its pool slots "
            "released; materialize its assets again (or rerun `curation run`)."
        )
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        _free_slots(instance, run.run_id)
        outcomes.append(Outcome(run.run_id, run.job_name, status, "recovered", reason))
    holders = _slot_holders(instance)
    if holders:
        for record in instance.get_run_records(
            filters=dg.RunsFilter(run_ids=sorted(holders), statuses=list(_FINISHED))
        ):
            run = record.dagster_run
            _free_slots(instance, run.run_id)
            outcomes.append(
                Outcome(
                    run.run_id,
                    run.job_name,
                    run.status.value,
                    "freed slots",
                    "the run had finished but still held pool slots",
                )
            )
    return outcomes


def recover_on_start(instance: dg.DagsterInstance | None = None, echo=print) -> list[Outcome]:
    """For entry points without a daemon: recover, print one line per outcome.

    Never raises: a broken instance must not stop the review app or a run from starting.
    """
    started = time.perf_counter()
    try:
        instance = instance or dg.DagsterInstance.get()
        outcomes = recover_dead_runs(instance)
    except Exception as exc:  # noqa: BLE001 (reported, never fatal)
        echo(f"crash recovery skipped: {type(exc).__name__}: {exc}")
        return []
    for outcome in outcomes:
        echo(f"crash recovery: {outcome.line()}")
    if outcomes:
        echo(f"crash recovery took {time.perf_counter() - started:.2f} s")
    return outcomes
