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
