"""The quality ladder's training sets, selected from the warehouse in DuckDB SQL.

Every rung is trained on one dataset and evaluated on the same held-out validation split of
``verified``. No rung may contain a validation prompt: rows whose normalized prompt is in
that split are removed from every rung (and counted), so a noisy copy of a validation
example cannot leak into training.

Rungs, in order: ``raw`` (every ingested record, duplicates and wrong labels included),
``filtered``, ``reviewed`` (reviewer or expert accepted/edited), ``verified`` (train
split), and three baselines of the verified train size N: ``random_n`` (random N filtered
rows, labels as scraped), ``longest_n`` (the N filtered rows with the longest
prompt + response), ``suspect_n`` (the suspect queue's top N after review: rejected ones
dropped, reviewed labels where decided, scraped labels elsewhere).
"""

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from curation_assets.curation.records import NORMALIZE_SQL, NORMALIZED_PROMPT_SQL

RUNGS = ("raw", "filtered", "reviewed", "verified", "random_n", "longest_n", "suspect_n")
DESCRIPTIONS = {
    "raw": "raw scrapes (after ingest only)",
    "filtered": "filtered (rules, dedup)",
    "reviewed": "human-reviewed",
    "verified": "expert-verified (train split)",
    "random_n": "random N of filtered (unreviewed)",
    "longest_n": "longest N of filtered (unreviewed)",
    "suspect_n": "suspect queue top N, after review",
}


@dataclass
class Rung:
    """One training set of the ladder and what it cost in human review time."""

    name: str
    rows: list[dict[str, Any]]
    human_seconds: float = 0.0  # every decision (reviewer and expert) that produced it
    expert_seconds: float = 0.0  # the expert decisions among them
    removed_validation_rows: int = 0
    note: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]
        ).fetchall()
    }


_NOT_VALIDATION = f"""sha256({NORMALIZED_PROMPT_SQL}) NOT IN (
    SELECT sha256({NORMALIZED_PROMPT_SQL}) FROM verified WHERE split = 'validation')"""


def _select(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[dict[str, Any]], int]:
    """Rows of ``sql`` (example_id, prompt, response) outside validation; removed count."""
    frame = con.execute(
        f"""SELECT example_id, prompt, response, {_NOT_VALIDATION} AS keep
            FROM ({sql})"""
    ).df()
    kept = frame[frame["keep"]].drop(columns="keep")
    return kept.to_dict("records"), int((~frame["keep"]).sum())


def validation_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The held-out split every rung is evaluated on."""
    return (
        con.execute(
            "SELECT example_id, prompt, response FROM verified WHERE split = 'validation' "
            "ORDER BY example_id"
        )
        .df()
        .to_dict("records")
    )


def _cost(decisions: pd.DataFrame, example_ids: set[str]) -> tuple[float, float]:
    """(all seconds, expert seconds) of the decisions on ``example_ids``."""
    if decisions.empty or not example_ids:
        return 0.0, 0.0
    mine = decisions[decisions["example_id"].isin(example_ids)]
    seconds = pd.to_numeric(mine["seconds_spent"], errors="coerce").fillna(0.0)
    expert = seconds[mine["role"] == "expert"]
    return float(seconds.sum()), float(expert.sum())


def build_rungs(
    con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame, seed: int = 13
) -> list[Rung]:
    """Every rung the warehouse can produce; a rung it cannot is returned empty with a note.

    Review cost counts every decision that produced a rung, rejections included, on
    examples outside the validation split (whose cost every rung shares).
    """
    tables = _tables(con)
    missing = [t for t in ("raw_scrapes", "filtered", "verified") if t not in tables]
    if missing:
        raise ValueError(f"the warehouse lacks {missing}: materialize the pipeline first")
    val_ids = set(
        con.execute("SELECT example_id FROM verified WHERE split = 'validation'").df()["example_id"]
    )
    if decisions.empty:
        decisions = pd.DataFrame(columns=["example_id", "role", "seconds_spent"])
    decided = decisions[~decisions["example_id"].isin(val_ids)]
    rungs: list[Rung] = []

    def add(name: str, sql: str, cost_ids: set[str] | None = None) -> Rung:
        rows, removed = _select(con, sql)
        human, expert = _cost(decided, cost_ids or set())
        rung = Rung(name, rows, human, expert, removed, "", DESCRIPTIONS[name])
        rungs.append(rung)
        return rung

    add("raw", "SELECT example_id, prompt, response FROM raw_scrapes")
    add("filtered", "SELECT example_id, prompt, response FROM filtered")
    if "reviewed" in tables:
        add(
            "reviewed",
            "SELECT example_id, prompt, response FROM reviewed",
            set(decided["example_id"]),
        )
    expert_ids = set(decided.loc[decided["role"] == "expert", "example_id"])
    verified = add(
        "verified",
        "SELECT example_id, prompt, response FROM verified WHERE split = 'train'",
        expert_ids,
    )
    n = len(verified.rows)
    salt = f"ladder-{int(seed)}"
    add(
        "random_n",
        f"""SELECT example_id, prompt, response FROM filtered WHERE {_NOT_VALIDATION}
            ORDER BY sha256(example_id || '{salt}') LIMIT {n}""",
    )
    add(
        "longest_n",
        f"""SELECT example_id, prompt, response FROM filtered WHERE {_NOT_VALIDATION}
            ORDER BY length(prompt) + length(response) DESC, example_id LIMIT {n}""",
    )
    why_not = _no_suspects(con, tables)
    if why_not:
        rungs.append(Rung("suspect_n", [], note=why_not, description=DESCRIPTIONS["suspect_n"]))
        return rungs
    suspects = con.execute(_SUSPECTS).df()
    taken = suspects[suspects["kept"]].head(n)
    last = int(taken["priority"].max()) if len(taken) else 0
    considered = suspects[(suspects["priority"] <= last) & suspects["decided"]]
    rung = Rung(
        "suspect_n",
        taken[["example_id", "prompt", "response"]].to_dict("records"),
        *_cost(decided, set(considered["example_id"])),
        removed_validation_rows=int((~suspects["outside_validation"]).sum()),
        description=DESCRIPTIONS["suspect_n"],
    )
    if len(rung.rows) < n:
        rung.note = f"only {len(rung.rows)} suspects left after review (N = {n})"
    rungs.append(rung)
    return rungs


#: Suspects in queue order, with their label after review and whether the rung may use them.
_SUSPECTS = f"""
    SELECT q.example_id, q.prompt, coalesce(r.response, q.response) AS response, q.priority,
           q.n_decisions > 0 AS decided, outside_validation,
           q.review_status != 'rejected' AND outside_validation AS kept
    FROM (SELECT *, sha256({NORMALIZE_SQL.format(col="prompt")}) NOT IN (
                SELECT sha256({NORMALIZED_PROMPT_SQL}) FROM verified WHERE split = 'validation'
            ) AS outside_validation
          FROM review_queue WHERE queue = 'suspect') q
    LEFT JOIN reviewed r USING (example_id)
    ORDER BY q.priority"""


def _no_suspects(con: duckdb.DuckDBPyConnection, tables: set[str]) -> str:
    """Why the suspect rung cannot be built ('' when it can)."""
    if "review_queue" not in tables:
        return "skipped: no review_queue table"
    if "queue" not in _columns(con, "review_queue"):
        return "skipped: review_queue has no `queue` column (no suspect queue yet)"
    count = con.execute("SELECT count(*) FROM review_queue WHERE queue = 'suspect'").fetchall()
    if not count[0][0]:
        return "skipped: the review queue has no suspect rows"
    return ""
