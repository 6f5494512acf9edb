"""Agreement statistics against known values, and who decides when reviewers disagree."""

import math
import random

import pandas as pd
import pytest

from curation_assets.curation.review import agreement, review_stage


def test_cohen_kappa_textbook_value():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15 -> kappa 0.4
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert agreement.cohen_kappa(a, b) == pytest.approx(0.4)


#: ``sklearn.metrics.cohen_kappa_score(a, b)`` (scikit-learn 1.9) of the 200 ratings below,
#: recorded: importing scikit-learn for one number costs a worker seconds.
SKLEARN_KAPPA_200 = 0.6454703175680772


def test_cohen_kappa_matches_sklearn_and_edge_cases():
    rng = random.Random(3)
    a = [rng.choice("xyz") for _ in range(200)]
    b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
    assert agreement.cohen_kappa(a, b) == pytest.approx(SKLEARN_KAPPA_200, rel=1e-12)
    assert agreement.cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    assert math.isnan(agreement.cohen_kappa(["x", "x"], ["x", "x"]))  # no variation
    assert math.isnan(agreement.cohen_kappa([], []))


def test_krippendorff_alpha_textbook_value():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example:
    # 4 observers, 12 units, missing values; alpha = 0.743.
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[o[u] for o in observers if o[u] is not None] for u in range(12)]
    assert agreement.krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_limits():
    assert agreement.krippendorff_alpha([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert math.isnan(agreement.krippendorff_alpha([["a", "a"], ["a", "a"]]))
    assert math.isnan(agreement.krippendorff_alpha([["a"], ["b"]]))  # nothing pairable
    # two coders, binary, systematic disagreement: below zero
    assert agreement.krippendorff_alpha([["a", "b"], ["b", "a"], ["a", "a"]]) < 0


def _decision(eid, who, decision="accept", role="reviewer", corrected=None, minute=0, did=None):
    return {
        "decision_id": did,
        "example_id": eid,
        "reviewer": who,
        "role": role,
        "decision": decision,
        "corrected_response": corrected,
        "note": None,
        "decided_at": pd.Timestamp("2026-11-01T10:00:00Z") + pd.Timedelta(minutes=minute),
        "seconds_spent": 10.0,
    }


@pytest.fixture
def items(con):
    con.execute(
        "CREATE TABLE filtered AS SELECT * FROM (VALUES ('e1', 'billing'), ('e2', 'login'), "
        "('e3', 'login'), ('e4', 'billing'), ('e5', 'login')) t(example_id, response)"
    )
    return con


def _resolve(con, rows, k):
    frame = pd.DataFrame(rows)
    frame["decision_id"] = range(1, len(frame) + 1)
    review_stage.register_decisions(con, frame, labels=("billing", "login"))
    agreement.register_votes(con)
    agreement.register_resolution(con, k)
    return {
        r[0]: r[1:]
        for r in con.sql(
            "SELECT example_id, status, decision, reviewer FROM _resolution"
        ).fetchall()
    }


def test_resolution_routes_disagreement_to_an_expert(items):
    rows = [
        _decision("e1", "alice"),
        _decision("e1", "bob", "edit", corrected="login", minute=1),  # disagree
        _decision("e2", "alice"),
        _decision("e2", "bob", "edit", corrected="login", minute=1),  # same outcome: agree
        _decision("e3", "alice", "reject"),  # one vote of two needed
        _decision("e4", "alice", "reject"),
        _decision("e4", "bob"),
        _decision("e4", "dr_chen", "accept", role="expert", minute=-5),  # expert settles it
        _decision("e5", "alice", "reject"),
        _decision("e5", "alice", "accept", minute=3),  # changed mind: latest vote counts
        _decision("e5", "bob", "edit", corrected="nonsense", minute=4),  # invalid label
    ]
    resolved = _resolve(items, rows, k=2)
    assert resolved["e1"][0] == "needs_expert"
    assert resolved["e2"][0] == "agreed"
    assert resolved["e3"][0] == "in_review"
    assert resolved["e4"] == ("expert", "accept", "dr_chen")
    assert resolved["e5"][0] == "in_review"  # bob's invalid edit is no vote
    # with one review required, a single vote decides, a disagreement still escalates
    resolved = _resolve(items, rows, k=1)
    assert resolved["e3"][:2] == ("agreed", "reject")
    assert resolved["e1"][0] == "needs_expert"


def test_agreement_stats_per_reviewer_and_label():
    votes = pd.DataFrame(
        [
            ("e1", "alice", "billing", "keep:billing"),
            ("e1", "bob", "billing", "keep:billing"),
            ("e2", "alice", "login", "keep:login"),
            ("e2", "bob", "login", "reject"),
            ("e3", "alice", "login", "keep:login"),
            ("e3", "bob", "login", "keep:login"),
            ("e4", "alice", "billing", "reject"),
            ("e4", "bob", "billing", "reject"),
            ("e5", "carol", "billing", "keep:billing"),
        ],
        columns=["example_id", "reviewer", "label", "outcome"],
    )
    expert = pd.DataFrame({"example_id": ["e2", "e5"], "expert_outcome": ["reject", "reject"]})
    stats = agreement.agreement_stats(votes, expert).set_index(["scope", "key"])
    overall = stats.loc[("overall", "all")]
    assert (overall["items"], overall["pairs"]) == (4, 4)
    assert overall["observed_agreement"] == pytest.approx(0.75)
    a = ["keep:billing", "keep:login", "keep:login", "reject"]
    b = ["keep:billing", "reject", "keep:login", "reject"]
    # observed 3/4; expected (1*1 + 2*1 + 1*2) / 16 = 5/16: kappa (12 - 5) / (16 - 5)
    assert overall["kappa"] == pytest.approx(7 / 11)
    assert overall["alpha"] == pytest.approx(agreement.krippendorff_alpha(zip(a, b, strict=True)))
    assert stats.loc[("label", "billing"), "observed_agreement"] == pytest.approx(1.0)
    assert stats.loc[("reviewer", "alice"), "overturned_rate"] == pytest.approx(1.0)
    assert stats.loc[("reviewer", "bob"), "overturned"] == 0
    assert stats.loc[("reviewer", "carol"), "overturned_rate"] == pytest.approx(1.0)
    assert stats.loc[("reviewer", "carol"), "items"] == 0  # reviewed nothing shared
