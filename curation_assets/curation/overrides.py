"""Audited overrides: an admin accepts a held batch on purpose, with who, when and why.

Stored append-only in the decision store (SQLite, beside the decisions), so the audit
trail survives warehouse rebuilds and nobody can quietly edit it. An override names the
stage and the batch *and the content hash* it was given for: a changed file is a new
batch version and is audited again.
"""

import getpass
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from curation_assets.curation.review import decisions

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_overrides (
    override_id INTEGER PRIMARY KEY AUTOINCREMENT,
    stage TEXT NOT NULL,
    batch TEXT NOT NULL,
    sha256 TEXT,
    accepted_by TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
    recorded_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS batch_overrides_no_update BEFORE UPDATE ON batch_overrides
BEGIN SELECT RAISE(ABORT, 'overrides are append-only'); END;
CREATE TRIGGER IF NOT EXISTS batch_overrides_no_delete BEFORE DELETE ON batch_overrides
BEGIN SELECT RAISE(ABORT, 'overrides are append-only'); END;
"""


def _connect(store: Path) -> sqlite3.Connection:
    con = decisions.connect(store)
    con.executescript(_SCHEMA)
    return con


def accept(
    store: Path,
    stage: str,
    batch: str,
    sha256: str | None,
    reason: str,
    accepted_by: str | None = None,
) -> dict:
    """Record that ``batch`` (content ``sha256``) may publish at ``stage`` despite its audit."""
    if not reason or not reason.strip():
        raise ValueError("an override needs a reason (--reason): it goes in the audit trail")
    row = {
        "stage": stage,
        "batch": batch,
        "sha256": sha256,
        "accepted_by": accepted_by or getpass.getuser(),
        "reason": reason.strip(),
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    con = _connect(store)
    try:
        con.execute(
            "INSERT INTO batch_overrides (stage, batch, sha256, accepted_by, reason, "
            "recorded_at) VALUES (:stage, :batch, :sha256, :accepted_by, :reason, :recorded_at)",
            row,
        )
    finally:
        con.close()
    return row


def load(store: Path) -> list[dict]:
    """Every override, oldest first."""
    if not store.exists():
        return []
    con = _connect(store)
    con.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in con.execute("SELECT * FROM batch_overrides ORDER BY override_id").fetchall()
        ]
    finally:
        con.close()


def accepted(overrides: list[dict], batch: str, sha256: str | None) -> dict | None:
    """The newest override of ``batch`` given for this content, if any.

    An admin accepts a batch *version*, not one stage's verdict on it: a batch accepted
    where ingest held it (mostly unreadable, say) is not held again by the filter stage
    for the same content (its quarantine rate). The override row keeps the stage that
    held the batch when it was accepted.
    """
    for row in reversed(overrides):
        if row["batch"] == batch and row["sha256"] == sha256:
            return row
    return None
