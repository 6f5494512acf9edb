"""The decision store: an append-only SQLite file, separate from the DuckDB warehouse.

DuckDB allows one writer process, so reviewers (and the review web app) write here and
never block a pipeline run, nor are blocked by one. Decisions are never updated or
deleted (triggers refuse it): a changed mind is a new decision, and the latest one wins.

The same file holds what the review web app needs, so that it never opens the warehouse:
``queue_items`` (the published review queue, replaced atomically by ``publish_queue``),
``users`` (argon2 password hashes and roles), ``skips`` and ``leases`` (per-user queue
state, not decisions) and ``app_submissions`` (one row per form the app accepted, so a
retried submission never records a decision twice).
"""

import contextlib
import csv
import hashlib
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

ROLES = ("reviewer", "expert", "admin")
DECISIONS = ("accept", "reject", "edit")
FIELDS = (
    "example_id",
    "reviewer",
    "role",
    "decision",
    "corrected_response",
    "note",
    "decided_at",
    "seconds_spent",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT NOT NULL UNIQUE,
    example_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'expert', 'admin')),
    decision TEXT NOT NULL CHECK (decision IN ('accept', 'reject', 'edit')),
    corrected_response TEXT,
    note TEXT,
    decided_at TEXT NOT NULL,
    seconds_spent REAL,
    recorded_at TEXT NOT NULL,
    origin TEXT,
    CHECK (decision != 'edit' OR corrected_response IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS decisions_example ON decisions (example_id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only: record a new decision instead'); END;

CREATE TABLE IF NOT EXISTS queue_items (
    queue TEXT NOT NULL CHECK (queue IN ('coverage', 'suspect')),
    example_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    queue_reason TEXT,
    score REAL,
    prompt TEXT,
    response TEXT,
    source TEXT,
    batch TEXT,
    flags TEXT,
    pii TEXT,
    near_duplicates TEXT,
    reviews_required INTEGER,
    PRIMARY KEY (queue, example_id),
    UNIQUE (queue, priority)
);
CREATE TABLE IF NOT EXISTS queue_publications (
    publication_id INTEGER PRIMARY KEY AUTOINCREMENT,
    published_at TEXT NOT NULL,
    items INTEGER NOT NULL,
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'expert', 'admin')),
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skips (
    username TEXT NOT NULL,
    queue TEXT NOT NULL,
    example_id TEXT NOT NULL,
    skipped_at TEXT NOT NULL,
    PRIMARY KEY (username, queue, example_id)
);
CREATE TABLE IF NOT EXISTS leases (
    queue TEXT NOT NULL,
    example_id TEXT NOT NULL,
    username TEXT NOT NULL,
    served_at REAL NOT NULL,
    PRIMARY KEY (queue, example_id, username)
);
CREATE TABLE IF NOT EXISTS app_submissions (
    submission_id TEXT PRIMARY KEY,
    decision_id INTEGER NOT NULL REFERENCES decisions (decision_id),
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_reviewer ON decisions (reviewer, example_id);
"""

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
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 8


class DecisionError(ValueError):
    """A decision that cannot be recorded, with the reason."""


@dataclass
class ImportReport:
    """What an import did: added, already present (re-import), and refused lines."""

    added: int
    already_present: int
    errors: list[tuple[int, str]]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store; WAL so readers never block the writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(_SCHEMA)
    return con


def validate(raw: dict) -> dict:
    """Normalize one decision; raise ``DecisionError`` with a clear reason if invalid."""
    missing = [f for f in ("example_id", "reviewer", "role", "decision") if not raw.get(f)]
    if missing:
        raise DecisionError(f"missing field(s): {', '.join(missing)}")
    role = str(raw["role"]).strip().lower()
    decision = str(raw["decision"]).strip().lower()
    if role not in ROLES:
        raise DecisionError(f"role must be one of {ROLES}, got {raw['role']!r}")
    if decision not in DECISIONS:
        raise DecisionError(f"decision must be one of {DECISIONS}, got {raw['decision']!r}")
    corrected = raw.get("corrected_response")
    corrected = None if corrected in (None, "") else str(corrected)
    if decision == "edit" and corrected is None:
        raise DecisionError("an edit needs corrected_response")
    decided_at = raw.get("decided_at") or datetime.now(UTC).isoformat()
    try:
        parsed = datetime.fromisoformat(str(decided_at).replace("Z", "+00:00"))
    except ValueError as exc:
        raise DecisionError(f"decided_at is not an ISO-8601 timestamp: {decided_at!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    seconds = raw.get("seconds_spent")
    try:
        seconds = None if seconds in (None, "") else float(seconds)
    except (TypeError, ValueError) as exc:
        raise DecisionError(f"seconds_spent is not a number: {seconds!r}") from exc
    return {
        "example_id": str(raw["example_id"]).strip(),
        "reviewer": str(raw["reviewer"]).strip(),
        "role": role,
        "decision": decision,
        "corrected_response": corrected,
        "note": raw.get("note") or None,
        "decided_at": parsed.astimezone(UTC).isoformat(),
        "seconds_spent": seconds,
    }


def record(con: sqlite3.Connection, raw: dict, origin: str = "api") -> bool:
    """Append one decision. Returns False when the identical decision is already stored."""
    return _insert(con, validate(raw), origin)[1]


def _insert(con: sqlite3.Connection, item: dict, origin: str) -> tuple[int, bool]:
    """Insert a validated decision: (its decision_id, whether it is new)."""
    fingerprint = hashlib.sha256(
        json.dumps([item[f] for f in FIELDS], sort_keys=True).encode()
    ).hexdigest()
    cursor = con.execute(
        """INSERT OR IGNORE INTO decisions (fingerprint, example_id, reviewer, role, decision,
               corrected_response, note, decided_at, seconds_spent, recorded_at, origin)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [fingerprint, *(item[f] for f in FIELDS), datetime.now(UTC).isoformat(), origin],
    )
    if cursor.rowcount == 1:
        return int(cursor.lastrowid), True
    row = con.execute("SELECT decision_id FROM decisions WHERE fingerprint = ?", [fingerprint])
    return int(row.fetchone()[0]), False


def record_submissions(
    con: sqlite3.Connection, submissions: list[tuple[str, dict]], origin: str = "app"
) -> list[tuple[int, bool]]:
    """Append decisions submitted through the app, each under a unique ``submission_id``.

    All or nothing, in one transaction. A submission id seen before returns the decision
    it recorded then and adds nothing, so a retried or replayed form is stored once.
    Returns (decision_id, newly recorded) per submission.
    """
    items = [(sid, validate(raw)) for sid, raw in submissions]  # refuse before writing
    out: list[tuple[int, bool]] = []
    con.execute("BEGIN IMMEDIATE")
    try:
        for sid, item in items:
            known = con.execute(
                "SELECT decision_id FROM app_submissions WHERE submission_id = ?", [sid]
            ).fetchone()
            if known:
                out.append((int(known[0]), False))
                continue
            decision_id, added = _insert(con, item, origin)
            con.execute(
                "INSERT INTO app_submissions (submission_id, decision_id, recorded_at) "
                "VALUES (?, ?, ?)",
                [sid, decision_id, datetime.now(UTC).isoformat()],
            )
            out.append((decision_id, added))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return out


def import_file(path: Path, store: Path, label_studio_role: str = "reviewer") -> ImportReport:
    """Import decisions from JSONL or CSV (columns: ``FIELDS``), or a Label Studio JSON
    export (``.json``; see ``label_studio_decisions``). Idempotent.

    Invalid lines are refused with their line number (a Label Studio task's position)
    and reason; valid ones are added in one transaction.
    """
    if path.suffix.lower() == ".json":
        rows = list(label_studio_decisions(path, label_studio_role))
    else:
        rows = list(_read_rows(path))
    added = present = 0
    errors: list[tuple[int, str]] = []
    con = connect(store)
    try:
        con.execute("BEGIN IMMEDIATE")
        for line_no, raw in rows:
            if isinstance(raw, str):
                errors.append((line_no, raw))
                continue
            try:
                if record(con, raw, origin=f"import:{path.name}"):
                    added += 1
                else:
                    present += 1
            except DecisionError as exc:
                errors.append((line_no, str(exc)))
        con.execute("COMMIT")
    finally:
        con.close()
    return ImportReport(added, present, errors)


def _read_rows(path: Path):
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for index, row in enumerate(csv.DictReader(handle), start=2):
                yield index, dict(row)
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for index, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield index, f"malformed JSON: {exc.msg}"
                continue
            yield index, value if isinstance(value, dict) else "not a JSON object"


def load_all(store: Path) -> pd.DataFrame:
    """Every decision, oldest first (the audit trail)."""
    columns = ["decision_id", *FIELDS, "recorded_at", "origin"]
    if not store.exists():
        return pd.DataFrame(columns=columns)
    con = connect(store)
    try:
        return pd.read_sql_query(
            f"SELECT {', '.join(columns)} FROM decisions ORDER BY decision_id", con
        )
    finally:
        con.close()


def high_water_mark(store: Path) -> tuple[int, str | None]:
    """(number of decisions, newest recorded_at): cheap change detection for sensors."""
    if not store.exists():
        return 0, None
    con = connect(store)
    try:
        count, newest = con.execute("SELECT count(*), max(recorded_at) FROM decisions").fetchone()
        return int(count), newest
    finally:
        con.close()


# --- the published review queue ---------------------------------------------------------


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
    con = connect(store_path)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM queue_items")
            con.executemany(
                f"INSERT INTO queue_items ({', '.join(QUEUE_COLUMNS)}) VALUES ({placeholders})",
                rows,
            )
            con.execute(
                "INSERT INTO queue_publications (published_at, items, digest) VALUES (?, ?, ?)",
                [datetime.now(UTC).isoformat(), len(rows), digest],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
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
    con = connect(store_path)
    try:
        where, params = ("WHERE queue = ?", [queue]) if queue else ("", [])
        return pd.read_sql_query(
            f"SELECT {', '.join(QUEUE_COLUMNS)} FROM queue_items {where} ORDER BY queue, priority",
            con,
            params=params,
        )
    finally:
        con.close()


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


def label_studio_config(labels) -> str:
    """The Label Studio labeling interface matching ``export_queue(..., 'label-studio')``."""
    from xml.sax.saxutils import quoteattr

    choices = "\n".join(f"    <Choice value={quoteattr(str(label))}/>" for label in labels)
    return f"""<View>
  <Header value="$queue_reason"/>
  <Text name="text" value="$text"/>
  <Choices name="label" toName="text" choice="single" showInline="true">
{choices}
  </Choices>
  <Choices name="verdict" toName="text" choice="single" showInline="true">
    <Choice value="reject"/>
  </Choices>
  <TextArea name="note" toName="text" rows="2"/>
</View>
"""


def label_studio_decisions(path: Path, role: str = "reviewer") -> Iterator[tuple[int, Any]]:
    """Decisions from a Label Studio JSON export of tasks made by ``export_queue``.

    Per (not cancelled) annotation: a ``verdict`` choice ``reject`` -> reject; a ``label``
    choice different from the task's ``label`` -> edit to that label; otherwise accept.
    ``completed_by`` (email, or ``labelstudio-user-<id>``) is the reviewer, ``lead_time``
    the seconds spent.
    Yields (task number, decision dict or an error string).
    """
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        yield 1, f"not a Label Studio JSON export: {exc}"
        return
    if not isinstance(tasks, list):
        yield 1, "not a Label Studio JSON export: expected a list of tasks"
        return
    for number, task in enumerate(tasks, start=1):
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or not data.get("example_id"):
            yield number, "task has no data.example_id"
            continue
        for annotation in task.get("annotations") or []:
            if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                continue
            picked: dict[str, str] = {}
            for result in annotation.get("result") or []:
                value = result.get("value") or {}
                if value.get("choices"):
                    picked[result.get("from_name", "label")] = str(value["choices"][0])
                elif value.get("text"):
                    picked[result.get("from_name", "note")] = " ".join(map(str, value["text"]))
            by = annotation.get("completed_by")
            if isinstance(by, dict):
                by = by.get("email") or by.get("username") or by.get("id")
            if isinstance(by, int):
                by = f"labelstudio-user-{by}"
            decision: dict[str, Any] = {
                "example_id": data["example_id"],
                "reviewer": str(by) if by not in (None, "") else "labelstudio",
                "role": role,
                "note": picked.get("note"),
                "decided_at": annotation.get("updated_at") or annotation.get("created_at"),
                "seconds_spent": annotation.get("lead_time"),
            }
            if picked.get("verdict") == "reject":
                decision["decision"] = "reject"
            elif "label" in picked and picked["label"] != data.get("label"):
                decision.update(decision="edit", corrected_response=picked["label"])
            elif "label" in picked:
                decision["decision"] = "accept"
            else:
                yield number, "annotation has neither a label nor a reject verdict"
                continue
            yield number, decision


# --- users --------------------------------------------------------------------------------


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults


_DUMMY_HASH: list[str] = []


def add_user(
    store_path: Path, username: str, password: str, role: str, replace: bool = False
) -> None:
    """Create a user (or, with ``replace``, reset their password and role)."""
    if not _USERNAME.match(username or ""):
        raise ValueError("username: 1-64 characters among letters, digits and _ . @ -")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    hashed = _hasher().hash(password)
    con = connect(store_path)
    try:
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            con.execute(
                f"{verb} INTO users (username, role, password_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                [username, role, hashed, datetime.now(UTC).isoformat()],
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"user {username!r} already exists") from exc
    finally:
        con.close()


def get_user(store_path: Path, username: str) -> dict | None:
    """{username, role, created_at} or None."""
    if not store_path.exists():
        return None
    con = connect(store_path)
    try:
        row = con.execute(
            "SELECT username, role, created_at FROM users WHERE username = ?", [username]
        ).fetchone()
    finally:
        con.close()
    return dict(zip(("username", "role", "created_at"), row, strict=True)) if row else None


def list_users(store_path: Path) -> list[dict]:
    """Every user (no hashes), by name."""
    con = connect(store_path)
    try:
        rows = con.execute("SELECT username, role, created_at FROM users ORDER BY 1").fetchall()
    finally:
        con.close()
    return [dict(zip(("username", "role", "created_at"), r, strict=True)) for r in rows]


def verify_password(store_path: Path, username: str, password: str) -> dict | None:
    """The user if the password matches, else None (same work for unknown users)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    con = connect(store_path)
    try:
        row = con.execute(
            "SELECT password_hash FROM users WHERE username = ?", [username]
        ).fetchone()
        if row is None:
            if not _DUMMY_HASH:
                _DUMMY_HASH.append(hasher.hash("not a password of anyone"))
            # spend the same time as a real check: no user enumeration by timing
            with contextlib.suppress(VerificationError):
                hasher.verify(_DUMMY_HASH[0], password or "")
            return None
        try:
            hasher.verify(row[0], password or "")
        except (VerificationError, InvalidHashError):
            return None
        if hasher.check_needs_rehash(row[0]):
            con.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?",
                [hasher.hash(password), username],
            )
    finally:
        con.close()
    return get_user(store_path, username)
