"""What a fine-tune leaves beside its weights, for both tasks: ``training_manifest.json``
(what was trained, on which data version, with which parameters and libraries) and
``MODEL_CARD.md``; written by one function, read back by the evaluations.

Each task supplies its own manifest fields and model card text; torch and transformers
are imported inside the functions.
"""

import json
import platform
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST_NAME = "training_manifest.json"
MODEL_CARD_NAME = "MODEL_CARD.md"


def library_versions() -> dict[str, str]:
    """The torch, transformers and Python versions a model was trained with."""
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def write_artifacts(
    output_dir: Path,
    manifest: Mapping[str, Any],
    metrics: Mapping[str, Any],
    device: str,
    model_card: Callable[[Mapping[str, Any]], str],
) -> dict[str, Any]:
    """Write the manifest (``manifest``'s fields, then the metrics, library versions,
    device and creation time) and the model card ``model_card`` makes of it; returns it."""
    full = {
        **manifest,
        "metrics": metrics,
        "versions": library_versions(),
        "device": device,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (output_dir / MANIFEST_NAME).write_text(json.dumps(full, indent=2) + "\n")
    (output_dir / MODEL_CARD_NAME).write_text(model_card(full))
    return full


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of a saved model, or {} when the folder has none."""
    path = model_dir / MANIFEST_NAME
    return json.loads(path.read_text()) if path.is_file() else {}
