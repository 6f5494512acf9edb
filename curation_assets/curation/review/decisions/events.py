"""Decision events: validate, record (append-only, idempotent), import files, load, audit trail."""

import csv
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from curation_assets.curation.review.decisions.label_studio import label_studio_decisions
from curation_assets.curation.review.decisions.store import (
    DECISIONS,
    FIELDS,
    ROLES,
    DecisionError,
    connection,
    immediate,
)


@dataclass
class ImportReport:
    """What an import did: added, already present (re-import), and refused lines."""

    added: int
    already_present: int
    errors: list[tuple[int, str]]


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
        "note": str(raw["note"]) if raw.get("note") else None,  # as stored (TEXT)
        "decided_at": parsed.astimezone(UTC).isoformat(),
        "seconds_spent": seconds,
    }


def record(con: sqlite3.Connection, raw: dict, origin: str = "api") -> bool:
    """Append one decision. Returns False when the identical decision is already stored."""
    return _insert(con, validate(raw), origin)[1]


def _insert(con: sqlite3.Connection, item: dict, origin: str) -> tuple[int, bool]:
    """Insert a validated decision: (its decision_id, whether it is new)."""
    fingerprint = _fingerprint(item)
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


def _fingerprint(item: dict) -> str:
    """The content hash of a decision's ``FIELDS`` (stored with it, checked by audits)."""
    return hashlib.sha256(
        json.dumps([item[f] for f in FIELDS], sort_keys=True).encode()
    ).hexdigest()


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
    with immediate(con):
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
    with connection(store) as con, immediate(con):
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
    with connection(store) as con:
        return pd.read_sql_query(
            f"SELECT {', '.join(columns)} FROM decisions ORDER BY decision_id", con
        )


def high_water_mark(store: Path) -> tuple[int, str | None]:
    """(number of decisions, newest recorded_at): cheap change detection for sensors."""
    if not store.exists():
        return 0, None
    with connection(store) as con:
        count, newest = con.execute("SELECT count(*), max(recorded_at) FROM decisions").fetchone()
    return int(count), newest


@dataclass
class AuditTrail:
    """What an audit of the decisions table found (see ``audit_trail``)."""

    frame: pd.DataFrame  # every decision (``FIELDS``, decision_id), plus fingerprint_ok
    count: int
    max_id: int
    sequence: int  # the AUTOINCREMENT counter: never goes back, even when rows are deleted
    digest: str  # chained over (decision_id, fingerprint) of every row, oldest first
    rewritten: bool  # the first ``previous[0]`` rows no longer hash to ``previous[1]``

    def integrity(self) -> pd.DataFrame:
        """One row of counts that are 0 while the table is intact and append-only."""
        return pd.DataFrame(
            {
                "fingerprint_mismatches": [int((~self.frame["fingerprint_ok"]).sum())],
                "missing_ids": [self.max_id - self.count],  # ids run 1..max_id, no gaps
                "deleted_newest": [self.sequence - self.max_id],
                "rewritten_since_last_audit": [int(self.rewritten)],
            }
        )

    def connection(self):
        """An in-memory DuckDB holding ``decisions`` and ``integrity``, to validate."""
        import duckdb

        con = duckdb.connect()
        con.register("decisions", self.frame.astype({"fingerprint_ok": bool}))
        con.register("integrity", self.integrity())
        return con


def audit_trail(store: Path, previous: tuple[int, str] | None = None) -> AuditTrail:
    """Audit the decisions table: recompute every row's content hash (stored at insert),
    find missing decision ids, and, given the (count, digest) of an earlier audit, whether
    the rows it saw were rewritten, deleted or reordered since (a rewrite that also fixed
    the stored fingerprint still changes the chained digest)."""
    columns = ["decision_id", "fingerprint", *FIELDS]
    rows: list[tuple] = []
    sequence = 0
    if store.exists():
        with connection(store) as con:
            rows = con.execute(
                f"SELECT {', '.join(columns)} FROM decisions ORDER BY decision_id"
            ).fetchall()
            found = con.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'decisions'"
            ).fetchone()
        sequence = int(found[0]) if found else 0
    chain, prefix = hashlib.sha256(), None
    ok = []
    for index, row in enumerate(rows):
        if previous is not None and index == previous[0]:
            prefix = chain.hexdigest()
        item = dict(zip(columns, row, strict=True))
        ok.append(_fingerprint(item) == item["fingerprint"])
        chain.update(f"{item['decision_id']}:{item['fingerprint']}\n".encode())
    digest = chain.hexdigest()
    if previous is not None and prefix is None:
        prefix = digest if previous[0] == len(rows) else None  # None: rows disappeared
    frame = pd.DataFrame(rows, columns=columns).drop(columns="fingerprint")
    frame["fingerprint_ok"] = pd.Series(ok, dtype=bool)
    return AuditTrail(
        frame=frame,
        count=len(rows),
        max_id=int(rows[-1][0]) if rows else 0,
        sequence=sequence,
        digest=digest,
        rewritten=previous is not None and prefix != previous[1],
    )


# --- the published review queue ---------------------------------------------------------
