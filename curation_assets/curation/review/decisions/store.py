"""The SQLite file itself: its schema, connections and transactions, owner-only files
and secrets."""

import contextlib
import os
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

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


class DecisionError(ValueError):
    """A decision that cannot be recorded, with the reason."""


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


@contextlib.contextmanager
def connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A fresh connection to the store (``connect``), closed afterwards."""
    con = connect(path)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def immediate(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction (the write lock taken at once): committed when
    the block ends, a ``return`` in it included; rolled back on any exception, re-raised."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


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
