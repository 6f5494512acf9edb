"""The project's sensor policy in one place: every sensor is on from the code location's
first start (automation works without a click in the UI) and says what it watches."""

from collections.abc import Callable

import dagster as dg


def running_sensor(name: str, every_seconds: int, description: str, **kwargs: object) -> Callable:
    """``@dg.sensor`` named ``name``, evaluated every ``every_seconds``, running by default."""
    return dg.sensor(
        name=name,
        minimum_interval_seconds=every_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
        **kwargs,
    )
