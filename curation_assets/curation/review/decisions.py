"""The decision store: an append-only SQLite file, separate from the DuckDB warehouse.

DuckDB allows one writer process, so reviewers (and the review web app) write here and
never block a pipeline run, nor are blocked by one. Decisions are never updated or
deleted (triggers refuse it): a changed mind is a new decision, and the latest one wins.

The same file holds what the review web app needs, so that it never opens the warehouse:
``queue_items`` (the published review queue, replaced atomically by ``publish_queue``),
``users`` (argon2 password hashes and roles), ``skips`` and ``leases`` (per-user queue
state, not decisions) and ``app_submissions`` (one row per form the app accepted, so a
retried submission never records a decision twice). ``sessions`` (hashes of the app's
signed-in session ids, so that sign-out and a password reset end a session on the server)
and ``login_attempts`` (the sign-in throttle, shared by every worker) are app state too.

The file holds password hashes: it is created owner-only (0600, in a 0700 folder when
the folder is new), and an existing store or side file is tightened when opened.
"""

import contextlib
import csv
import hashlib
import json
import math
import os
import re
import secrets
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
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
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS login_attempts (
    attempt TEXT NOT NULL,
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_key ON login_attempts (key, at);
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
    """Open (creating if needed, owner-only) the store; WAL so readers never block the
    writer."""
    _create_private(path)
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(_SCHEMA)
    for suffix in ("-wal", "-shm", "-journal"):  # SQLite gives them the store's mode
        owner_only(Path(f"{path}{suffix}"))
    return con


# --- owner-only files ------------------------------------------------------------------


def owner_only(path: Path) -> None:
    """Drop the group and other permission bits of ``path`` if it exists and is ours."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if not hasattr(os, "getuid") or info.st_uid != os.getuid():
        return  # not ours to change (the owner, or root, keeps it as it is)
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        with contextlib.suppress(PermissionError):
            os.chmod(path, mode & 0o700)


def _private_dir(folder: Path) -> None:
    """Create ``folder`` owner-only (0700) if missing; an existing one stays as it is."""
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def _create_private(path: Path) -> None:
    """Create ``path`` as an empty 0600 file if missing (SQLite then fills it), and
    tighten it if it exists with wider permissions.

    Never opens ``path`` itself: closing any descriptor of a database file drops the
    POSIX locks every SQLite connection of this process holds on it (and corrupts it
    under concurrent writes). The empty file is made under a temporary name, closed,
    then hard-linked into place (a link never replaces an existing store).
    """
    if not os.path.exists(path):
        _private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        os.close(fd)
        try:
            _link_new(Path(tmp), path)
        finally:
            os.unlink(tmp)
    owner_only(path)


def _link_new(tmp: Path, path: Path) -> bool:
    """Put ``tmp``'s file at ``path`` unless something is there already; False if it was.
    Falls back to an exclusive create (with ``tmp``'s content) where links are refused."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(tmp.read_bytes())
    return True


def private_secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path``; created with ``make()`` when missing.

    Created atomically and owner-only: the value is written to a 0600 temporary file
    that is then hard-linked into place (a link never replaces), so concurrent callers,
    threads or processes, all get the first value written and nobody reads a half-written
    or empty file. An existing file is tightened to owner-only.
    """
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        owner_only(path)
        if not value:
            raise RuntimeError(f"{path} is empty: delete it to make a new secret")
        return value
    _private_dir(path.parent)
    value = make()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if not _link_new(Path(tmp), path):  # another caller won: use theirs
            return path.read_text().strip()
    finally:
        os.unlink(tmp)
    return value


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
        con = connect(store)
        try:
            rows = con.execute(
                f"SELECT {', '.join(columns)} FROM decisions ORDER BY decision_id"
            ).fetchall()
            found = con.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'decisions'"
            ).fetchone()
            sequence = int(found[0]) if found else 0
        finally:
            con.close()
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
    """Create a user (or, with ``replace``, reset their password and role). Either way
    every session of that name ends: a reset or a role change signs them out everywhere."""
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
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(
                f"{verb} INTO users (username, role, password_hash, created_at) "
                "VALUES (?, ?, ?, ?)",
                [username, role, hashed, datetime.now(UTC).isoformat()],
            )
            con.execute("DELETE FROM sessions WHERE username = ?", [username])
            con.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            con.execute("ROLLBACK")
            raise ValueError(f"user {username!r} already exists") from exc
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()


# --- sessions of the review app -----------------------------------------------------------


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # the store never holds the id itself


def create_session(store_path: Path, username: str, max_age: float) -> str:
    """A new session id for ``username``, valid ``max_age`` seconds unless ended sooner."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    con = connect(store_path)
    try:
        con.execute("DELETE FROM sessions WHERE expires_at <= ?", [now])
        con.execute(
            "INSERT INTO sessions (session_hash, username, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            [_session_hash(token), username, now, now + max_age],
        )
    finally:
        con.close()
    return token


def session_user(store_path: Path, token: object) -> dict | None:
    """{username, role, created_at} of a live session, else None (ended, expired, reset
    or removed user)."""
    if not isinstance(token, str) or not token or not store_path.exists():
        return None
    con = connect(store_path)
    try:
        row = con.execute(
            """SELECT u.username, u.role, u.created_at FROM sessions s
               JOIN users u ON u.username = s.username
               WHERE s.session_hash = ? AND s.expires_at > ?""",
            [_session_hash(token), time.time()],
        ).fetchone()
    finally:
        con.close()
    return dict(zip(("username", "role", "created_at"), row, strict=True)) if row else None


def end_session(store_path: Path, token: object) -> None:
    """End one session (sign-out): its cookie no longer signs anyone in."""
    if isinstance(token, str) and token:
        con = connect(store_path)
        try:
            con.execute("DELETE FROM sessions WHERE session_hash = ?", [_session_hash(token)])
        finally:
            con.close()


def end_sessions(store_path: Path, username: str) -> int:
    """End every session of ``username``; returns how many there were."""
    con = connect(store_path)
    try:
        return con.execute("DELETE FROM sessions WHERE username = ?", [username]).rowcount
    finally:
        con.close()


# --- the sign-in throttle -----------------------------------------------------------------


def begin_login_attempt(store_path: Path, limits: dict[str, int], window: float) -> str | None:
    """Reserve a sign-in attempt under every key of ``limits`` (key -> most attempts in
    ``window`` seconds), or None when a key has used up its limit.

    Check and record are one ``BEGIN IMMEDIATE`` transaction, so concurrent attempts in
    any thread or worker process are counted, in progress or failed, before a password
    is checked. A failed attempt keeps its reservation; ``end_login_attempt`` gives back
    that of a successful one.
    """
    now = time.time()
    con = connect(store_path)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM login_attempts WHERE at <= ?", [now - window])
            for key, limit in limits.items():
                (used,) = con.execute(
                    "SELECT count(*) FROM login_attempts WHERE key = ?", [key]
                ).fetchone()
                if used >= limit:
                    con.execute("COMMIT")
                    return None
            attempt = secrets.token_hex(12)
            con.executemany(
                "INSERT INTO login_attempts (attempt, key, at) VALUES (?, ?, ?)",
                [(attempt, key, now) for key in limits],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return attempt


def end_login_attempt(store_path: Path, attempt: str, clear: tuple[str, ...] = ()) -> None:
    """A successful attempt: drop its reservation, and every failure under ``clear``."""
    con = connect(store_path)
    try:
        con.execute("DELETE FROM login_attempts WHERE attempt = ?", [attempt])
        con.executemany("DELETE FROM login_attempts WHERE key = ?", [(k,) for k in clear])
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
