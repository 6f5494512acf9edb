"""What the review app reads and writes in the decision store (never the warehouse).

Every call opens its own short-lived SQLite connection (WAL, busy timeout), so the app
keeps working while other processes import decisions or publish a new queue.
"""

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curation_assets.curation.review import decisions

#: An item served to someone else this recently is offered to others only after the rest.
LEASE_SECONDS = 120.0

_ITEM_COLUMNS = ", ".join(f"q.{c}" for c in decisions.QUEUE_COLUMNS)


#: ``with connection(store) as con``: a fresh connection to the store, closed afterwards.
connection = decisions.connection


def _available_sql(role: str) -> str:
    """Filter on ``queue_items q`` for what ``:user`` (of ``role``) still has to decide.

    Nobody sees an item they decided already, nor one an expert decided (an expert's
    decision is final: it is what verifies). Reviewers see an item until it has
    ``reviews_required`` non-expert decisions by different people (votes, as
    ``curation.review.agreement`` counts them); experts and admins see every item without an expert
    decision.
    """
    sql = """q.queue = :queue
        AND NOT EXISTS (SELECT 1 FROM decisions d
                        WHERE d.example_id = q.example_id AND d.reviewer = :user)
        AND NOT EXISTS (SELECT 1 FROM decisions d
                        WHERE d.example_id = q.example_id AND d.role = 'expert')"""
    if role == "reviewer":
        sql += """
        AND (SELECT count(DISTINCT d.reviewer) FROM decisions d
             WHERE d.example_id = q.example_id AND d.role != 'expert')
            < coalesce(q.reviews_required, :required)"""
    return sql


def next_items(
    store: Path, user: dict, queue: str, required: int, limit: int = 1, lease: bool = True
) -> list[dict]:
    """The next ``limit`` items for ``user``: never-skipped first, then items nobody else
    was just served, then by priority. Serving an item records a lease on it."""
    params = {"queue": queue, "user": user["username"], "required": required}
    params |= {"limit": limit, "fresh": time.time() - LEASE_SECONDS}
    with connection(store) as con:
        rows = con.execute(
            f"""SELECT {_ITEM_COLUMNS} FROM queue_items q
                LEFT JOIN skips s ON s.username = :user AND s.queue = q.queue
                                 AND s.example_id = q.example_id
                WHERE {_available_sql(user["role"])}
                ORDER BY s.skipped_at IS NOT NULL, s.skipped_at,
                         EXISTS (SELECT 1 FROM leases l
                                 WHERE l.queue = q.queue AND l.example_id = q.example_id
                                   AND l.username != :user AND l.served_at > :fresh),
                         q.priority
                LIMIT :limit""",
            params,
        ).fetchall()
        items = [_item(row) for row in rows]
        if lease and items:
            now = time.time()
            con.executemany(
                "INSERT OR REPLACE INTO leases (queue, example_id, username, served_at) "
                "VALUES (?, ?, ?, ?)",
                [(queue, item["example_id"], user["username"], now) for item in items],
            )
    return items


def get_item(store: Path, queue: str, example_id: str) -> dict | None:
    """One published item, whatever its state."""
    with connection(store) as con:
        row = con.execute(
            f"SELECT {_ITEM_COLUMNS} FROM queue_items q WHERE q.queue = ? AND q.example_id = ?",
            [queue, example_id],
        ).fetchone()
    return _item(row) if row else None


def progress(store: Path, user: dict, queue: str, required: int) -> dict[str, int]:
    """Items of ``queue``: decided by ``user``, still to do for them, and in total."""
    params = {"queue": queue, "user": user["username"], "required": required}
    with connection(store) as con:
        total, done = con.execute(
            """SELECT count(*), count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM decisions d
                   WHERE d.example_id = q.example_id AND d.reviewer = :user))
               FROM queue_items q WHERE q.queue = :queue""",
            params,
        ).fetchone()
        left = con.execute(
            f"SELECT count(*) FROM queue_items q WHERE {_available_sql(user['role'])}", params
        ).fetchone()[0]
    return {"done": int(done), "left": int(left), "total": int(total)}


#: Why an item of a queue is or is not offered to a user; the first that applies counts.
STANDING = (
    "decided_by_you",  # the user decided it already (a later decision of theirs is an edit)
    "decided_by_expert",  # an expert's decision is final: it verifies (or rejects) the item
    "waiting_for_expert",  # reviewers only: enough reviews, they disagree, an expert settles it
    "reviewed_by_others",  # reviewers only: enough reviews by other people, all agreeing
    "open",  # still offered to the user (skipped ones included, after the rest)
)


