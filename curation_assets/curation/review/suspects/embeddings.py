"""Sentence embeddings for the suspect model: the encoder chosen by setting (static or
transformer) and the embedding cache in the warehouse."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from curation_assets.curation.review.suspects.scoring import EMBEDDINGS_TABLE, Encoder
from curation_assets.curation.review.tables import EXAMPLE_EMBEDDINGS

# --- sentence embeddings ---------------------------------------------------------------


class SentenceEncoder:
    """L2-normalized sentence embeddings from sentence-transformers' ``SentenceTransformer``.

    A sentence-transformers folder or hub id (the packaged all-MiniLM-L6-v2 is one) is
    loaded with its own modules (MiniLM: mean pooling, then normalization); a plain
    transformers folder (no ``modules.json``, e.g. the tests' tiny models) is mean-pooled
    over its tokens. Inputs are cut at ``max_length`` tokens. Loaded lazily on first use
    (torch and sentence-transformers import only then); batched, on the CPU.
    """

    def __init__(self, model: str, batch_size: int = 64, max_length: int = 128) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.max_length = max_length
        self._model = None

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        folder = Path(self.model_name)
        if folder.is_dir() and not (folder / "modules.json").is_file():
            from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

            word = Transformer(self.model_name, max_seq_length=self.max_length)
            pool = Pooling(word.get_embedding_dimension(), "mean")
            model = SentenceTransformer(modules=[word, pool], device="cpu")
        else:
            model = SentenceTransformer(self.model_name, device="cpu")
        model.max_seq_length = self.max_length
        return model

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if self._model is None:
            self._model = self._load()
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


@dataclass(frozen=True)
class EncoderChoice:
    """A configured embedding model: its cache ``key`` and whether its vectors are cached."""

    key: str
    encode: Encoder
    cached: bool  # transformer encoders: vectors stored in ``example_embeddings``


def default_cache_dir() -> Path:
    """Where distilled static models live: ``CURATION_CACHE_DIR``, else the user cache."""
    import os

    if os.environ.get("CURATION_CACHE_DIR"):
        return Path(os.environ["CURATION_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "curation_assets"


def encoder_for(setting: str, cache_dir: Path | None = None) -> EncoderChoice | None:
    """The embedding model for ``Settings.suspect_encoder``; None for TF-IDF only.

    ``auto``: static embeddings distilled (once, about a minute, cached under
    ``cache_dir``) from the packaged all-MiniLM-L6-v2, TF-IDF only where that package is
    absent (nothing is downloaded); ``minilm``: the packaged MiniLM itself (about 90 texts
    per CPU-second); ``none``/``tfidf``: TF-IDF only; ``static:PATH``: a model2vec folder;
    anything else: a local path or hub id of a transformers encoder.
    """
    from curation_assets.curation.base_models import DEFAULT_HUB_MODEL, resolve_base_model
    from curation_assets.curation.review import static_embeddings

    value = setting.strip()
    lowered = value.lower()
    if lowered in ("", "none", "tfidf"):
        return None
    if lowered in ("auto", "minilm"):
        path = resolve_base_model("auto")
        if path == DEFAULT_HUB_MODEL:
            return None
        if lowered == "minilm":
            return EncoderChoice("all-MiniLM-L6-v2", SentenceEncoder(path), cached=True)
        folder = static_embeddings.distilled(
            path, cache_dir or default_cache_dir(), name="all-MiniLM-L6-v2"
        )
        return EncoderChoice(folder.name, static_embeddings.StaticEncoder(folder), cached=False)
    if lowered.startswith("static:"):
        folder = Path(value.split(":", 1)[1])
        return EncoderChoice(
            f"static:{folder.name}", static_embeddings.StaticEncoder(folder), cached=False
        )
    return EncoderChoice(value, SentenceEncoder(value), cached=True)


def cached_embeddings(
    con: duckdb.DuckDBPyConnection,
    example_ids: Sequence[str],
    texts: Sequence[str],
    model_key: str,
    encoder: Encoder,
    batch: int = 2048,
) -> tuple[np.ndarray, int]:
    """Embeddings of ``texts`` (rows in input order) and how many were newly computed.

    Looks each ``example_id`` up in ``example_embeddings`` for ``model_key``; embeds the
    missing ones in batches and stores them.
    """
    EXAMPLE_EMBEDDINGS.create(con)
    wanted = pa.table({"example_id": pa.array(list(example_ids), pa.string())})
    con.register("_embed_wanted", wanted)
    missing = [
        r[0]
        for r in con.execute(
            f"SELECT w.example_id FROM _embed_wanted w WHERE NOT EXISTS (SELECT 1 FROM "
            f"{EMBEDDINGS_TABLE} e WHERE e.example_id = w.example_id AND e.model = ?)",
            [model_key],
        ).fetchall()
    ]
    text_of = dict(zip(example_ids, texts, strict=True))
    for start in range(0, len(missing), batch):
        ids = missing[start : start + batch]
        vectors = np.asarray(encoder([text_of[i] or "" for i in ids]), dtype=np.float32)
        table = pa.table(
            {
                "example_id": pa.array(ids, pa.string()),
                "embedding": pa.array(list(vectors), pa.list_(pa.float32())),
            }
        )
        con.register("_embed_new", table)
        con.execute(
            f"INSERT OR IGNORE INTO {EMBEDDINGS_TABLE} SELECT example_id, ?, embedding "
            "FROM _embed_new",
            [model_key],
        )
        con.unregister("_embed_new")
    stored = con.execute(
        f"SELECT w.example_id, e.embedding FROM _embed_wanted w JOIN {EMBEDDINGS_TABLE} e "
        "ON e.example_id = w.example_id AND e.model = ?",
        [model_key],
    ).df()
    con.unregister("_embed_wanted")
    if stored.empty:
        return np.zeros((0, 0), dtype=np.float32), len(missing)
    lookup = dict(zip(stored["example_id"], stored["embedding"], strict=True))
    vectors = np.stack([np.asarray(lookup[i], dtype=np.float32) for i in example_ids])
    return vectors, len(missing)
