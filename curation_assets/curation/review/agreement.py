"""Several reviewers per example: who decides, and how well reviewers agree.

Decisions are append-only, so every rule here reads history without changing it:

* a reviewer's *vote* on an example is that reviewer's latest valid decision on it (a
  changed mind replaces the earlier vote; the earlier decision stays in the store);
* a vote's *outcome* is what it would make of the example: ``reject``, or the response it
  keeps (the original for ``accept``, the correction for ``edit``). Two votes agree when
  their outcomes are equal, so an edit back to the original label agrees with an accept;
* an expert's latest decision settles an example outright. Otherwise, once
  ``reviews_required`` distinct reviewers voted the same outcome the example is decided;
  as soon as two reviewers' votes differ it ``needs_expert``.

Agreement is reported as Cohen's kappa (per pair of reviewers, averaged weighted by the
items they share) and Krippendorff's alpha (nominal, any number of reviewers, missing
votes allowed), overall, per label and per reviewer, plus how often an expert overturned
each reviewer. Plain Python and DuckDB SQL, no Dagster.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

import duckdb
import pandas as pd

from curation_assets.curation.review.tables import REVIEW_AGREEMENT

#: Table of agreement statistics written by :func:`store_agreement` (read by the GX check).
AGREEMENT_TABLE = REVIEW_AGREEMENT.name

#: Outcome key of a rejecting vote (kept outcomes are ``'keep:' || response``).
REJECT = "reject"


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters over the same items (NaN when chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return math.nan
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    left, right = Counter(a), Counter(b)
    expected = sum(left[c] * right[c] for c in left) / (n * n)
    return math.nan if expected >= 1.0 else (observed - expected) / (1.0 - expected)


def krippendorff_alpha(units: Iterable[Sequence[Hashable]]) -> float:
    """Krippendorff's alpha for nominal data.

    ``units``: for each item, the values the raters gave it (missing votes simply absent).
    Items with fewer than two values are not pairable and are ignored. Returns NaN when
    there is nothing to compare or every pairable value is the same (no variation).
    Uses the coincidence matrix: alpha = 1 - (n - 1) * D / E with D the off-diagonal
    coincidences and E = sum over value pairs c != k of n_c * n_k.
    """
    disagreement = 0.0
    totals: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        disagreement += (m * m - sum(c * c for c in counts.values())) / (m - 1)
        totals.update(counts)
    n = sum(totals.values())
    expected = n * n - sum(c * c for c in totals.values())
    if n < 2 or expected == 0:
        return math.nan
    return 1.0 - (n - 1) * disagreement / expected


def register_votes(con: duckdb.DuckDBPyConnection, items: str = "filtered") -> None:
    """Views ``_votes`` (latest valid vote per reviewer and example) and ``_expert``.

    Needs the ``_decisions`` view (``review.register_decisions``); ``items`` is the table
    holding each example's original ``response``. A vote is valid when it is in
    ``_decisions`` with ``valid`` TRUE.
    """
    outcome = f"""CASE WHEN d.decision = 'reject' THEN '{REJECT}'
                       WHEN d.decision = 'edit' THEN 'keep:' || d.corrected_response
                       ELSE 'keep:' || i.response END"""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _votes AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT d.*, i.response AS label, {outcome} AS outcome,
                   row_number() OVER (PARTITION BY d.example_id, d.reviewer
                                      ORDER BY d.decided_at DESC, d.decision_id DESC) AS rn
            FROM _decisions d JOIN {items} i USING (example_id)
            WHERE d.role != 'expert' AND d.valid
        ) WHERE rn = 1;
        CREATE OR REPLACE TEMP VIEW _expert AS
        SELECT * EXCLUDE (rn) FROM (
            SELECT d.*, i.response AS label, {outcome} AS outcome,
                   row_number() OVER (PARTITION BY d.example_id
                                      ORDER BY d.decided_at DESC, d.decision_id DESC) AS rn
            FROM _decisions d JOIN {items} i USING (example_id)
            WHERE d.role = 'expert' AND d.valid
        ) WHERE rn = 1
        """
    )


def register_resolution(con: duckdb.DuckDBPyConnection, reviews_required: int) -> None:
    """View ``_resolution``: per decided example, its status and deciding decision.

    ``status``: ``expert`` (an expert decided; ``decision`` says how), ``needs_expert``
    (reviewers disagree), ``agreed`` (``reviews_required`` reviewers voted the same
    outcome) or ``in_review`` (fewer votes, all the same). The deciding row is the
    expert's latest decision, else the latest vote; ``reviewers`` lists who voted.
    Needs :func:`register_votes`.
    """
    k = max(int(reviews_required), 1)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW _resolution AS
        WITH tally AS (
            SELECT example_id, count(*) AS n_reviewers,
                   count(DISTINCT outcome) AS n_outcomes,
                   string_agg(reviewer || ': ' || CASE WHEN outcome = '{REJECT}'
                              THEN 'reject' ELSE substr(outcome, 6) END, '; '
                              ORDER BY reviewer) AS votes,
                   arg_max(decision_id, decided_at) AS last_vote
            FROM _votes GROUP BY example_id
        ),
        decided AS (
            SELECT coalesce(e.example_id, t.example_id) AS example_id,
                   CASE WHEN e.example_id IS NOT NULL THEN 'expert'
                        WHEN t.n_outcomes > 1 THEN 'needs_expert'
                        WHEN t.n_reviewers >= {k} THEN 'agreed'
                        ELSE 'in_review' END AS status,
                   coalesce(e.decision_id, t.last_vote) AS decision_id,
                   coalesce(t.n_reviewers, 0) AS n_reviewers, t.votes
            FROM _expert e FULL OUTER JOIN tally t USING (example_id)
        )
        SELECT x.example_id, x.status, x.n_reviewers, x.votes, d.decision, d.reviewer,
               d.role, d.corrected_response, d.decided_at, d.decision_id, d.seconds_spent
        FROM decided x JOIN _decisions d USING (decision_id)
        """
    )


def agreement_frames(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(votes, expert outcomes) as data frames, from :func:`register_votes`' views."""
    votes = con.sql("SELECT example_id, reviewer, label, outcome FROM _votes").df()
    expert = con.sql("SELECT example_id, outcome AS expert_outcome FROM _expert").df()
    return votes, expert


