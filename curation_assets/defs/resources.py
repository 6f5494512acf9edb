"""Resources: the settings, the DuckDB warehouse, the decision store, the suspect encoder
and the training client, all built from one ``Settings`` (so the UI's Resources page shows
where each is). A value that came from the environment is bound as ``dg.EnvVar``, so the
page names the variable instead of baking its value into the definitions."""

import os
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curation_assets.config import Settings
from curation_assets.curation import overrides
from curation_assets.curation.review import decisions
from curation_assets.curation.training.launch import TrainingLaunch, k8s_run_kwargs

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


#: Where distilled encoders are cached (``suspects.embeddings.default_cache_dir`` reads it).
CACHE_VARIABLE = "CURATION_CACHE_DIR"


class EncoderResource(dg.ConfigurableResource):
    """The sentence encoder the review queue's suspect model embeds examples with."""

    model: str = Field(
        default="auto",
        description=(
            "auto (static embeddings distilled from the packaged MiniLM), minilm, none "
            "(TF-IDF only), static:PATH, or a transformers encoder path or hub id "
            "(CURATION_SUSPECT_ENCODER)."
        ),
    )
    cache_dir: str | None = Field(
        default=None,
        description="Where distilled encoders are cached (CURATION_CACHE_DIR; default: the "
        "user cache).",
    )

    @property
    def cache_path(self) -> Path | None:
        return Path(self.cache_dir) if self.cache_dir else None


#: Fields of ``TrainingClientResource`` that are ``k8s_run_kwargs`` parameters of the same name.
_POD_FIELDS = (
    "image",
    "volume_claim",
    "mount_path",
    "namespace",
    "extra_env",
    "gpus",
    "cpu",
    "memory",
)


class TrainingClientResource(dg.ConfigurableResource):
    """Where the Pipes training script runs: a subprocess here (``local``) or a GPU pod
    (``k8s``, needs ``dagster-k8s``; docs/remote_training.md)."""

    target: Literal["local", "k8s"] = Field(
        default="local", description="local (subprocess) or k8s (a pod per training run)."
    )
    image: str = Field(default="", description="k8s: image with this package and torch.")
    volume_claim: str = Field(
        default="", description="k8s: ReadWriteMany claim holding the data folder."
    )
    mount_path: str = Field(default="", description="k8s: the data folder's path in the pod.")
    namespace: str | None = Field(default=None, description="k8s: namespace of the pod.")
    gpus: int = Field(default=1, description="k8s: GPUs the pod asks for.")
    cpu: str = Field(default="8", description="k8s: CPU limit (and request) of the pod.")
    memory: str = Field(default="64Gi", description="k8s: memory limit of the pod.")
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="k8s: node labels, e.g. the GPU product."
    )
    extra_env: dict[str, str] = Field(
        default_factory=dict, description="k8s: more environment for the script (HF_HOME...)."
    )

    @property
    def local(self) -> bool:
        return self.target == "local"

    def pipes_client(self) -> dg.PipesClient:
        """The Pipes client of ``target``."""
        if self.local:
            return dg.PipesSubprocessClient()
        try:
            from dagster_k8s import PipesK8sClient
        except ImportError as exc:
            raise dg.DagsterInvariantViolationError(
                "training_client target k8s needs dagster-k8s (pip install dagster-k8s)"
            ) from exc
        missing = [f for f in ("image", "volume_claim", "mount_path") if not getattr(self, f)]
        if missing:
            raise dg.DagsterInvariantViolationError(
                f"training_client target k8s needs {', '.join(missing)}"
            )
        return PipesK8sClient()

    def run_kwargs(self, launch: TrainingLaunch) -> dict[str, Any]:
        """The keyword arguments (besides ``context``) of the client's ``run``."""
        if self.local:
            return {"command": launch.command, "extras": launch.extras, "env": launch.env}
        pod = {name: getattr(self, name) for name in _POD_FIELDS}
        return k8s_run_kwargs(launch, node_selector=self.node_selector or None, **pod)

    def run(self, context: dg.AssetExecutionContext, launch: TrainingLaunch):
        """Launch the training script and wait for it (a Pipes invocation)."""
        return self.pipes_client().run(context=context, **self.run_kwargs(launch))


def from_env(variable: str, value: object) -> Any:
    """``dg.EnvVar(variable)`` where the environment holds exactly ``value`` (so the UI shows
    where it came from), else ``value`` as text (a default, or set in code)."""
    text = str(value)
    return dg.EnvVar(variable) if os.environ.get(variable) == text else text


def build_resources(settings: Settings | None = None) -> dict[str, object]:
    """Resources for a deployment: everything derives from one ``Settings``."""
    settings = settings or Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "settings": settings,
        "duckdb": DuckDBResource(database=from_env("CURATION_WAREHOUSE_PATH", settings.warehouse)),
        "decision_store": DecisionStoreResource(
            path=from_env("CURATION_DECISION_STORE_PATH", settings.decision_store)
        ),
        "encoder": EncoderResource(
            model=from_env("CURATION_SUSPECT_ENCODER", settings.suspect_encoder),
            # unset: None, so the run process resolves the user cache (not the code server's)
            cache_dir=dg.EnvVar(CACHE_VARIABLE) if os.environ.get(CACHE_VARIABLE) else None,
        ),
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
    return {**build_resources(settings), "training_client": TrainingClientResource()}