def standing(store: Path, user: dict, queue: str, required: int) -> dict[str, int]:
    """Items of ``queue`` by why they are (``open``) or are not offered to ``user``.

    One count per ``STANDING`` reason, the first that applies, so the counts add up to the
    queue size; ``open`` is what :func:`next_items` still serves (the same rules as
    :func:`_available_sql`) and ``skipped`` how many of those the user skipped. Reviewers'
    votes disagree when their latest outcomes differ (reject, or keep with a label), as
    ``curation.review.agreement`` compares them.
    """
    params = {"queue": queue, "user": user["username"], "required": required}
    reviewer = user["role"] == "reviewer"
    with connection(store) as con:
        rows = con.execute(
            """WITH items AS (
                   SELECT q.example_id, q.response,
                          coalesce(q.reviews_required, :required) AS required
                   FROM queue_items q WHERE q.queue = :queue
               ),
               votes AS (
                   SELECT d.example_id, d.reviewer,
                          CASE WHEN d.decision = 'reject' THEN 'reject'
                               WHEN d.decision = 'edit' THEN 'keep:' || d.corrected_response
                               ELSE 'keep:' || i.response END AS outcome,
                          row_number() OVER (PARTITION BY d.example_id, d.reviewer
                                             ORDER BY d.decided_at DESC, d.decision_id DESC)
                              AS rn
                   FROM decisions d JOIN items i USING (example_id)
                   WHERE d.role != 'expert'
               ),
               tally AS (
                   SELECT example_id, count(*) AS n_reviewers,
                          count(DISTINCT outcome) AS n_outcomes
                   FROM votes WHERE rn = 1 GROUP BY example_id
               ),
               flags AS (
                   SELECT i.example_id, coalesce(t.n_reviewers, 0) >= i.required AS enough,
                          coalesce(t.n_outcomes, 0) > 1 AS disputed,
                          EXISTS (SELECT 1 FROM decisions d WHERE d.example_id = i.example_id
                                  AND d.reviewer = :user) AS mine,
                          EXISTS (SELECT 1 FROM decisions d WHERE d.example_id = i.example_id
                                  AND d.role = 'expert') AS expert,
                          EXISTS (SELECT 1 FROM skips s WHERE s.username = :user
                                  AND s.queue = :queue AND s.example_id = i.example_id)
                              AS skipped
                   FROM items i LEFT JOIN tally t USING (example_id)
               )
               SELECT CASE WHEN mine THEN 'decided_by_you'
                           WHEN expert THEN 'decided_by_expert'
                           WHEN :reviewer AND enough AND disputed THEN 'waiting_for_expert'
                           WHEN :reviewer AND enough THEN 'reviewed_by_others'
                           ELSE 'open' END AS reason,
                      count(*), sum(skipped)
               FROM flags GROUP BY 1""",
            params | {"reviewer": reviewer},
        ).fetchall()
    found = {reason: (int(n), int(skipped or 0)) for reason, n, skipped in rows}
    counts = {reason: found.get(reason, (0, 0))[0] for reason in STANDING}
    counts["skipped"] = found.get("open", (0, 0))[1]
    counts["total"] = sum(counts[reason] for reason in STANDING)
    return counts


def release(con: sqlite3.Connection, decided: list[tuple[str, str]]) -> None:
    """End the leases of (username, example_id) pairs that were decided or skipped."""
    con.executemany("DELETE FROM leases WHERE username = ? AND example_id = ?", decided)


def skip(store: Path, user: dict, queue: str, example_id: str) -> None:
    """Move an item to the end of the user's queue (a skip is not a decision)."""
    with connection(store) as con:
        con.execute(
            "INSERT OR REPLACE INTO skips (username, queue, example_id, skipped_at) "
            "VALUES (?, ?, ?, ?)",
            [user["username"], queue, example_id, datetime.now(UTC).isoformat()],
        )
        release(con, [(user["username"], example_id)])


def history(store: Path, username: str, limit: int = 50) -> list[dict]:
    """The user's latest decisions, newest first."""
    with connection(store) as con:
        rows = con.execute(
            """SELECT d.decision_id, d.example_id, d.decision, d.corrected_response,
                      d.decided_at, d.seconds_spent,
                      (SELECT q.queue FROM queue_items q WHERE q.example_id = d.example_id
                       ORDER BY q.queue LIMIT 1) AS queue
               FROM decisions d WHERE d.reviewer = ? ORDER BY d.decision_id DESC LIMIT ?""",
            [username, limit],
        ).fetchall()
    keys = ("decision_id", "example_id", "decision", "corrected_response", "decided_at")
    return [dict(zip((*keys, "seconds_spent", "queue"), row, strict=True)) for row in rows]


def counts(store: Path) -> dict[str, Any]:
    """Cheap numbers for /healthz."""
    with connection(store) as con:
        queued = dict(con.execute("SELECT queue, count(*) FROM queue_items GROUP BY 1").fetchall())
        n_decisions = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        published = con.execute(
            "SELECT published_at FROM queue_publications ORDER BY publication_id DESC LIMIT 1"
        ).fetchone()
    return {
        "queue_items": {q: int(queued.get(q, 0)) for q in decisions.QUEUES},
        "decisions": int(n_decisions),
        "queue_published_at": published[0] if published else None,
    }


def _item(row: tuple) -> dict:
    item = dict(zip(decisions.QUEUE_COLUMNS, row, strict=True))
    for column in decisions.JSON_COLUMNS:
        item[column] = _parse_list(item[column])
    return item


def _parse_list(text: str | None) -> list:
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [{"raw": text}]
    return value if isinstance(value, list) else [value]


def pii_segments(text: str | None, spans: list, field: str) -> list[tuple[str, str | None]]:
    """Split ``text`` into (piece, pii kind or None) along the PII spans of ``field``.

    Spans are ``{"field": "prompt"|"response", "kind", "start", "end"}`` (character offsets
    into the published text; ``field`` defaults to prompt). Overlapping or out-of-range
    spans are ignored. The template escapes every piece.
    """
    text = text or ""
    marks = []
    for span in spans:
        if not isinstance(span, dict) or span.get("field", "prompt") != field:
            continue
        try:
            start, end = int(span["start"]), int(span["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if 0 <= start < end <= len(text):
            marks.append((start, end, str(span.get("kind") or "pii")))
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for start, end, kind in sorted(marks):
        if start < position:
            continue
        if start > position:
            pieces.append((text[position:start], None))
        pieces.append((text[start:end], kind))
        position = end
    if position < len(text) or not pieces:
        pieces.append((text[position:], None))
    return pieces
