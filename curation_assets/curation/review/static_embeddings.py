"""Static sentence embeddings distilled from a transformers encoder (model2vec format).

The suspect queue needs an embedding of every filtered example. A transformer encoder
(all-MiniLM-L6-v2) reads about 90 texts per CPU-second: 3 CPU-hours at 1M rows. A static
model is a lookup table of one vector per token, averaged over a text's tokens: thousands
of texts per CPU-second, for a small loss in quality (Model2Vec, Tulkens & van Dongen 2024).

``distill`` builds such a table from any local encoder the way Model2Vec does: each
vocabulary token goes through the encoder on its own (``[CLS] token [SEP]``, mean-pooled),
PCA reduces the vectors, and SIF weights (from a Zipf estimate of token frequency by vocab
rank) damp frequent tokens. It is written here because model2vec's own ``distill`` extra
pins ``transformers<5.4`` (this project runs 5.x); the result is saved in model2vec's
format and encoded with model2vec's ``StaticModel`` (its tokenizer and pooling). No Dagster.
"""

import json
import re
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1  # bump when distill() changes what it produces
_UNUSED = re.compile(r"^\[unused\d+\]$")


def distill(
    encoder_path: str | Path,
    out_dir: Path,
    pca_dims: int = 256,
    sif_coefficient: float = 1e-4,
    batch_size: int = 1024,
) -> Path:
    """Distill ``encoder_path`` into a model2vec folder ``out_dir``; returns ``out_dir``."""
    import torch
    from model2vec import StaticModel
    from sklearn.decomposition import PCA
    from tokenizers import Tokenizer
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(encoder_path))
    model = AutoModel.from_pretrained(str(encoder_path)).eval()
    vocab = tokenizer.get_vocab()
    ids = np.array(sorted(vocab.values()))
    tokens = {i: t for t, i in vocab.items()}
    keep = np.array([not _UNUSED.match(tokens[i]) for i in ids])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    vectors = np.zeros((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            chunk = torch.as_tensor(ids[start : start + batch_size]).unsqueeze(1)
            parts = [chunk]
            if cls is not None:
                parts.insert(0, torch.full_like(chunk, cls))
            if sep is not None:
                parts.append(torch.full_like(chunk, sep))
            hidden = model(input_ids=torch.cat(parts, dim=1)).last_hidden_state
            vectors[start : start + len(chunk)] = hidden.mean(dim=1).numpy()
    dims = min(pca_dims, vectors.shape[1], int(keep.sum()))
    reduced = np.zeros((len(ids), dims), dtype=np.float32)
    reduced[keep] = PCA(n_components=dims, random_state=0).fit_transform(vectors[keep])
    rank = np.arange(1, len(ids) + 1, dtype=np.float64)
    probability = (1.0 / rank) / (1.0 / rank).sum()  # Zipf by vocabulary rank
    reduced *= (sif_coefficient / (sif_coefficient + probability))[:, None].astype(np.float32)
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    static = StaticModel(
        vectors=reduced,
        tokenizer=backend,
        normalize=True,
        base_model_name=str(encoder_path),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    static.save_pretrained(str(out_dir))
    (out_dir / "distilled_by_curation_assets.json").write_text(
        json.dumps({"source": str(encoder_path), "pca_dims": dims, "format": FORMAT_VERSION})
    )
    return out_dir


class StaticEncoder:
    """Callable ``texts -> float32 [n, dims]`` (L2-normalized) over a model2vec folder."""

    def __init__(self, path: str | Path, max_length: int = 256) -> None:
        self.path = str(path)
        self.max_length = max_length
        self._model = None

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from model2vec import StaticModel

            self._model = StaticModel.from_pretrained(self.path, normalize=True)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self._model.encode(
            [t or "" for t in texts], max_length=self.max_length, use_multiprocessing=False
        )
        return np.asarray(vectors, dtype=np.float32)


def distilled(
    encoder_path: str | Path, cache_dir: Path, name: str = "", pca_dims: int = 256
) -> Path:
    """The model2vec folder for ``encoder_path`` under ``cache_dir``, distilled once."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or Path(str(encoder_path)).name or "encoder")
    out = cache_dir / f"{name}-static{pca_dims}-v{FORMAT_VERSION}"
    if not (out / "distilled_by_curation_assets.json").is_file():
        tmp = out.with_name(out.name + ".partial")
        distill(encoder_path, tmp, pca_dims=pca_dims)
        if out.exists():  # a concurrent distillation finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(out)
    return out
