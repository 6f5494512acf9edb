"""The crash-recovery sensor: fails runs whose process is provably gone and frees their
pool slots (the logic: ``curation_assets.runs.recovery``)."""

import dagster as dg

from curation_assets.defs.shared.sensors import running_sensor
from curation_assets.runs.recovery import recover_dead_runs


@running_sensor(
    name="crash_recovery",
    every_seconds=60,
    description=(
        "Every minute: marks runs whose process was killed (SIGKILL, OOM, reboot) as failed "
        "and frees their pool slots, which Dagster's run monitoring does not do with the "
        "default run launcher (running by default)."
    ),
)
def crash_recovery_sensor(context: dg.SensorEvaluationContext):
    outcomes = recover_dead_runs(context.instance)
    for outcome in outcomes:
        context.log.info(outcome.line())
    recovered = [o for o in outcomes if o.verdict != "cannot tell"]
    if not outcomes:
        return dg.SkipReason("no dead run")
    return dg.SkipReason(
        f"{len(recovered)} recovered, {len(outcomes) - len(recovered)} cannot tell: "
        + "; ".join(o.line() for o in outcomes)[:1000]
    )
