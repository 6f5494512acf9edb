"""Resources: the settings object and the DuckDB warehouse, built from ``Settings``."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from curation_assets.config import Settings

#: Concurrency pools (limits in dagster.yaml): one DuckDB writer, one GPU job at a time.
DUCKDB_POOL = "duckdb"
GPU_POOL = "gpu"


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """Resources for a deployment: everything derives from one ``Settings``."""
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "settings": settings,
        "duckdb": DuckDBResource(database=str(settings.warehouse)),
    }


SettingsParam = dg.ResourceParam[Settings]


@dg.definitions
def location_resources() -> dg.Definitions:
    """The resources and the executor of the code location, from the environment's
    settings (``curation_assets.definitions.build_definitions`` swaps in others)."""
    return dg.Definitions(
        resources=resources_for(Settings.from_env()),
        # One process per run, not per step: a re-import per step costs ~20 s each here.
        executor=dg.in_process_executor,
    )


def resources_for(settings: Settings) -> dict[str, object]:
    """Every resource the assets use, for ``settings``."""
    return {**build_resources(settings), "training_client": dg.PipesSubprocessClient()}