def agreement_stats(votes: pd.DataFrame, expert: pd.DataFrame) -> pd.DataFrame:
    """Agreement overall, per label and per reviewer (rows of ``review_agreement``).

    ``votes``: example_id, reviewer, label (original response), outcome.
    ``expert``: example_id, expert_outcome. ``items`` counts examples with two or more
    votes; ``pairs`` the pairs of votes on the same example; kappa is the mean of the
    reviewer pairs' kappas weighted by shared items (pairs without variation skipped).
    """
    rows = [_scope_row("overall", "all", votes)]
    for label, group in votes.groupby("label", sort=True):
        rows.append(_scope_row("label", str(label), group))
    merged = votes.merge(expert, on="example_id", how="left")
    for reviewer, group in merged.groupby("reviewer", sort=True):
        row = _reviewer_row(str(reviewer), votes)
        checked = group[group["expert_outcome"].notna()]
        overturned = int((checked["expert_outcome"] != checked["outcome"]).sum())
        row.update(
            expert_checked=len(checked),
            overturned=overturned,
            overturned_rate=overturned / len(checked) if len(checked) else math.nan,
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=_COLUMNS)


_COLUMNS = REVIEW_AGREEMENT.column_names


def _units(votes: pd.DataFrame) -> dict[str, dict[str, str]]:
    units: dict[str, dict[str, str]] = defaultdict(dict)
    for eid, reviewer, outcome in votes[["example_id", "reviewer", "outcome"]].itertuples(
        index=False
    ):
        units[eid][reviewer] = outcome
    return units


def _pair_stats(units: dict[str, dict[str, str]]) -> tuple[int, int, float]:
    """(pairs, agreeing pairs, weighted mean pairwise kappa) over reviewer pairs."""
    shared: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for votes in units.values():
        for a, b in combinations(sorted(votes), 2):
            shared[(a, b)].append((votes[a], votes[b]))
    pairs = sum(len(v) for v in shared.values())
    agreeing = sum(x == y for v in shared.values() for x, y in v)
    weighted = [
        (cohen_kappa([x for x, _ in v], [y for _, y in v]), len(v)) for v in shared.values()
    ]
    weighted = [(k, n) for k, n in weighted if not math.isnan(k)]
    total = sum(n for _, n in weighted)
    kappa = sum(k * n for k, n in weighted) / total if total else math.nan
    return pairs, agreeing, kappa


def _scope_row(scope: str, key: str, votes: pd.DataFrame) -> dict:
    units = {e: v for e, v in _units(votes).items() if len(v) >= 2}
    pairs, agreeing, kappa = _pair_stats(units)
    return {
        "scope": scope,
        "key": key,
        "items": len(units),
        "pairs": pairs,
        "observed_agreement": agreeing / pairs if pairs else math.nan,
        "kappa": kappa,
        "alpha": krippendorff_alpha(list(v.values()) for v in units.values()),
        "expert_checked": None,
        "overturned": None,
        "overturned_rate": math.nan,
    }


def _reviewer_row(reviewer: str, votes: pd.DataFrame) -> dict:
    """A reviewer against everyone else, on the examples they share."""
    units = {e: v for e, v in _units(votes).items() if reviewer in v and len(v) >= 2}
    pairs = agreeing = 0
    kappas: list[tuple[float, int]] = []
    others: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for v in units.values():
        for other, outcome in v.items():
            if other != reviewer:
                others[other].append((v[reviewer], outcome))
    for shared in others.values():
        pairs += len(shared)
        agreeing += sum(x == y for x, y in shared)
        kappa = cohen_kappa([x for x, _ in shared], [y for _, y in shared])
        if not math.isnan(kappa):
            kappas.append((kappa, len(shared)))
    total = sum(n for _, n in kappas)
    return {
        "scope": "reviewer",
        "key": reviewer,
        "items": len(units),
        "pairs": pairs,
        "observed_agreement": agreeing / pairs if pairs else math.nan,
        "kappa": sum(k * n for k, n in kappas) / total if total else math.nan,
        "alpha": krippendorff_alpha(list(v.values()) for v in units.values()),
    }


def store_agreement(con: duckdb.DuckDBPyConnection, stats: pd.DataFrame) -> None:
    """Replace ``review_agreement`` with ``stats`` (NaN stored as NULL)."""
    con.register("_agreement_stats", stats.astype(object).where(stats.notna(), None))
    REVIEW_AGREEMENT.create(con, replace=True)
    con.execute(f"INSERT INTO {AGREEMENT_TABLE} SELECT {', '.join(_COLUMNS)} FROM _agreement_stats")
    con.unregister("_agreement_stats")
