"""The published review queue in the store (``queue_items``): publish, load, export."""

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from curation_assets.curation.review.decisions.store import connection, immediate

#: Columns of ``queue_items`` in order; the JSON ones are stored as text.
QUEUE_COLUMNS = (
    "queue",
    "example_id",
    "priority",
    "queue_reason",
    "score",
    "prompt",
    "response",
    "source",
    "batch",
    "flags",
    "pii",
    "near_duplicates",
    "reviews_required",
)
QUEUES = ("coverage", "suspect")
JSON_COLUMNS = ("flags", "pii", "near_duplicates")


def publish_queue(store_path: Path, items: pd.DataFrame) -> int:
    """Replace ``queue_items`` with ``items`` in one transaction; returns the row count.

    Required columns: ``example_id``, ``queue`` (coverage | suspect), ``priority`` (1 first,
    unique within a queue). Optional ones (``QUEUE_COLUMNS``) may be missing or null; the
    JSON columns (``flags``, ``pii``, ``near_duplicates``) take JSON text or Python lists.
    Invalid input raises ``ValueError`` and leaves the published queue untouched: readers
    see the old queue or the new one, never a mix.
    """
    rows = _queue_rows(items)
    digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
    placeholders = ", ".join("?" for _ in QUEUE_COLUMNS)
    with connection(store_path) as con, immediate(con):
        con.execute("DELETE FROM queue_items")
        con.executemany(
            f"INSERT INTO queue_items ({', '.join(QUEUE_COLUMNS)}) VALUES ({placeholders})",
            rows,
        )
        con.execute(
            "INSERT INTO queue_publications (published_at, items, digest) VALUES (?, ?, ?)",
            [datetime.now(UTC).isoformat(), len(rows), digest],
        )
    return len(rows)


def _queue_rows(items: pd.DataFrame) -> list[list[Any]]:
    missing = [c for c in ("example_id", "queue", "priority") if c not in items.columns]
    if missing:
        raise ValueError(f"queue items lack column(s): {', '.join(missing)}")
    rows, seen_ids, seen_priorities = [], set(), set()
    for index, record_ in enumerate(items.to_dict("records")):
        row = {c: _none_if_missing(record_.get(c)) for c in QUEUE_COLUMNS}
        where = f"queue item {index} ({row['example_id']!r})"
        if not row["example_id"]:
            raise ValueError(f"queue item {index} has no example_id")
        if row["queue"] not in QUEUES:
            raise ValueError(f"{where}: queue must be one of {QUEUES}, got {row['queue']!r}")
        try:
            row["priority"] = int(row["priority"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: priority must be an integer") from exc
        for key, seen, what in (
            ((row["queue"], str(row["example_id"])), seen_ids, "example_id"),
            ((row["queue"], row["priority"]), seen_priorities, "priority"),
        ):
            if key in seen:
                raise ValueError(f"{where}: duplicate {what} in queue {row['queue']!r}")
            seen.add(key)
        row["example_id"] = str(row["example_id"])
        row["score"] = None if row["score"] is None else float(row["score"])
        if row["reviews_required"] is not None:
            row["reviews_required"] = int(row["reviews_required"])
        for column in JSON_COLUMNS:
            row[column] = _json_text(row[column], f"{where}: {column}")
        for column in ("queue_reason", "prompt", "response", "source", "batch"):
            row[column] = None if row[column] is None else str(row[column])
        rows.append([row[c] for c in QUEUE_COLUMNS])
    return rows


def _none_if_missing(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _json_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if hasattr(value, "tolist"):  # numpy arrays (parquet/duckdb lists)
        value = value.tolist()
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not valid JSON: {exc.msg}") from exc
        return value
    return json.dumps(value, default=str)


def load_queue(store_path: Path, queue: str | None = None) -> pd.DataFrame:
    """The published queue (one queue or both), in priority order; JSON columns as text."""
    if not store_path.exists():
        return pd.DataFrame(columns=list(QUEUE_COLUMNS))
    with connection(store_path) as con:
        where, params = ("WHERE queue = ?", [queue]) if queue else ("", [])
        return pd.read_sql_query(
            f"SELECT {', '.join(QUEUE_COLUMNS)} FROM queue_items {where} ORDER BY queue, priority",
            con,
            params=params,
        )


def export_queue(store_path: Path, out: Path, fmt: str = "jsonl", labels=()) -> int:
    """Write the published queue as JSONL (one item per line, JSON columns parsed) or as
    Label Studio tasks (``label-studio``: a JSON list; ``label_studio_config`` gives the
    matching labeling interface). Returns the number of items written."""
    frame = load_queue(store_path)
    items = []
    for row in frame.to_dict("records"):
        item = {c: _none_if_missing(row.get(c)) for c in QUEUE_COLUMNS}
        for column in JSON_COLUMNS:
            item[column] = json.loads(item[column]) if item[column] else []
        items.append(item)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with out.open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    elif fmt == "label-studio":
        tasks = [
            {
                "data": {
                    "text": item["prompt"],
                    "label": item["response"],
                    "example_id": item["example_id"],
                    "queue": item["queue"],
                    "priority": item["priority"],
                    "queue_reason": item["queue_reason"],
                    "source": item["source"],
                    "batch": item["batch"],
                },
                "predictions": [
                    {
                        "model_version": "curation-queue",
                        "score": item["score"],
                        "result": [
                            {
                                "from_name": "label",
                                "to_name": "text",
                                "type": "choices",
                                "value": {"choices": [item["response"]]},
                            }
                        ],
                    }
                ],
            }
            for item in items
        ]
        out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        raise ValueError(f"unknown export format {fmt!r}: jsonl or label-studio")
    return len(items)
