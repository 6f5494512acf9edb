"""Suspect scores in the warehouse: fit once, score only new rows, refit when it must."""

import numpy as np
import pandas as pd
import pytest

from curation_assets.curation.records import example_id
from curation_assets.curation.review import review_stage, static_embeddings, suspect_model, suspects
from curation_assets_tests.test_suspects import support_messages
from curation_assets_tests.tiny_models import build_tiny_classifier_base

pytestmark = pytest.mark.integration  # real model training: ./scripts/test --fast skips it


def _load(con, frame: pd.DataFrame) -> None:
    """``filtered`` and ``_annotated`` as the review stage sees them."""
    frame = frame.assign(record_id=frame["example_id"], batch="b1", source="s")
    con.register("_rows", frame[["example_id", "record_id", "batch", "source", "prompt",
                                 "response"]])  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE filtered AS SELECT * FROM _rows")
    con.unregister("_rows")
    review_stage.annotate_filtered(con)


def _scores(con) -> pd.DataFrame:
    return con.sql(
        "SELECT example_id, score, reason, model_id FROM suspect_scores ORDER BY example_id"
    ).df()


CONFIG = suspects.RefreshConfig(labelled=True, encoder="none")


def test_new_rows_are_scored_and_old_scores_stay(con):
    frame = support_messages(60, swap_rate=0.1, seed=3).sample(frac=1.0, random_state=0)
    first, later = frame.iloc[:200], frame.iloc[:220]
    _load(con, first)
    info = suspects.refresh_scores(con, CONFIG)
    assert info["refit"] and info["refit_reason"] == "no model yet"
    assert info["newly_scored"] == 200
    before = _scores(con)
    _load(con, later)  # 10% more rows: below the refit growth, same labels
    info = suspects.refresh_scores(con, CONFIG)
    assert not info["refit"] and info["newly_scored"] == 20
    after = _scores(con)
    assert len(after) == 220
    kept = after[after.example_id.isin(before.example_id)].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)  # same score, reason and model
    assert suspects.refresh_scores(con, CONFIG)["newly_scored"] == 0  # nothing new
    _load(con, frame.iloc[5:220])  # rows leaving filtered lose their score
    info = suspects.refresh_scores(con, CONFIG)
    assert info["scores_removed"] == 5 and len(_scores(con)) == 215


def test_new_rows_are_scored_out_of_sample_by_their_fold_model(con):
    frame = support_messages(60, swap_rate=0.0, seed=4).sample(frac=1.0, random_state=0)
    _load(con, frame.iloc[:200])
    suspects.refresh_scores(con, CONFIG)
    late = support_messages(60, swap_rate=1.0, seed=9)  # every label swapped
    late = late[~late.prompt.isin(frame.prompt)].iloc[:20]
    _load(con, pd.concat([frame.iloc[:200], late]))
    info = suspects.refresh_scores(con, CONFIG)
    assert not info["refit"]
    scores = _scores(con).set_index("example_id")
    assert scores.loc[late.example_id, "score"].median() > scores["score"].quantile(0.8)


def test_a_new_label_or_a_request_refits(con):
    frame = support_messages(40, swap_rate=0.0, seed=5)
    _load(con, frame)
    first = suspects.refresh_scores(con, CONFIG)["model_id"]
    extra = pd.DataFrame({"prompt": [f"please close my account number {i}" for i in range(6)]})
    extra["response"] = "close_account"
    extra["example_id"] = [
        example_id(p, r) for p, r in zip(extra.prompt, extra.response, strict=True)
    ]
    _load(con, pd.concat([frame, extra]))
    info = suspects.refresh_scores(con, CONFIG)
    assert info["refit"] and info["refit_reason"].startswith("new labels: close_account")
    assert info["newly_scored"] == len(frame) + 6 and info["model_id"] != first
    assert set(_scores(con).model_id) == {info["model_id"]}
    again = suspects.refresh_scores(con, suspects.RefreshConfig(encoder="none", refit=True))
    assert again["refit"] and again["refit_reason"] == "requested"
    other = suspects.RefreshConfig(
        encoder="none", fit=suspect_model.FitConfig(max_word_features=100)
    )
    assert suspects.refresh_scores(con, other)["refit_reason"] == "settings changed"


def test_growth_refits_only_while_the_sample_holds_every_row(con):
    frame = support_messages(60, swap_rate=0.0, seed=6).sample(frac=1.0, random_state=0)
    _load(con, frame.iloc[:100])
    suspects.refresh_scores(con, CONFIG)
    _load(con, frame.iloc[:130])  # 30% more data, sample not full: refit
    assert suspects.refresh_scores(con, CONFIG)["refit_reason"].startswith("data grew")
    small = suspects.RefreshConfig(encoder="none", fit=suspect_model.FitConfig(max_per_label=5))
    suspects.refresh_scores(con, small)
    _load(con, frame)  # the sample was full (5 per label): no refit for growth
    info = suspects.refresh_scores(con, small)
    assert not info["refit"] and info["newly_scored"] == len(frame) - 130


def test_the_pipeline_fold_matches_sql(con):
    ids = [f"id-{i}" for i in range(50)]
    con.register("_ids", pd.DataFrame({"example_id": ids}))
    sql = con.sql(f"SELECT {suspect_model.fold_sql()} FROM _ids").fetchnumpy()
    assert list(next(iter(sql.values()))) == list(suspect_model.fold_of(ids))
    assert set(suspect_model.fold_of(ids)) == set(range(suspect_model.FOLDS))


def test_stratified_sample_keeps_every_label_and_caps_each():
    labels = np.array(["a"] * 500 + ["b"] * 20 + ["c"] * 3)
    picked = suspect_model.stratified_sample(labels, max_rows=90, max_per_label=400, seed=0)
    counts = pd.Series(labels[picked]).value_counts().to_dict()
    assert counts == {"a": 30, "b": 20, "c": 3}


def test_sql_reasons_match_the_python_ones(con):
    frame = support_messages(30, swap_rate=0.2, seed=7)
    frame["flags"] = "[]"
    _load(con, frame)
    suspects.refresh_scores(con, CONFIG)
    warehouse = _scores(con).set_index("example_id")["reason"]
    direct = suspects.score_examples(frame, labelled=True).set_index("example_id")["reason"]
    assert warehouse.loc[direct.index].tolist() == direct.tolist()
    assert warehouse.str.contains("model prefers").any()


def test_distilled_static_encoder_embeds_texts(tmp_path):
    texts = ["my card never arrived", "the payment is pending", "top up failed again"] * 20
    base = build_tiny_classifier_base(tmp_path / "tiny", texts)
    folder = static_embeddings.distilled(base, tmp_path / "cache", name="tiny", pca_dims=8)
    assert folder == static_embeddings.distilled(base, tmp_path / "cache", name="tiny", pca_dims=8)
    vectors = static_embeddings.StaticEncoder(folder)(["my card never arrived", "pending"])
    assert vectors.shape == (2, 8) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    choice = suspects.encoder_for(f"static:{folder}")
    assert choice is not None and not choice.cached
    assert np.allclose(choice.encode(["pending"]), vectors[1:], atol=1e-6)


@pytest.mark.parametrize("setting", ["none", "tfidf", ""])
def test_no_encoder_means_tfidf_only(setting):
    assert suspects.encoder_for(setting) is None
