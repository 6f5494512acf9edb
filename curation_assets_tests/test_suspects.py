"""Suspect scores: planted label swaps rank first; heuristics; the embedding cache."""

import json
import random

import numpy as np
import pandas as pd
import pytest

from curation_assets.curation.records import example_id
from curation_assets.curation.review import suspects

pytestmark = pytest.mark.integration  # real model training: ./scripts/test --fast skips it

#: Support messages built from intent-specific phrases plus shared words ("card", "my"),
#: so that intents overlap the way real ones do.
_PHRASES = {
    "card_arrival": [
        "my new card still has not arrived",
        "I am still waiting for my card to come",
        "the card you sent never showed up in the mail",
        "where is the card I ordered",
    ],
    "card_delivery_estimate": [
        "how long does it take to deliver a card",
        "when should I expect a new card to be delivered",
        "how many days until a card gets here",
        "what is the delivery time for cards",
    ],
    "declined_card_payment": [
        "my card payment was declined at the shop",
        "the store refused my card",
        "why was my card rejected when I paid",
        "payment declined on my card again",
    ],
    "pending_card_payment": [
        "my card payment is still pending",
        "the purchase with my card shows as pending",
        "why is the card transaction not completed yet",
        "payment on my card has been pending for days",
    ],
}
_OPENERS = ["", "hi, ", "hello, ", "please help: ", "quick question, ", "urgent: "]
_TAILS = ["", " thanks", " what should I do?", " can you check?", " this is annoying", "!!"]
_CONFUSABLE = {
    "card_arrival": "card_delivery_estimate",
    "card_delivery_estimate": "card_arrival",
    "declined_card_payment": "pending_card_payment",
    "pending_card_payment": "declined_card_payment",
}


def support_messages(n_per_label: int, swap_rate: float, seed: int = 0) -> pd.DataFrame:
    """Distinct messages with ``swap_rate`` of labels swapped to the confusable intent."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for label, phrases in _PHRASES.items():
        while sum(r["true"] == label for r in rows) < n_per_label:
            text = rng.choice(_OPENERS) + rng.choice(phrases) + rng.choice(_TAILS)
            text += f" (ref {rng.randint(100, 999)})"
            if text not in seen:
                seen.add(text)
                rows.append({"prompt": text, "true": label})
    swapped = set(rng.sample(range(len(rows)), round(swap_rate * len(rows))))
    for i, row in enumerate(rows):
        row["response"] = _CONFUSABLE[row["true"]] if i in swapped else row["true"]
        row["example_id"] = example_id(row["prompt"], row["response"])
    return pd.DataFrame(rows)


def test_planted_label_swaps_rank_first():
    frame = support_messages(50, swap_rate=0.1)
    scores = suspects.score_examples(frame, labelled=True).merge(frame, on="example_id")
    ranked = scores.sort_values("score", ascending=False)
    wrong = (ranked["response"] != ranked["true"]).to_numpy()
    k = int(wrong.sum())
    assert k == 20
    assert wrong[:k].mean() >= 0.7  # precision@k against a noise rate of 0.1
    top = ranked.iloc[0]
    assert top["suggested"] == top["true"] != top["response"]
    assert "model prefers" in top["reason"] and f"'{top['response']}'" in top["reason"]
    assert set(scores["method"]) == {"tfidf+nb"}
    assert scores["score"].between(0, 1).all()


def test_embeddings_are_averaged_in():
    frame = support_messages(30, swap_rate=0.1)
    rng = np.random.default_rng(0)
    centers = {label: rng.normal(size=8) for label in _PHRASES}
    embeddings = np.stack([centers[t] + 0.3 * rng.normal(size=8) for t in frame["true"]])
    scores = suspects.score_examples(frame, labelled=True, embeddings=embeddings)
    assert set(scores["method"]) == {"tfidf+nb + embeddings+logreg"}
    wrong = (frame["response"] != frame["true"]).to_numpy()
    assert scores["score"][wrong].min() > scores["score"][~wrong].median()


def test_rare_labels_and_rule_warnings():
    frame = support_messages(20, swap_rate=0.0)
    frame.loc[0, "response"] = "one_of_a_kind"
    frame["flags"] = "[]"
    frame.loc[5, "flags"] = json.dumps([{"rule": "odd", "reason": "odd"}])
    scores = suspects.score_examples(frame, labelled=True).set_index("example_id")
    rare = scores.loc[frame.loc[0, "example_id"]]
    assert rare["method"] == "heuristic" and np.isnan(rare["quality"])
    assert "too rare to model" in rare["reason"]
    flagged = scores.loc[frame.loc[5, "example_id"]]
    assert flagged["score"] >= suspects.FLAG_WEIGHT
    assert "1 rule warning(s)" in flagged["reason"]


def test_instruction_data_falls_back_to_heuristics():
    rng = random.Random(1)
    rows = [
        {"prompt": f"Explain topic {i} briefly.", "response": "word " * rng.randint(30, 60)}
        for i in range(60)
    ]
    rows[7]["response"] = "ok"  # far too short for the rest
    rows[9]["flags"] = json.dumps([{"rule": "truncated", "reason": "ends mid-sentence"}])
    frame = pd.DataFrame(rows).fillna({"flags": "[]"})
    frame["example_id"] = [f"e{i}" for i in range(len(frame))]
    scores = suspects.score_examples(frame, labelled=False)
    top = scores.sort_values("score", ascending=False)["example_id"].head(2).tolist()
    assert set(top) == {"e7", "e9"}
    assert "unusually short response" in scores.set_index("example_id").loc["e7", "reason"]
    assert scores["quality"].isna().all() and set(scores["method"]) == {"heuristic"}


def test_embeddings_are_cached_by_example(con):
    calls: list[int] = []

    def encoder(texts):
        calls.append(len(texts))
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    ids, texts = ["a", "b", "c"], ["x", "yy", "zzz"]
    first, new = suspects.cached_embeddings(con, ids, texts, "toy", encoder)
    assert new == 3 and calls == [3]
    again, new = suspects.cached_embeddings(
        con, ["c", "a", "d"], ["zzz", "x", "wwww"], "toy", encoder
    )
    assert new == 1 and calls == [3, 1]
    assert again.tolist() == [[3, 1], [1, 1], [4, 1]]
    _, new = suspects.cached_embeddings(con, ids, texts, "other_model", encoder)
    assert new == 3  # the cache is per model
    assert first.shape == (3, 2)


@pytest.mark.parametrize("setting", ["none", "tfidf", ""])
def test_encoder_can_be_switched_off(setting):
    assert suspects.encoder_for(setting) is None
