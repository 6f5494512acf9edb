"""Reviewer accounts (argon2 password hashes, roles), sessions and the sign-in throttle."""

import contextlib
import hashlib
import re
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from curation_assets.curation.review.decisions.store import ROLES, connection, immediate

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 8


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
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    with connection(store_path) as con:
        try:
            with immediate(con):
                con.execute(
                    f"{verb} INTO users (username, role, password_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    [username, role, hashed, datetime.now(UTC).isoformat()],
                )
                con.execute("DELETE FROM sessions WHERE username = ?", [username])
        except sqlite3.IntegrityError as exc:  # rolled back
            raise ValueError(f"user {username!r} already exists") from exc


# --- sessions of the review app -----------------------------------------------------------


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # the store never holds the id itself


def create_session(store_path: Path, username: str, max_age: float) -> str:
    """A new session id for ``username``, valid ``max_age`` seconds unless ended sooner."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    with connection(store_path) as con:
        con.execute("DELETE FROM sessions WHERE expires_at <= ?", [now])
        con.execute(
            "INSERT INTO sessions (session_hash, username, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            [_session_hash(token), username, now, now + max_age],
        )
    return token


def session_user(store_path: Path, token: object) -> dict | None:
    """{username, role, created_at} of a live session, else None (ended, expired, reset
    or removed user)."""
    if not isinstance(token, str) or not token or not store_path.exists():
        return None
    with connection(store_path) as con:
        row = con.execute(
            """SELECT u.username, u.role, u.created_at FROM sessions s
               JOIN users u ON u.username = s.username
               WHERE s.session_hash = ? AND s.expires_at > ?""",
            [_session_hash(token), time.time()],
        ).fetchone()
    return _user(row) if row else None


def end_session(store_path: Path, token: object) -> None:
    """End one session (sign-out): its cookie no longer signs anyone in."""
    if isinstance(token, str) and token:
        with connection(store_path) as con:
            con.execute("DELETE FROM sessions WHERE session_hash = ?", [_session_hash(token)])


def end_sessions(store_path: Path, username: str) -> int:
    """End every session of ``username``; returns how many there were."""
    with connection(store_path) as con:
        return con.execute("DELETE FROM sessions WHERE username = ?", [username]).rowcount


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
    with connection(store_path) as con, immediate(con):
        con.execute("DELETE FROM login_attempts WHERE at <= ?", [now - window])
        for key, limit in limits.items():
            (used,) = con.execute(
                "SELECT count(*) FROM login_attempts WHERE key = ?", [key]
            ).fetchone()
            if used >= limit:
                return None  # committed: the expired attempts stay deleted
        attempt = secrets.token_hex(12)
        con.executemany(
            "INSERT INTO login_attempts (attempt, key, at) VALUES (?, ?, ?)",
            [(attempt, key, now) for key in limits],
        )
    return attempt


def end_login_attempt(store_path: Path, attempt: str, clear: tuple[str, ...] = ()) -> None:
    """A successful attempt: drop its reservation, and every failure under ``clear``."""
    with connection(store_path) as con:
        con.execute("DELETE FROM login_attempts WHERE attempt = ?", [attempt])
        con.executemany("DELETE FROM login_attempts WHERE key = ?", [(k,) for k in clear])


def get_user(store_path: Path, username: str) -> dict | None:
    """{username, role, created_at} or None."""
    if not store_path.exists():
        return None
    with connection(store_path) as con:
        row = con.execute(
            "SELECT username, role, created_at FROM users WHERE username = ?", [username]
        ).fetchone()
    return _user(row) if row else None


def list_users(store_path: Path) -> list[dict]:
    """Every user (no hashes), by name."""
    with connection(store_path) as con:
        rows = con.execute("SELECT username, role, created_at FROM users ORDER BY 1").fetchall()
    return [_user(r) for r in rows]


def _user(row: tuple) -> dict:
    return dict(zip(("username", "role", "created_at"), row, strict=True))


def verify_password(store_path: Path, username: str, password: str) -> dict | None:
    """The user if the password matches, else None (same work for unknown users)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = _hasher()
    with connection(store_path) as con:
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
    return get_user(store_path, username)
