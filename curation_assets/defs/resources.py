"""Resources: the settings, the DuckDB warehouse, the decision store and the training
client, all built from one ``Settings`` (so the UI's Resources page shows where each is)."""

from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curation_assets.config import Settings
from curation_assets.curation import overrides
from curation_assets.curation.review import decisions

#: Concurrency pools (limits in dagster.yaml): one DuckDB writer, one GPU job at a time.
DUCKDB_POOL = "duckdb"
GPU_POOL = "gpu"


class DecisionStoreResource(dg.ConfigurableResource):
    """The decision store: the append-only SQLite file reviewers write and the pipeline reads
    (decisions, the published review queue, batch overrides)."""

    path: str = Field(
        description="SQLite file of the decision store (CURATION_DECISION_STORE_PATH)."
    )

    @property
    def file(self) -> Path:
        return Path(self.path)

    def load_all(self) -> pd.DataFrame:
        """Every decision recorded, oldest first."""
        return decisions.load_all(self.file)

    def publish_queue(self, items: pd.DataFrame) -> int:
        """Replace the review app's queue with ``items`` (atomically)."""
        return decisions.publish_queue(self.file, items)

    def high_water_mark(self) -> tuple[int, str | None]:
        """(decisions, newest recorded_at): the store's version."""
        return decisions.high_water_mark(self.file)

    def audit_trail(self, previous: tuple[int, str] | None = None) -> decisions.AuditTrail:
        """The integrity audit's view of the store, compared with ``previous``."""
        return decisions.audit_trail(self.file, previous)

    def batch_overrides(self) -> list[dict]:
        """Batches an admin accepted on purpose (``curation batches accept``)."""
        return overrides.load(self.file)

    def metadata(self) -> dg.MetadataValue:
        return dg.MetadataValue.path(self.path)


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """Resources for a deployment: everything derives from one ``Settings``."""
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "settings": settings,
        "duckdb": DuckDBResource(database=str(settings.warehouse)),
        "decision_store": DecisionStoreResource(path=str(settings.decision_store)),
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
