"""What a Dagster Pipes client needs to launch the training script, locally or on a pod.

``training_launch`` builds the command, extras and environment once; the asset hands them
to whichever Pipes client is configured: ``PipesSubprocessClient`` (default) runs them on
this machine, and ``k8s_run_kwargs`` turns them into the arguments of
``dagster_k8s.PipesK8sClient.run`` for a GPU pod (docs/remote_training.md). Plain Python:
nothing here imports Dagster or dagster-k8s.
"""

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation_assets.curation.training.params import TrainParams, normalize_task

#: The script, as a module: the same in a local venv and in a container image.
SCRIPT_MODULE = "curation_assets.curation.training.pipes_train"


@dataclass(frozen=True)
class TrainingLaunch:
    """Command, Pipes extras and environment of one training run."""

    command: list[str]
    extras: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


def training_launch(
    task_type: str,
    train_path: str | Path,
    validation_path: str | Path | None,
    output_dir: str | Path,
    base_model: str,
    params: TrainParams | Mapping[str, Any],
    python: str = sys.executable,
    report_convergence_check: bool = False,
) -> TrainingLaunch:
    """The launch of ``pipes_train`` for one model; ``params`` is validated here, not later."""
    checked = params if isinstance(params, TrainParams) else TrainParams.from_dict(params)
    extras: dict[str, Any] = {
        "task_type": normalize_task(task_type),
        "train_path": str(train_path),
        "validation_path": str(validation_path) if validation_path else None,
        "output_dir": str(output_dir),
        "base_model": base_model,
        "params": dict(vars(checked)),
    }
    if report_convergence_check:
        extras["report_convergence_check"] = True
    env = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return TrainingLaunch([python, "-m", SCRIPT_MODULE], extras, env)


def k8s_pod_spec(
    volume_claim: str,
    mount_path: str | Path,
    gpus: int = 1,
    cpu: str = "8",
    memory: str = "64Gi",
    node_selector: Mapping[str, str] | None = None,
    shm_size: str = "16Gi",
) -> dict[str, Any]:
    """``base_pod_spec`` for ``PipesK8sClient.run``: GPUs, a shared volume, a larger /dev/shm.

    The volume (a ReadWriteMany PersistentVolumeClaim) is mounted at ``mount_path``, the
    same path as the data folder of the Dagster deployment, so the split files and the model
    folder keep their paths in the pod.
    """
    limits = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": str(gpus)}
    spec: dict[str, Any] = {
        "restart_policy": "Never",
        "containers": [
            {
                "resources": {"limits": limits, "requests": dict(limits)},
                "volume_mounts": [
                    {"name": "curation-data", "mount_path": str(mount_path)},
                    {"name": "dshm", "mount_path": "/dev/shm"},
                ],
            }
        ],
        "volumes": [
            {"name": "curation-data", "persistent_volume_claim": {"claim_name": volume_claim}},
            {"name": "dshm", "empty_dir": {"medium": "Memory", "size_limit": shm_size}},
        ],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    if node_selector:
        spec["node_selector"] = dict(node_selector)
    return spec


def k8s_run_kwargs(
    launch: TrainingLaunch,
    image: str,
    volume_claim: str,
    mount_path: str | Path,
    namespace: str | None = None,
    python: str = "python",
    extra_env: Mapping[str, str] | None = None,
    **pod: Any,
) -> dict[str, Any]:
    """Keyword arguments of ``PipesK8sClient.run`` (besides ``context``) for ``launch``.

    The container runs ``python -m curation_assets.curation.training.pipes_train`` from ``image``
    (which must contain this package and the training dependencies; Dagster itself is not
    needed there, only ``dagster-pipes``).
    """
    command: Sequence[str] = [python, *launch.command[1:]]
    kwargs: dict[str, Any] = {
        "image": image,
        "command": list(command),
        "extras": dict(launch.extras),
        "env": {**launch.env, **dict(extra_env or {})},
        "base_pod_spec": k8s_pod_spec(volume_claim, mount_path, **pod),
    }
    if namespace:
        kwargs["namespace"] = namespace
    return kwargs
