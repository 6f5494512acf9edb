"""The code location: everything under ``curation_assets/defs/``, loaded the ``dg`` way.

``build_definitions(settings)`` gives the same definitions bound to other settings (the
command line's runs and the tests use it); ``defs`` is what Dagster loads.
"""

from functools import cache
from pathlib import Path

import dagster as dg

from curation_assets.config import Settings
from curation_assets.defs.automation.nightly import nightly_refresh
from curation_assets.defs.resources import resources_for


@cache
def _from_defs_folder() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    """The defs folder's assets, checks, jobs and sensors, with the resources and the
    nightly schedule of ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    found = _from_defs_folder()
    return dg.Definitions(
        assets=found.assets,
        asset_checks=found.asset_checks,
        jobs=found.jobs,
        sensors=found.sensors,
        schedules=[nightly_refresh(settings)],
        resources=resources_for(settings),
        executor=dg.in_process_executor,  # one process per run: see defs/resources.py
    )


defs = build_definitions()
