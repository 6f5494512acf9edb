"""The optional push of an exported version to a Hugging Face dataset repository.

Nothing is pushed unless a repository id and a token are given and the Hub is not switched
off (``HF_HUB_OFFLINE``); the reason is then returned instead. A push is
``DatasetDict.push_to_hub`` (the Parquet files, in the same ``data/`` layout as the local
folder) followed by an upload of the dataset card, which replaces the card
``push_to_hub`` writes. Each repository's last pushed version (and card) is recorded beside
the versions (``pushed.json``), so the same version is pushed once (again after its card
changed).
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

#: The variables a deployment configures the push with.
REPO_VARIABLE = "CURATION_HF_DATASET_REPO"
TOKEN_VARIABLE = "HF_TOKEN"
_RECORD = "pushed.json"
_TRUE = {"1", "on", "yes", "true"}


@dataclass(frozen=True)
class Push:
    """What happened to the push: done, or why not."""

    pushed: bool
    message: str
    url: str | None = None


def hub_offline() -> bool:
    """True when the Hub is switched off (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)."""
    import huggingface_hub

    variables = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    return huggingface_hub.is_offline_mode() or any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in variables
    )


def token_from_environment() -> str | None:
    """``HF_TOKEN``, else the token of ``hf auth login``, else None."""
    import huggingface_hub

    return os.environ.get(TOKEN_VARIABLE) or huggingface_hub.get_token()


def push(
    folder: Path, version: str, repo_id: str | None, token: str | None, *, private: bool = True
) -> Push:
    """Push the audited version ``folder`` (its ``save_to_disk`` dataset, then its card) to
    ``repo_id``, unless something needed is missing, the Hub is off, or it is there."""
    if not repo_id:
        return Push(False, f"not pushed: no Hub repository configured ({REPO_VARIABLE})")
    if not token:
        return Push(False, f"not pushed to {repo_id}: no Hugging Face token ({TOKEN_VARIABLE})")
    if hub_offline():
        return Push(False, f"not pushed to {repo_id}: the Hub is switched off (HF_HUB_OFFLINE)")
    url = f"https://huggingface.co/datasets/{repo_id}"
    record = folder.parent / _RECORD
    pushed = _read_record(record)
    card = folder / "README.md"
    state = f"{version} card {hashlib.sha256(card.read_bytes()).hexdigest()[:16]}"
    if pushed.get(repo_id) == state:
        return Push(False, f"not pushed: {repo_id} has version {version[:12]} already", url)
    import datasets
    from huggingface_hub import HfApi

    message = f"verified data version {version}"
    dataset = datasets.load_from_disk(str(folder))
    dataset.push_to_hub(repo_id, token=token, private=private, commit_message=message)
    HfApi(token=token).upload_file(
        path_or_fileobj=str(card),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=f"dataset card of {message}",
    )
    pushed[repo_id] = state
    temporary = record.with_name(f".{_RECORD}.tmp")
    temporary.write_text(json.dumps(pushed, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, record)
    return Push(True, f"pushed version {version[:12]} to {url}", url)


def _read_record(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
