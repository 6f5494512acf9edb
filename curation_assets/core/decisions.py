"""The decision store: an append-only SQLite file, separate from the DuckDB warehouse.

DuckDB allows one writer process, so reviewers (and the review web app) write here and
never block a pipeline run, nor are blocked by one. Decisions are never updated or
deleted (triggers refuse it): a changed mind is a new decision, and the latest one wins.
"""

import csv
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
"""


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
    item = validate(raw)
    fingerprint = hashlib.sha256(
        json.dumps([item[f] for f in FIELDS], sort_keys=True).encode()
    ).hexdigest()
    cursor = con.execute(
        """INSERT OR IGNORE INTO decisions (fingerprint, example_id, reviewer, role, decision,
               corrected_response, note, decided_at, seconds_spent, recorded_at, origin)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [fingerprint, *(item[f] for f in FIELDS), datetime.now(UTC).isoformat(), origin],
    )
    return cursor.rowcount == 1


def import_file(path: Path, store: Path) -> ImportReport:
    """Import decisions from JSONL or CSV (columns: ``FIELDS``). Idempotent.

    Invalid lines are refused with their line number and reason; valid ones are added
    in one transaction.
    """
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
